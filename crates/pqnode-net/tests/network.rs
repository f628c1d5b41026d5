//! End-to-end behaviour of the transport: in-process nodes on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestNode, config_on, echo_reply, eventually, limits, localhost};
use pqnode_crypto::{Identity, NodeId};
use pqnode_health::Status;
use pqnode_net::wire::pb::FailureCode;
use pqnode_net::{DialError, Direction, PeerAddr, Protocol, RequestError};

#[tokio::test]
async fn two_nodes_exchange_requests_and_messages_both_ways() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.add_address(b.id(), b.addr());

    let reply = a
        .net
        .request(b.id(), Protocol::Dht, Bytes::from_static(b"ping"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), a.id(), b"ping"));
    // b learned a's id and address from the handshake: it can answer back on the same connection.
    let reply = b
        .net
        .request(a.id(), Protocol::Dht, Bytes::from_static(b"pong"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(a.id(), b.id(), b"pong"));

    a.net
        .send_message(b.id(), Bytes::from_static(b"hello b"))
        .await
        .unwrap();
    b.net
        .send_message(a.id(), Bytes::from_static(b"hello a"))
        .await
        .unwrap();
    let at_b = b.inbox.messages();
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].from, a.id());
    assert_eq!(at_b[0].body, Bytes::from_static(b"hello b"));
    let at_a = a.inbox.messages();
    assert_eq!(at_a.len(), 1);
    assert_eq!(at_a[0].from, b.id());

    // One connection, reused for everything.
    assert_eq!(a.net.stats().handshakes_ok, 1);
    assert_eq!(b.net.stats().handshakes_ok, 1);
    assert_eq!(a.net.peers().len(), 1);
    assert_eq!(a.net.stats().requests_out["MESSAGE"], 1);
    assert_eq!(b.net.stats().messages_delivered, 1);
}

#[tokio::test]
async fn handler_failures_and_missing_handlers_reach_the_caller() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.add_address(b.id(), b.addr());
    let err = a
        .net
        .request(b.id(), Protocol::Dht, Bytes::from_static(b"fail"))
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
        .request(b.id(), Protocol::Sync, Bytes::from(vec![0u8; 4 << 20]))
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
    a.net
        .request(b.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap();
    assert_eq!(a.net.stats().handshakes_ok, 1);
}

