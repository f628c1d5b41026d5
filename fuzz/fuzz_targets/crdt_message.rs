//! Yjs sync and awareness frames from WebSocket clients, and replication messages from
//! other nodes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pqnode_crdt::fuzzing::parse_frame(data);
    pqnode_crdt::fuzzing::decode_sync(data);
});
