//! Connection lifecycle: restarts, crashes, vanished peers, the peer table, shutdown.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestNode, config_on, echo_reply, limits, localhost};
use pqnode_crypto::Identity;
use pqnode_health::Status;
use pqnode_net::{Direction, PeerAddr, RequestError};
use pqnode_testkit::settles;

#[tokio::test]
async fn restarted_peer_is_reconnected_on_the_same_and_a_new_port() {
    let a = TestNode::start().await;
    let b_seed = **Identity::generate().unwrap().seed();
    let b = TestNode::start_with(
        Identity::from_seed(&b_seed).unwrap(),
        config_on(localhost(), limits(), vec![]),
    )
    .await;
    let b_addr = b.addr();
    a.net.add_address(b.id(), b_addr);
    a.net
        .request(b.id(), common::DHT, Bytes::new())
        .await
        .unwrap();

    // Same identity, same port: the old connection is reset by the new process
    // (stateless reset from the identity-derived key) and a redials.
    b.net.shutdown().await;
    drop(b);
    let b = TestNode::start_with(
        Identity::from_seed(&b_seed).unwrap(),
        config_on(b_addr, limits(), vec![]),
    )
    .await;
    let reply = a
        .net
        .request(b.id(), common::DHT, Bytes::from_static(b"again"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), a.id(), b"again"));

    // Same identity, new port, a configured as its peer: b dials a, and a's
    // requests then use the new connection.
    b.net.shutdown().await;
    drop(b);
    let b = TestNode::start_with(
        Identity::from_seed(&b_seed).unwrap(),
        config_on(localhost(), limits(), vec![a.peer_addr()]),
    )
    .await;
    assert_ne!(b.addr(), b_addr);
    let reconnected = settles(Duration::from_secs(5), async || {
        a.net
            .peers()
            .iter()
            .any(|p| p.node_id == b.id() && p.address == b.addr())
    })
    .await;
    assert!(reconnected, "{:?}", a.net.peers());
    let reply = a
        .net
        .request(b.id(), common::DHT, Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), a.id(), b"new"));
    assert_eq!(b.net.health().status, Status::Pass);
}

#[tokio::test]
async fn configured_peer_is_redialed_after_it_comes_back() {
    let a_seed = **Identity::generate().unwrap().seed();
    let a = TestNode::start_with(
        Identity::from_seed(&a_seed).unwrap(),
        config_on(localhost(), limits(), vec![]),
    )
    .await;
    let a_addr = a.addr();
    let b = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(localhost(), limits(), vec![a.peer_addr()]),
    )
    .await;
    assert!(settles(Duration::from_secs(5), async || b.net.peers().len() == 1).await);
    a.net.shutdown().await;
    drop(a);
    assert!(settles(Duration::from_secs(5), async || b.net.peers().is_empty()).await);
    assert_eq!(b.net.health().status, Status::Warn);
    let a = TestNode::start_with(
        Identity::from_seed(&a_seed).unwrap(),
        config_on(a_addr, limits(), vec![]),
    )
    .await;
    assert!(settles(Duration::from_secs(5), async || a.net.peers().len() == 1).await);
    assert_eq!(b.net.health().status, Status::Pass);
}

/// First contact takes one round trip: the server's whole first flight (ML-KEM
/// ciphertext, ML-DSA-87 key and signature, ~9.7 KB) fits in QUIC's
/// anti-amplification allowance, 3x what the client's first flight carried.
/// Were it larger, the server would wait for the client's ACK, which this
/// relay drops, and the dial would end in the handshake timeout.
#[tokio::test]
async fn first_contact_completes_on_the_clients_first_flight() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let relay = common::relay::Relay::start(b.addr()).await;
    relay.first_flight_only(true);
    let id = a
        .net
        .connect(&PeerAddr::new(Some(b.id()), relay.addr))
        .await
        .expect("the client is established on the server's first flight");
    assert_eq!(id, b.id());
    let first_flight = relay.client_datagrams_delivered();

    // The server still needs the client's second flight (its key, signature
    // and Finished): let it through; the client resends it.
    relay.first_flight_only(false);
    let reply = a
        .net
        .request(b.id(), common::DHT, Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), a.id(), b"hi"));
    assert_eq!(b.net.stats().handshakes_ok, 1);
    assert!(
        relay.client_datagrams_delivered() > first_flight,
        "the client's first flight was {first_flight} datagrams"
    );
}