#[tokio::test]
async fn messages_over_the_cap_are_refused_locally() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.add_address(b.id(), b.addr());
    let big = Bytes::from(vec![0u8; pqnode_net::MAX_MESSAGE_BODY_LEN + 1]);
    assert!(matches!(
        a.net.send_message(b.id(), big).await,
        Err(RequestError::TooLarge { .. })
    ));
    let max = Bytes::from(vec![7u8; pqnode_net::MAX_MESSAGE_BODY_LEN]);
    a.net.send_message(b.id(), max.clone()).await.unwrap();
    assert_eq!(b.inbox.messages()[0].body, max);
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
                    .request(to, Protocol::Dht, Bytes::from_static(b"x"))
                    .await
                    .unwrap();
                assert_eq!(reply, echo_reply(to, from, b"x"));
                net.send_message(to, Bytes::from_static(b"hi"))
                    .await
                    .unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for n in &nodes {
        assert_eq!(n.inbox.messages().len(), 4);
    }
    // Duplicate connections from simultaneous dials collapse to one per pair, on both sides.
    let settled = eventually(Duration::from_secs(5), || {
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
async fn dialing_the_wrong_id_is_refused() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let impostor = NodeId::from_public_key(b"someone else");
    let err = a
        .net
        .connect(&PeerAddr::new(Some(impostor), b.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DialError::Refused { reason, .. } if reason.starts_with("wrong_node_id")),
        "{err}"
    );
    assert_eq!(a.net.stats().handshakes_failed["wrong_node_id"], 1);
    assert!(a.net.peers().is_empty());
    // The right id works on the same address.
    assert_eq!(a.net.connect(&b.peer_addr()).await.unwrap(), b.id());
}

#[tokio::test]
async fn unpinned_dial_learns_the_peer_id() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let learned = a
        .net
        .connect(&format!("{}", b.addr()).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(learned, b.id());
    let peers = a.net.peers();
    assert_eq!(peers.len(), 1);
    assert!(!peers[0].pinned);
    assert_eq!(peers[0].signature, "ML-DSA-87");
    assert_eq!(peers[0].key_exchange, "MLKEM1024");
    a.net
        .request(b.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap();
}

async fn classical_attempt(
    server: &TestNode,
    kx: &'static dyn rustls::crypto::SupportedKxGroup,
) -> quinn::ConnectionError {
    let client = quinn::Endpoint::client(localhost()).unwrap();
    let config = common::classical::client_config(kx);
    let result = client
        .connect_with(config, server.addr(), &format!("n{}", server.id()))
        .unwrap()
        .await;
    match result {
        Ok(conn) => {
            // TLS may complete on the client before the server verified it; the server must then close.
            let e = conn.closed().await;
            assert!(server.net.peers().is_empty());
            e
        }
        Err(e) => e,
    }
}

#[tokio::test]
async fn classical_peer_is_refused() {
    let b = TestNode::start().await;
    let err = classical_attempt(&b, rustls::crypto::aws_lc_rs::kx_group::X25519).await;
    assert!(
        err.to_string().to_lowercase().contains("handshake"),
        "{err}"
    );
    let ok = eventually(Duration::from_secs(2), || {
        b.net.stats().handshakes_failed.get("no_common_algorithms") == Some(&1)
    })
    .await;
    assert!(ok, "{:?}", b.net.stats().handshakes_failed);
    assert!(b.net.peers().is_empty());
    assert_eq!(b.net.health().status, Status::Pass);
}

#[tokio::test]
async fn pq_key_exchange_with_classical_signature_is_refused() {
    let b = TestNode::start().await;
    // The server asks for ML-DSA-87 only; an Ed25519-only client has nothing to offer.
    let err = classical_attempt(&b, rustls::crypto::aws_lc_rs::kx_group::MLKEM1024).await;
    assert!(err.to_string().contains("no certificates"), "{err}");
    let refused = eventually(Duration::from_secs(2), || {
        b.net.stats().handshakes_failed.get("certificate_required") == Some(&1)
    })
    .await;
    assert!(refused, "{:?}", b.net.stats());
    assert!(b.net.peers().is_empty());
    assert_eq!(b.net.stats().handshakes_ok, 0);
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
            net.request(to, Protocol::Dht, Bytes::from(vec![i])).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(a.net.stats().handshakes_ok, 1);
    assert_eq!(b.net.stats().handshakes_ok, 1);
}

/// Opens a raw stream on a PQ connection and writes `bytes`; returns how the stream ended.
async fn send_raw(conn: &quinn::Connection, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let _ = send.write_all(bytes).await;
    let _ = send.finish();
    recv.read_to_end(1 << 20).await.map_err(|e| e.to_string())
}

/// A raw quinn client with a real PQ identity, so it can speak garbage after a valid handshake.
async fn raw_pq_client(server: &TestNode) -> (quinn::Endpoint, quinn::Connection) {
    let identity = Identity::generate().unwrap();
    let tls = pqnode_net::tls::TlsIdentity::new(&identity).unwrap();
    let crypto = tls.client_config(pqnode_net::tls::Observed::new()).unwrap();
    let endpoint = quinn::Endpoint::client(localhost()).unwrap();
    let conn = endpoint
        .connect_with(
            quinn::ClientConfig::new(Arc::new(crypto)),
            server.addr(),
            &pqnode_net::tls::server_name(Some(server.id())),
        )
        .unwrap()
        .await
        .unwrap();
    (endpoint, conn)
}

#[tokio::test]
async fn garbage_frames_are_reset_and_the_node_keeps_serving() {
    let b = TestNode::start().await;
    let (_endpoint, conn) = raw_pq_client(&b).await;

    // Bad version, unknown protocol, oversized length, truncated body, trailing bytes.
    let mut oversized = vec![1, Protocol::Ping.wire_id()];
    oversized.extend_from_slice(&1000u32.to_be_bytes());
    let cases: Vec<Vec<u8>> = vec![
        vec![9, 1, 0, 0, 0, 0],
        vec![1, 77, 0, 0, 0, 0],
        oversized,
        vec![1, 1, 0, 0, 0, 10, 1, 2],
        vec![1, 15, 0, 0, 0, 0, 0xff],
    ];
    for case in &cases {
        let result = send_raw(&conn, case).await;
        assert!(result.is_err(), "{case:?} must be reset, got {result:?}");
    }
    // A well-formed ping on the same connection is still answered.
    let ok = send_raw(&conn, &[1, 15, 0, 0, 0, 0]).await.unwrap();
    assert_eq!(ok, vec![1, 0, 0, 0, 0, 0]);
    assert_eq!(b.net.stats().streams_reset, cases.len() as u64);

    // Another node is served normally meanwhile.
    let c = TestNode::start().await;
    c.net.add_address(b.id(), b.addr());
    c.net
        .request(b.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap();

    // Repeated abuse closes the abuser's connection, and only that one.
    for _ in 0..limits().max_protocol_violations {
        let _ = send_raw(&conn, &[0xde, 0xad, 0xbe, 0xef, 0, 0]).await;
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
        .await
        .unwrap();
    assert!(reason.to_string().contains("closed by peer"), "{reason}");
    assert_eq!(b.net.stats().connections_closed_for_abuse, 1);
    assert_eq!(b.net.health().status, Status::Pass);
    c.net
        .request(b.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap();
}

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
        .request(b.id(), Protocol::Dht, Bytes::new())
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
        .request(b.id(), Protocol::Dht, Bytes::from_static(b"again"))
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
    let reconnected = eventually(Duration::from_secs(5), || {
        a.net
            .peers()
            .iter()
            .any(|p| p.node_id == b.id() && p.address == b.addr())
    })
    .await;
    assert!(reconnected, "{:?}", a.net.peers());
    let reply = a
        .net
        .request(b.id(), Protocol::Dht, Bytes::from_static(b"new"))
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
    assert!(eventually(Duration::from_secs(5), || b.net.peers().len() == 1).await);
    a.net.shutdown().await;
    drop(a);
    assert!(eventually(Duration::from_secs(5), || b.net.peers().is_empty()).await);
    assert_eq!(b.net.health().status, Status::Warn);
    let a = TestNode::start_with(
        Identity::from_seed(&a_seed).unwrap(),
        config_on(a_addr, limits(), vec![]),
    )
    .await;
    assert!(eventually(Duration::from_secs(5), || a.net.peers().len() == 1).await);
    assert_eq!(b.net.health().status, Status::Pass);
}

#[tokio::test]
async fn peers_match_the_connections_that_exist() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let c = TestNode::start().await;
    a.net.connect(&b.peer_addr()).await.unwrap();
    c.net.connect(&a.peer_addr()).await.unwrap();
    // c's side completes first; a registers the inbound connection a moment later.
    assert!(eventually(Duration::from_secs(3), || a.net.peers().len() == 2).await);
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
    assert!(eventually(Duration::from_secs(3), || a.net.peers().len() == 1).await);
    assert_eq!(a.net.peers()[0].node_id, b.id());
}

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
        matches!(&err, DialError::Refused { reason, .. } if reason.starts_with("refused_by_peer")),
        "{err}"
    );
    assert_eq!(server.net.stats().refused["max_per_ip"], 1);
    // A slot frees up when a client leaves.
    clients.pop().unwrap().net.shutdown().await;
    assert!(eventually(Duration::from_secs(3), || server.net.peers().len() == 1).await);
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
async fn shutdown_closes_connections_and_fails_health() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.net.connect(&b.peer_addr()).await.unwrap();
    assert_eq!(a.net.health().status, Status::Pass);
    a.net.shutdown().await;
    assert_eq!(a.net.health().status, Status::Fail);
    assert!(a.net.peers().is_empty());
    assert!(matches!(
        a.net.request(b.id(), Protocol::Dht, Bytes::new()).await,
        Err(RequestError::ShuttingDown)
    ));
    assert!(eventually(Duration::from_secs(3), || b.net.peers().is_empty()).await);
}

#[tokio::test]
async fn requests_to_unknown_peers_fail_without_an_address() {
    let a = TestNode::start().await;
    let nobody = NodeId::from_public_key(b"nobody");
    assert!(matches!(
        a.net.request(nobody, Protocol::Dht, Bytes::new()).await,
        Err(RequestError::Dial(DialError::NoAddress(_)))
    ));
    assert!(matches!(
        a.net.register(Protocol::Ping, common::Echo(a.id())),
        Err(pqnode_net::RegisterError::Reserved(Protocol::Ping))
    ));
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
        matches!(&err, DialError::Refused { reason, .. } if reason.starts_with("refused_by_peer")),
        "{err}"
    );
    assert_eq!(server.net.stats().refused["max_half_open"], 1);
    assert_eq!(server.net.stats().handshakes_ok, 0);
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
async fn random_bytes_on_streams_never_hurt_the_node() {
    let b = TestNode::start().await;
    // A small deterministic generator: the point is many shapes of garbage, reproducibly.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..4 {
        let (_endpoint, conn) = raw_pq_client(&b).await;
        for _ in 0..limits().max_protocol_violations {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the time, a valid version byte so the decoder gets further.
            if next() % 2 == 0 && !bytes.is_empty() {
                bytes[0] = 1;
            }
            let _ = send_raw(&conn, &bytes).await;
        }
    }
    assert_eq!(b.net.health().status, Status::Pass);
    let c = TestNode::start().await;
    c.net.add_address(b.id(), b.addr());
    let reply = c
        .net
        .request(b.id(), Protocol::Dht, Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), c.id(), b"ok"));
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
    assert!(eventually(Duration::from_secs(3), || server.net.peers().len() == 2).await);
    let from_v4 = server
        .net
        .peers()
        .into_iter()
        .find(|p| p.node_id == v4.id())
        .unwrap();
    assert_eq!(from_v4.address, v4.addr());
    server
        .net
        .request(v6.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap();
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
        .request(server.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap_err();
    assert!(
        matches!(first, RequestError::Dial(DialError::Refused { .. })),
        "{first}"
    );
    let second = client
        .net
        .request(server.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap_err();
    assert!(
        matches!(second, RequestError::Dial(DialError::Backoff { .. })),
        "{second}"
    );
    assert_eq!(server.net.stats().refused["max_connections"], 1);
    // An explicit connect is not held back.
    let explicit = client.net.connect(&server.peer_addr()).await.unwrap_err();
    assert!(matches!(explicit, DialError::Refused { .. }), "{explicit}");
    assert_eq!(server.net.stats().refused["max_connections"], 2);
}

#[tokio::test]
async fn budgets_smaller_than_a_frame_are_rejected_at_start() {
    let config = config_on(
        localhost(),
        pqnode_net::Limits {
            max_request_bytes_per_connection: 1024,
            ..limits()
        },
        vec![],
    );
    let err = pqnode_net::Network::start(&Identity::generate().unwrap(), config)
        .await
        .unwrap_err();
    assert!(matches!(err, pqnode_net::StartError::Config(_)), "{err}");
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
        .request(b_id, Protocol::Dht, Bytes::new())
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
        .request(b_id, Protocol::Dht, Bytes::from_static(b"back"))
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
        .request(b.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap();

    // The path goes silent (a crash without restart, a cable pulled).
    relay.pause(true);
    let err = a
        .net
        .request(b.id(), Protocol::Dht, Bytes::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Timeout), "{err}");
    // Well before the 30 s idle timeout, the dead connection is gone.
    assert!(eventually(Duration::from_secs(3), || a.net.peers().is_empty()).await);
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
        eventually(Duration::from_secs(3), || server
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
