//! Hostile input on the DHT protocol: refused, and the node carries on.

mod common;

use bytes::Bytes;
use common::{TestNode, network_of};
use pqnode_dht::{Request, codec};
use pqnode_net::RequestError;

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
            .request(target.id(), pqnode_overlay::DHT, payload)
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
        .request(target.id(), pqnode_overlay::DHT, Bytes::from(response))
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
        .request(target.id(), pqnode_overlay::DHT, Bytes::from(ping))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_told_to_slow_down_and_others_are_still_served() {
    let identity = std::sync::Arc::new(pqnode_crypto::Identity::generate().unwrap());
    let mut config = common::overlay_config(identity, Vec::new());
    config.peer_rate = pqnode_overlay::PeerRate {
        per_second: 5,
        burst: 10,
    };
    let target = TestNode::start_configured(common::any_port(), None, config).await;
    let flooder = TestNode::start(Vec::new()).await;
    let bystander = TestNode::start(Vec::new()).await;
    for node in [&flooder, &bystander] {
        node.network.add_address(target.id(), target.addr);
    }

    let ping = Bytes::from(codec::encode_request(&Request::Ping));
    let mut refused = 0;
    let started = std::time::Instant::now();
    for _ in 0..40 {
        match flooder
            .network
            .request(target.id(), pqnode_overlay::DHT, ping.clone())
            .await
        {
            Ok(_) => {}
            Err(RequestError::Remote { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    // The burst plus what the rate refilled while we were sending, however slow the machine.
    let allowed = 10.0 + started.elapsed().as_secs_f64() * 5.0 + 1.0;
    assert!(refused > 0, "a flood of 40 was never refused");
    assert!(
        f64::from(refused) >= 40.0 - allowed,
        "only {refused} of 40 refused"
    );
    // Another peer has its own budget.
    bystander
        .network
        .request(target.id(), pqnode_overlay::DHT, ping)
        .await
        .expect("the bystander is served");
    assert_ne!(target.overlay.health().status, pqnode_health::Status::Fail);

    for node in [target, flooder, bystander] {
        node.stop().await;
    }
}
