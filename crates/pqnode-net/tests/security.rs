//! Who gets in: pinned and unpinned identities, classical peers, garbage on the wire.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestNode, echo_reply, limits, localhost};
use pqnode_crypto::{Identity, NodeId};
use pqnode_health::Status;
use pqnode_net::{DialError, PeerAddr, Protocol};
use pqnode_testkit::settles;

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
        .request(b.id(), common::DHT, Bytes::new())
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
    let ok = settles(Duration::from_secs(2), async || {
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
    let refused = settles(Duration::from_secs(2), async || {
        b.net.stats().handshakes_failed.get("certificate_required") == Some(&1)
    })
    .await;
    assert!(refused, "{:?}", b.net.stats());
    assert!(b.net.peers().is_empty());
    assert_eq!(b.net.stats().handshakes_ok, 0);
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

    // Bad version, oversized length, truncated body, trailing bytes.
    let mut oversized = vec![1, Protocol::PING.id()];
    oversized.extend_from_slice(&1000u32.to_be_bytes());
    let cases: Vec<Vec<u8>> = vec![
        vec![9, 1, 0, 0, 0, 0],
        oversized,
        vec![1, 1, 0, 0, 0, 10, 1, 2],
        vec![1, 15, 0, 0, 0, 0, 0xff],
    ];
    for case in &cases {
        let result = send_raw(&conn, case).await;
        assert!(result.is_err(), "{case:?} must be reset, got {result:?}");
    }
    // A protocol this node does not serve is not an attack (a newer peer may speak it):
    // it is answered with a failure, status 1.
    let unserved = send_raw(&conn, &[1, 77, 0, 0, 0, 0]).await.unwrap();
    assert_eq!(&unserved[..2], &[1, 1]);
    // A well-formed ping on the same connection is still answered.
    let ok = send_raw(&conn, &[1, 15, 0, 0, 0, 0]).await.unwrap();
    assert_eq!(ok, vec![1, 0, 0, 0, 0, 0]);
    assert_eq!(b.net.stats().streams_reset, cases.len() as u64);

    // Another node is served normally meanwhile.
    let c = TestNode::start().await;
    c.net.add_address(b.id(), b.addr());
    c.net
        .request(b.id(), common::DHT, Bytes::new())
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
        .request(b.id(), common::DHT, Bytes::new())
        .await
        .unwrap();
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
        .request(b.id(), common::DHT, Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(reply, echo_reply(b.id(), c.id(), b"ok"));
}

#[tokio::test]
async fn a_copied_key_on_another_host_is_refused_and_reported() {
    let original = TestNode::start().await;
    let copy = Identity::from_seed(original.identity.seed()).unwrap();
    let clone = TestNode::start_with(copy, common::config_on(localhost(), limits(), vec![])).await;
    assert_eq!(clone.id(), original.id());

    // The copy dials the original's address: both ends prove the same id.
    let dialed = clone
        .net
        .connect(&PeerAddr::new(None, original.addr()))
        .await;
    assert!(dialed.is_err(), "{dialed:?}");
    let reported = settles(Duration::from_secs(10), async || {
        original.net.stats().duplicate_identity_connections == 1
    })
    .await;
    assert!(reported, "the original never noticed its key elsewhere");
    let health = original.net.health();
    assert_eq!(health.status, Status::Warn);
    assert!(health.reason.unwrap().contains("identity"));
    // The dialing side saw its own dial, not a thief.
    assert_eq!(clone.net.stats().duplicate_identity_connections, 0);
}

#[tokio::test]
async fn dialing_our_own_address_is_not_a_copied_key() {
    let node = TestNode::start().await;
    let dialed = node.net.connect(&PeerAddr::new(None, node.addr())).await;
    assert!(dialed.is_err(), "{dialed:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(node.net.stats().duplicate_identity_connections, 0);
    assert_eq!(node.net.health().status, Status::Pass);
}

/// Answers with a fixed name, so a test sees which of two hosts with one key answered.
struct Named(&'static str);

impl pqnode_net::Handler for Named {
    async fn handle(
        &self,
        _caller: pqnode_net::Caller,
        _payload: Bytes,
    ) -> Result<Bytes, pqnode_net::HandlerError> {
        Ok(Bytes::from_static(self.0.as_bytes()))
    }
}

const WHO: Protocol = Protocol::new(6, "WHO", 64);

#[tokio::test]
async fn a_second_host_with_a_nodes_key_does_not_take_over_its_route() {
    let observer = TestNode::start().await;
    let original = TestNode::start().await;
    let copy = TestNode::start_with(
        Identity::from_seed(original.identity.seed()).unwrap(),
        common::config_on(localhost(), limits(), vec![]),
    )
    .await;
    original.net.register(WHO, Named("original")).unwrap();
    copy.net.register(WHO, Named("copy")).unwrap();

    original.net.connect(&observer.peer_addr()).await.unwrap();
    // The copy calls the observer too, from its own address, while the original's
    // connection is alive and answering.
    let _ = copy.net.connect(&observer.peer_addr()).await;
    let noticed = settles(Duration::from_secs(5), async || {
        observer.net.stats().identity_clashes == 1
    })
    .await;
    assert!(noticed, "the observer never saw the clash");
    let reply = observer
        .net
        .request(original.id(), WHO, Bytes::new())
        .await
        .unwrap();
    assert_eq!(reply, Bytes::from_static(b"original"), "routing stayed put");
    assert_eq!(observer.net.health().status, Status::Warn);

    // Once the original is gone, the same id calling from a new address is a move.
    original.net.shutdown().await;
    let moved = settles(Duration::from_secs(10), async || {
        observer
            .net
            .peers()
            .iter()
            .all(|p| p.address != original.addr())
    })
    .await;
    assert!(moved, "the original's connection never closed");
    copy.net.connect(&observer.peer_addr()).await.unwrap();
    let reply = observer
        .net
        .request(copy.id(), WHO, Bytes::new())
        .await
        .unwrap();
    assert_eq!(reply, Bytes::from_static(b"copy"));
}
