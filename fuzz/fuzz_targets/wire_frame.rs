//! QUIC request and response frames as a peer sends them: header, then body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pqnode_net::fuzzing::decode_frame(data);
});
