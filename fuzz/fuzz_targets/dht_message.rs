//! DHT requests and responses from other nodes, and the saved table and records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqnode_dht::codec;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_request(data);
    let _ = codec::decode_response(data);
    let _ = codec::decode_table(data);
    let _ = codec::decode_store(data);
});
