//! Text frames from signaling clients (`/p2p-signaling`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        pqnode_signaling::fuzzing::parse_client_message(text);
    }
});
