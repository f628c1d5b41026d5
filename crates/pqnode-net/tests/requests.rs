//! Requests between in-process nodes on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{DHT, SYNC, TestNode, config_on, echo_reply, limits, localhost};
use pqnode_crypto::{Identity, NodeId};
use pqnode_net::{
    AddressLookup, BoxFuture, Caller, DialError, Direction, FailureCode, FrameError, Handler,
    HandlerError, Protocol, RegisterError, RequestError,
};
use pqnode_testkit::settles;

/// Keeps every caller it is handed, so a test can look at them; answers with nothing.
#[derive(Clone, Default)]
struct SeenCallers(Arc<Mutex<Vec<Caller>>>);

impl SeenCallers {
    fn take(&self) -> Vec<Caller> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Handler for SeenCallers {
    async fn handle(&self, caller: Caller, _payload: Bytes) -> Result<Bytes, HandlerError> {
        self.0.lock().unwrap().push(caller);
        Ok(Bytes::new())
    }
}

#[tokio::test]
async fn two_nodes_exchange_requests_both_ways() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.add_address(b.id(), b.addr());

    let reply = a
        .net
        .request(b.id(), DHT, Bytes::from_static(b"ping"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), a.id(), b"ping"));
    // b learned a's id and address from the handshake: it can answer back on the same connection.
    let reply = b
        .net
        .request(a.id(), DHT, Bytes::from_static(b"pong"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(a.id(), b.id(), b"pong"));

    // One connection, reused for everything.
    assert_eq!(a.net.stats().handshakes_ok, 1);
    assert_eq!(b.net.stats().handshakes_ok, 1);
    assert_eq!(a.net.peers().len(), 1);
    assert_eq!(a.net.stats().requests_out["DHT"], 1);
    assert_eq!(b.net.stats().requests_in["DHT"], 1);
}

#[tokio::test]
async fn handler_failures_and_missing_handlers_reach_the_caller() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.add_address(b.id(), b.addr());
    let err = a
        .net
        .request(b.id(), DHT, Bytes::from_static(b"fail"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Remote {
                code: FailureCode::BadRequest,
                ..
            }
        ),
        "{err:?}"
    );
    let err = a
        .net
        .request(b.id(), SYNC, Bytes::from(vec![0u8; 4 << 20]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Remote {
                code: FailureCode::NoHandler,
                ..
            }
        ),
        "{err:?}"
    );
    // The connection survives both.
    a.net.request(b.id(), DHT, Bytes::new()).await.unwrap();
    assert_eq!(a.net.stats().handshakes_ok, 1);
}

/// A protocol with a small cap, to probe the limit from both sides.
const SMALL: Protocol = Protocol::new(5, "SMALL", 1024);

#[tokio::test]
async fn bodies_over_the_protocol_cap_are_refused_before_sending() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    b.net.register(SMALL, SeenCallers::default()).unwrap();
    a.net.add_address(b.id(), b.addr());
    let over = a
        .net
        .request(b.id(), SMALL, Bytes::from(vec![0u8; 1025]))
        .await
        .unwrap_err();
    assert!(
        matches!(over, RequestError::Frame(FrameError::TooLarge { .. })),
        "{over:?}"
    );
    assert_eq!(a.net.stats().handshakes_ok, 0, "refused before dialing");
    let at_cap = Bytes::from(vec![7u8; 1024]);
    a.net.request(b.id(), SMALL, at_cap).await.unwrap();
}

