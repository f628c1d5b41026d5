//! Relay envelopes from other nodes, with their senders' presence proofs; withdrawals;
//! DHT presence entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pqnode_signaling::fuzzing::decode_envelope(data);
});
