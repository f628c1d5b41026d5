//! Hostile input on the DHT protocol: refused, and the node carries on.

mod common;

use bytes::Bytes;
use common::{TestNode, network_of};
use pqnode_dht::{Request, codec};
use pqnode_net::{Protocol, RequestError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_refused_as_a_bad_request_and_the_node_stays_healthy() {
    let nodes = network_of(4).await;
    let target = &nodes[1];
    let attacker = TestNode::start(Vec::new()).await;
    attacker.network.add_address(target.id(), target.addr);

    // As long as the transport lets through, so the DHT's own decoder sees it.
    let largest = vec![0xff; codec::MAX_MESSAGE_LEN];
    let payloads: Vec<Bytes> = vec![
        Bytes::from_static(b"\xff\xff\xff\xff garbage"),
        Bytes::new(),
        Bytes::from_static(&[0x0a, 0x80]),
        Bytes::from(largest),
    ];
    for payload in payloads {
        let len = payload.len();
        let answer = attacker
            .network
            .request(target.id(), Protocol::Dht, payload)
            .await;
        assert!(
            matches!(&answer, Err(RequestError::Remote { .. })),
            "{len}-byte payload: {answer:?}"
        );
    }
    // A response where a request belongs is not a request either.
    let response = codec::encode_response(&pqnode_dht::Response::Stored);
    let answer = attacker
        .network
        .request(target.id(), Protocol::Dht, Bytes::from(response))
        .await;
    assert!(
        matches!(answer, Err(RequestError::Remote { .. })),
        "{answer:?}"
    );

    assert_eq!(target.overlay.health().status, pqnode_health::Status::Pass);
    // A well-formed request still gets an answer.
    let ping = codec::encode_request(&Request::Ping);
    let pong = attacker
        .network
        .request(target.id(), Protocol::Dht, Bytes::from(ping))
        .await
        .expect("ping answered");
    assert!(matches!(
        codec::decode_response(&pong),
        Ok(pqnode_dht::Response::Pong { .. })
    ));
    let found = nodes[0].overlay.lookup(target.id()).await.expect("lookup");
    assert_eq!(found.closest.first().map(|c| c.id), Some(target.id()));

    attacker.stop().await;
    common::stop_all(nodes).await;
}
