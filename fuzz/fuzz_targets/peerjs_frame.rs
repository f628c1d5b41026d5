//! Text frames from PeerJS clients (`/p2p-signaling/peerjs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        pqnode_peerjs::fuzzing::parse_client_frame(text);
    }
});
