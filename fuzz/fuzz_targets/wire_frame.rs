//! QUIC request and response frames as a peer sends them: header, then body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pqnode_net::Protocol;
use pqnode_net::wire::{FRAME_HEADER_LEN, RequestHeader, ResponseHeader, pb};
use prost::Message;

const PROTOCOLS: [Protocol; 3] = [
    Protocol::PING,
    Protocol::new(1, "DHT", 256 * 1024),
    Protocol::new(4, "MESSAGE", 80 * 1024),
];

fuzz_target!(|data: &[u8]| {
    let Some((header, body)) = data.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return;
    };
    if let Ok(request) = RequestHeader::decode(header) {
        for protocol in PROTOCOLS {
            if let Ok(len) = request.body_len_for(protocol) {
                assert!(len <= protocol.max_body_len());
            }
        }
    }
    for protocol in PROTOCOLS {
        let _ = ResponseHeader::decode(header, protocol);
    }
    let _ = pb::Failure::decode(body);
});