#[tokio::test]
async fn crashed_and_restarted_peer_is_detected_by_stateless_reset() {
    let a = TestNode::start().await;
    let b_seed = **Identity::generate().unwrap().seed();
    let b = TestNode::start_with(
        Identity::from_seed(&b_seed).unwrap(),
        config_on(localhost(), limits(), vec![]),
    )
    .await;
    let b_addr = b.addr();
    let b_id = b.id();
    let relay = common::relay::Relay::start(b_addr).await;
    a.net.add_address(b_id, relay.addr);
    a.net
        .request(b_id, common::DHT, Bytes::new())
        .await
        .unwrap();

    // b goes away without its CONNECTION_CLOSE reaching a, and comes back
    // with the same identity on the same port, knowing nothing of a.
    relay.pause(true);
    b.net.shutdown().await;
    drop(b);
    let b = TestNode::start_with(
        Identity::from_seed(&b_seed).unwrap(),
        config_on(b_addr, limits(), vec![]),
    )
    .await;
    relay.pause(false);
    assert_eq!(
        a.net.peers().len(),
        1,
        "a still believes in the old connection"
    );

    // The new b answers a's packets on the old connection with a stateless
    // reset a can verify; a redials at once instead of waiting out the idle timeout.
    let reply = a
        .net
        .request(b_id, common::DHT, Bytes::from_static(b"back"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b_id, a.id(), b"back"));
    assert_eq!(a.net.stats().handshakes_ok, 2);
    assert_eq!(b.net.stats().handshakes_ok, 1);
}

#[tokio::test]
async fn a_peer_that_vanished_is_dropped_after_a_timed_out_request() {
    let a = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                request_timeout: Duration::from_millis(300),
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    let b = TestNode::start().await;
    let relay = common::relay::Relay::start(b.addr()).await;
    a.net.add_address(b.id(), relay.addr);
    a.net
        .request(b.id(), common::DHT, Bytes::new())
        .await
        .unwrap();

    // The path goes silent (a crash without restart, a cable pulled).
    relay.pause(true);
    let err = a
        .net
        .request(b.id(), common::DHT, Bytes::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Timeout), "{err}");
    // Well before the 30 s idle timeout, the dead connection is gone.
    assert!(settles(Duration::from_secs(3), async || a.net.peers().is_empty()).await);
}

#[tokio::test]
async fn peers_match_the_connections_that_exist() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let c = TestNode::start().await;
    a.net.connect(&b.peer_addr()).await.unwrap();
    c.net.connect(&a.peer_addr()).await.unwrap();
    // c's side completes first; a registers the inbound connection a moment later.
    assert!(settles(Duration::from_secs(3), async || a.net.peers().len() == 2).await);
    let peers = a.net.peers();
    let to_b = peers.iter().find(|p| p.node_id == b.id()).unwrap();
    assert_eq!(to_b.direction, Direction::Outbound);
    assert_eq!(to_b.address, b.addr());
    let from_c = peers.iter().find(|p| p.node_id == c.id()).unwrap();
    assert_eq!(from_c.direction, Direction::Inbound);
    assert_eq!(from_c.address, c.addr());
    assert!(to_b.bytes_in > 0 && to_b.bytes_out > 0);
    assert_eq!(a.net.stats().connections, 2);

    let json = serde_json::to_value(&peers[0]).unwrap();
    for key in [
        "nodeId",
        "address",
        "direction",
        "sinceUnixMs",
        "rttMs",
        "bytesIn",
        "bytesOut",
        "keyExchange",
        "signature",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }

    c.net.shutdown().await;
    assert!(settles(Duration::from_secs(3), async || a.net.peers().len() == 1).await);
    assert_eq!(a.net.peers()[0].node_id, b.id());
}

#[tokio::test]
async fn dual_stack_listener_serves_ipv4_and_ipv6() {
    let server = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on("[::]:0".parse().unwrap(), limits(), vec![]),
    )
    .await;
    let port = server.addr().port();
    let v4 = TestNode::start().await;
    let v6 = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on("[::1]:0".parse().unwrap(), limits(), vec![]),
    )
    .await;
    let via_v4: PeerAddr = format!("{}@127.0.0.1:{port}", server.id()).parse().unwrap();
    let via_v6: PeerAddr = format!("{}@[::1]:{port}", server.id()).parse().unwrap();
    assert_eq!(v4.net.connect(&via_v4).await.unwrap(), server.id());
    assert_eq!(v6.net.connect(&via_v6).await.unwrap(), server.id());
    assert!(
        settles(Duration::from_secs(3), async || server.net.peers().len()
            == 2)
        .await
    );
    let from_v4 = server
        .net
        .peers()
        .into_iter()
        .find(|p| p.node_id == v4.id())
        .unwrap();
    assert_eq!(from_v4.address, v4.addr());
    server
        .net
        .request(v6.id(), common::DHT, Bytes::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn shutdown_closes_connections_and_fails_health() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.connect(&b.peer_addr()).await.unwrap();
    assert_eq!(a.net.health().status, Status::Pass);
    a.net.shutdown().await;
    assert_eq!(a.net.health().status, Status::Fail);
    assert!(a.net.peers().is_empty());
    assert!(matches!(
        a.net.request(b.id(), common::DHT, Bytes::new()).await,
        Err(RequestError::ShuttingDown)
    ));
    assert!(settles(Duration::from_secs(3), async || b.net.peers().is_empty()).await);
}
