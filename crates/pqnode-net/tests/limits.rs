//! Admission caps and resource budgets.

mod common;

use std::time::Duration;

use common::{TestNode, config_on, limits, localhost};
use pqnode_crypto::Identity;
use pqnode_net::{DialError, PeerAddr};
use pqnode_testkit::settles;

#[tokio::test]
async fn per_ip_cap_refuses_politely() {
    let server = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                max_per_ip: 2,
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let c = TestNode::start().await;
        c.net.connect(&server.peer_addr()).await.unwrap();
        clients.push(c);
    }
    let third = TestNode::start().await;
    let err = third.net.connect(&server.peer_addr()).await.unwrap_err();
    assert!(
        matches!(&err, DialError::Busy { .. }) && err.retry_after().is_some(),
        "{err}"
    );
    assert_eq!(server.net.stats().refused["max_per_ip"], 1);
    // A slot frees up when a client leaves.
    clients.pop().unwrap().net.shutdown().await;
    assert!(
        settles(Duration::from_secs(3), async || server.net.peers().len()
            == 1)
        .await
    );
    third.net.connect(&server.peer_addr()).await.unwrap();
}

#[tokio::test]
async fn connection_cap_refuses_and_outbound_dials_fail_fast() {
    let server = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                max_connections: 1,
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    let first = TestNode::start().await;
    first.net.connect(&server.peer_addr()).await.unwrap();
    let second = TestNode::start().await;
    assert!(second.net.connect(&server.peer_addr()).await.is_err());
    assert_eq!(server.net.stats().refused["max_connections"], 1);
    // The server itself cannot dial out past its cap either.
    let err = server.net.connect(&second.peer_addr()).await.unwrap_err();
    assert!(matches!(err, DialError::TooManyConnections), "{err}");
}

#[tokio::test]
async fn half_open_cap_refuses_new_handshakes() {
    let server = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                max_half_open: 0,
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    let client = TestNode::start().await;
    let err = client.net.connect(&server.peer_addr()).await.unwrap_err();
    assert!(
        matches!(&err, DialError::Busy { .. }) && err.retry_after().is_some(),
        "{err}"
    );
    assert_eq!(server.net.stats().refused["max_half_open"], 1);
    assert_eq!(server.net.stats().handshakes_ok, 0);
}

#[tokio::test]
async fn under_handshake_load_unvalidated_clients_get_a_retry() {
    let server = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                max_half_open: 2,
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    // One handshake stays half-open: the server's replies never arrive.
    let relay = common::relay::Relay::start(server.addr()).await;
    relay.pause_replies(true);
    let stalled = TestNode::start().await;
    let stalled_dial = {
        let net = stalled.net.clone();
        let to = PeerAddr::new(Some(server.id()), relay.addr);
        tokio::spawn(async move { net.connect(&to).await })
    };
    assert!(
        settles(Duration::from_secs(3), async || server
            .net
            .stats()
            .handshakes_in_progress
            == 1)
        .await
    );
    // The next unvalidated client must prove its address first (QUIC Retry),
    // and then gets in.
    let client = TestNode::start().await;
    assert_eq!(
        client.net.connect(&server.peer_addr()).await.unwrap(),
        server.id()
    );
    assert_eq!(server.net.stats().retries_sent, 1);
    stalled_dial.abort();
}

#[tokio::test]
async fn protocols_larger_than_the_byte_budget_cannot_be_registered() {
    let config = config_on(
        localhost(),
        pqnode_net::Limits {
            max_request_bytes_per_connection: 1024,
            ..limits()
        },
        vec![],
    );
    let net = pqnode_net::Network::start(&Identity::generate().unwrap(), config)
        .await
        .unwrap();
    // A request of this protocol could never be buffered: refuse it now, not on every call.
    let err = net
        .register(common::DHT, common::Echo(net.node_id()))
        .unwrap_err();
    assert!(
        matches!(err, pqnode_net::RegisterError::CapOverBudget { .. }),
        "{err}"
    );
    const SMALL: pqnode_net::Protocol = pqnode_net::Protocol::new(5, "SMALL", 1024);
    net.register(SMALL, common::Echo(net.node_id())).unwrap();
}