#[tokio::test]
async fn five_nodes_all_to_all() {
    let mut nodes = Vec::new();
    for _ in 0..5 {
        nodes.push(TestNode::start().await);
    }
    for n in &nodes {
        for m in &nodes {
            if n.id() != m.id() {
                n.net.add_address(m.id(), m.addr());
            }
        }
    }
    // Everyone asks everyone at once, so simultaneous dials between pairs happen.
    let mut tasks = Vec::new();
    for n in &nodes {
        for m in &nodes {
            if n.id() == m.id() {
                continue;
            }
            let (net, to, from) = (n.net.clone(), m.id(), n.id());
            tasks.push(tokio::spawn(async move {
                let reply = net
                    .request(to, DHT, Bytes::from_static(b"x"))
                    .await
                    .unwrap();
                assert_eq!(reply, echo_reply(to, from, b"x"));
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for n in &nodes {
        assert_eq!(n.net.stats().requests_in["DHT"], 4);
    }
    // Duplicate connections from simultaneous dials collapse to one per pair, on both sides.
    let settled = settles(Duration::from_secs(5), async || {
        nodes.iter().all(|n| n.net.peers().len() == 4)
    })
    .await;
    assert!(
        settled,
        "{:?}",
        nodes
            .iter()
            .map(|n| n.net.peers().len())
            .collect::<Vec<_>>()
    );
    for n in &nodes {
        for p in n.net.peers() {
            let other = nodes.iter().find(|m| m.id() == p.node_id).unwrap();
            let back = other
                .net
                .peers()
                .into_iter()
                .find(|q| q.node_id == n.id())
                .unwrap();
            let expected = if p.direction == Direction::Outbound {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            assert_eq!(
                back.direction, expected,
                "both ends keep the same connection"
            );
        }
    }
}

#[tokio::test]
async fn concurrent_requests_to_a_new_peer_share_one_handshake() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.add_address(b.id(), b.addr());
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let net = a.net.clone();
        let to = b.id();
        tasks.push(tokio::spawn(async move {
            net.request(to, DHT, Bytes::from(vec![i])).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.net.stats().handshakes_ok, 1);
    assert_eq!(b.net.stats().handshakes_ok, 1);
}

#[tokio::test]
async fn requests_to_unknown_peers_fail_without_an_address() {
    let a = TestNode::start().await;
    let nobody = NodeId::from_public_key(b"nobody");
    assert!(matches!(
        a.net.request(nobody, DHT, Bytes::new()).await,
        Err(RequestError::Dial(DialError::NoAddress(_)))
    ));
    assert!(matches!(
        a.net.register(Protocol::PING, common::Echo(a.id())),
        Err(RegisterError::Reserved(p)) if p == Protocol::PING
    ));
}

/// Answers every lookup with one fixed address, counting the calls.
struct FixedLookup {
    node: NodeId,
    addr: std::net::SocketAddr,
    calls: Arc<Mutex<u32>>,
}

impl AddressLookup for FixedLookup {
    fn find(&self, node: NodeId) -> BoxFuture<'_, Option<std::net::SocketAddr>> {
        *self.calls.lock().unwrap() += 1;
        let found = (node == self.node).then_some(self.addr);
        Box::pin(async move { found })
    }
}

#[tokio::test]
async fn a_dial_by_id_asks_the_address_lookup_when_no_address_is_known() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let calls = Arc::new(Mutex::new(0));
    a.net.set_address_lookup(Arc::new(FixedLookup {
        node: b.id(),
        addr: b.addr(),
        calls: calls.clone(),
    }));
    let reply = a
        .net
        .request(b.id(), DHT, Bytes::from_static(b"found"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), a.id(), b"found"));
    assert_eq!(*calls.lock().unwrap(), 1);

    // Known now: no second lookup.
    a.net.request(b.id(), DHT, Bytes::new()).await.unwrap();
    assert_eq!(*calls.lock().unwrap(), 1);

    // An id the lookup cannot find fails as before, after asking.
    let nobody = NodeId::from_public_key(b"nobody");
    assert!(matches!(
        a.net.request(nobody, DHT, Bytes::new()).await,
        Err(RequestError::Dial(DialError::NoAddress(_)))
    ));
    assert_eq!(*calls.lock().unwrap(), 2);
}

#[tokio::test]
async fn requests_back_off_from_a_peer_that_refused() {
    let server = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                max_connections: 0,
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    let client = TestNode::start_with(
        Identity::generate().unwrap(),
        config_on(
            localhost(),
            pqnode_net::Limits {
                reconnect_min: Duration::from_secs(60),
                ..limits()
            },
            vec![],
        ),
    )
    .await;
    client.net.add_address(server.id(), server.addr());
    let first = client
        .net
        .request(server.id(), DHT, Bytes::new())
        .await
        .unwrap_err();
    // The peer is at its cap: load, which callers may retry after a while.
    assert!(
        matches!(first, RequestError::Dial(DialError::Busy { .. })),
        "{first}"
    );
    assert!(first.retry_after().is_some());
    let second = client
        .net
        .request(server.id(), DHT, Bytes::new())
        .await
        .unwrap_err();
    assert!(
        matches!(second, RequestError::Dial(DialError::Backoff { .. })),
        "{second}"
    );
    assert_eq!(server.net.stats().refused["max_connections"], 1);
    // An explicit connect is not held back.
    let explicit = client.net.connect(&server.peer_addr()).await.unwrap_err();
    assert!(matches!(explicit, DialError::Busy { .. }), "{explicit}");
    assert_eq!(server.net.stats().refused["max_connections"], 2);
}

#[tokio::test]
async fn subscribers_see_peers_come_and_go() {
    let a = TestNode::start().await;
    let mut events = a.net.subscribe();
    let b = TestNode::start().await;
    b.net.connect(&a.peer_addr()).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(3), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        event,
        pqnode_net::PeerEvent::Connected {
            node_id: b.id(),
            address: b.addr(),
            direction: Direction::Inbound
        }
    );
    // Dropping every handle stops a node; its peers notice.
    let b_id = b.id();
    drop(b);
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, pqnode_net::PeerEvent::Disconnected { node_id: b_id });
    assert!(a.net.peers().is_empty());
}

#[tokio::test]
async fn handlers_are_told_the_caller_and_the_address_its_connection_comes_from() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let seen_by_a = SeenCallers::default();
    let seen_by_b = SeenCallers::default();
    a.net.register(SYNC, seen_by_a.clone()).unwrap();
    b.net.register(SYNC, seen_by_b.clone()).unwrap();
    a.net.add_address(b.id(), b.addr());

    let (_, answered_from) = a
        .net
        .request_with_addr(b.id(), SYNC, Bytes::new())
        .await
        .unwrap();
    assert_eq!(answered_from, b.addr());
    let a_caller = Caller {
        node_id: a.id(),
        addr: a.addr(),
    };
    assert_eq!(seen_by_b.take(), [a_caller]);

    // The other way, on the connection a dialed.
    let (_, answered_from) = b
        .net
        .request_with_addr(a.id(), SYNC, Bytes::new())
        .await
        .unwrap();
    assert_eq!(answered_from, a.addr());
    let b_caller = Caller {
        node_id: b.id(),
        addr: b.addr(),
    };
    assert_eq!(seen_by_a.take(), [b_caller]);
    assert_eq!(a.net.stats().handshakes_ok, 1);
}

#[tokio::test]
async fn a_peer_restarted_on_a_new_port_calls_from_its_new_address() {
    let a = TestNode::start().await;
    let seen = SeenCallers::default();
    a.net.register(SYNC, seen.clone()).unwrap();
    let b_seed = **Identity::generate().unwrap().seed();
    let start_b = || {
        TestNode::start_with(
            Identity::from_seed(&b_seed).unwrap(),
            config_on(localhost(), limits(), vec![]),
        )
    };

    let b = start_b().await;
    let b_id = b.id();
    let old_addr = b.addr();
    b.net.add_address(a.id(), a.addr());
    b.net.request(a.id(), SYNC, Bytes::new()).await.unwrap();
    b.net.shutdown().await;
    drop(b);

    let b = start_b().await;
    assert_ne!(b.addr(), old_addr, "the OS gave the same port twice");
    b.net.add_address(a.id(), a.addr());
    b.net.request(a.id(), SYNC, Bytes::new()).await.unwrap();
    let callers: Vec<_> = seen
        .take()
        .into_iter()
        .map(|c| (c.node_id, c.addr))
        .collect();
    assert_eq!(callers, [(b_id, old_addr), (b_id, b.addr())]);
}
