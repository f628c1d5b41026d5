//! Two signaling servers joined through an in-memory implementation of the
//! federation traits: a peer on one node reaches a peer on the other.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Client, Key, PATIENCE, TestServer, node_id, quick_config, start_server};
use pqnode_crypto::NodeId;
use pqnode_signaling::EnvelopeError;
use pqnode_signaling::federation::{
    BoxFuture, DeliveryOutcome, Directory, FederationError, Forwarder, MessageId, RelayEnvelope,
    RemotePeer, Withdrawal, wire,
};
use pqnode_signaling::{PeerId, PresenceProof, RelayKind, SignalingServer};
use pqnode_testkit::eventually;
use serde_json::json;

/// One node's entry under a peer's presence key, as the DHT would hold it.
#[derive(Clone)]
enum Entry {
    Present(Arc<PresenceProof>, Vec<String>),
    Withdrawn,
}

/// The shared "DHT" and "network" of the test.
#[derive(Default)]
struct Mesh {
    presence: Mutex<HashMap<PeerId, HashMap<NodeId, Entry>>>,
    servers: Mutex<HashMap<NodeId, SignalingServer>>,
    locates: Mutex<HashMap<NodeId, usize>>,
    forwards: AtomicUsize,
    publishes: AtomicUsize,
    withdrawals_sent: AtomicUsize,
    /// Proofs that nodes which do not serve the peer put in front of the real ones.
    forged: Mutex<HashMap<PeerId, PresenceProof>>,
}

impl Mesh {
    /// The node holding `peer`'s newest registration.
    fn present(&self, peer: &PeerId) -> Option<NodeId> {
        self.proofs(peer).first().map(|p| p.node_id)
    }

    fn proofs(&self, peer: &PeerId) -> Vec<PresenceProof> {
        let mut proofs: Vec<PresenceProof> = self
            .presence
            .lock()
            .unwrap()
            .get(peer)
            .into_iter()
            .flat_map(|entries| entries.values())
            .filter_map(|e| match e {
                Entry::Present(proof, _) => Some((**proof).clone()),
                Entry::Withdrawn => None,
            })
            .collect();
        proofs.sort_by_key(|p| std::cmp::Reverse(p.ts_ms));
        proofs
    }

    fn topics(&self, peer: &PeerId) -> Option<Vec<String>> {
        let presence = self.presence.lock().unwrap();
        presence.get(peer)?.values().find_map(|e| match e {
            Entry::Present(_, topics) => Some(topics.clone()),
            Entry::Withdrawn => None,
        })
    }

    fn locates_by(&self, node: NodeId) -> usize {
        self.locates
            .lock()
            .unwrap()
            .get(&node)
            .copied()
            .unwrap_or(0)
    }
}

/// One node's view of the mesh.
struct NodeView {
    mesh: Arc<Mesh>,
    node: NodeId,
}

impl Directory for NodeView {
    fn publish_presence(
        &self,
        proof: Arc<PresenceProof>,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        self.mesh.publishes.fetch_add(1, Ordering::Relaxed);
        self.mesh
            .presence
            .lock()
            .unwrap()
            .entry(proof.peer_id)
            .or_default()
            .insert(self.node, Entry::Present(proof, topics));
        Box::pin(async { Ok(()) })
    }

    fn withdraw(&self, withdrawal: Withdrawal) -> BoxFuture<'_, Result<(), FederationError>> {
        // As in the DHT: it replaces this node's own entry, nobody else's.
        self.mesh
            .presence
            .lock()
            .unwrap()
            .entry(withdrawal.peer)
            .or_default()
            .insert(self.node, Entry::Withdrawn);
        Box::pin(async { Ok(()) })
    }

    fn locate(&self, peer: PeerId) -> BoxFuture<'_, Result<Vec<PresenceProof>, FederationError>> {
        *self
            .mesh
            .locates
            .lock()
            .unwrap()
            .entry(self.node)
            .or_default() += 1;
        let mut proofs: Vec<PresenceProof> = self
            .mesh
            .forged
            .lock()
            .unwrap()
            .get(&peer)
            .cloned()
            .into_iter()
            .collect();
        proofs.extend(self.mesh.proofs(&peer));
        Box::pin(async move { Ok(proofs) })
    }

    fn discover(&self, topic: String) -> BoxFuture<'_, Result<Vec<RemotePeer>, FederationError>> {
        let peers = self
            .mesh
            .presence
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(peer, entries)| {
                entries.iter().filter_map(|(node, e)| match e {
                    Entry::Present(_, topics) if topics.contains(&topic) => Some(RemotePeer {
                        peer_id: *peer,
                        node_id: *node,
                    }),
                    _ => None,
                })
            })
            .collect();
        Box::pin(async move { Ok(peers) })
    }
}

impl Forwarder for NodeView {
    fn forward(
        &self,
        node: NodeId,
        envelope: RelayEnvelope,
    ) -> BoxFuture<'_, Result<DeliveryOutcome, FederationError>> {
        self.mesh.forwards.fetch_add(1, Ordering::Relaxed);
        let target = self.mesh.servers.lock().unwrap().get(&node).cloned();
        Box::pin(async move {
            // Through protobuf, as it crosses the network.
            let bytes = wire::encode_envelope(&envelope);
            let envelope = wire::decode_envelope(&bytes).map_err(FederationError::from_error)?;
            let target = target.ok_or_else(|| FederationError::new("no such node"))?;
            target
                .deliver_remote(envelope)
                .map_err(FederationError::from_error)
        })
    }

    fn withdrawn(
        &self,
        node: NodeId,
        withdrawal: Withdrawal,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        self.mesh.withdrawals_sent.fetch_add(1, Ordering::Relaxed);
        let target = self.mesh.servers.lock().unwrap().get(&node).cloned();
        let from = self.node;
        Box::pin(async move {
            let bytes = wire::encode_withdrawal(&withdrawal);
            let withdrawal =
                wire::decode_withdrawal(&bytes).map_err(FederationError::from_error)?;
            let target = target.ok_or_else(|| FederationError::new("no such node"))?;
            target.withdrawn(from, withdrawal);
            Ok(())
        })
    }
}

async fn node(mesh: &Arc<Mesh>, n: u8) -> TestServer {
    node_with(mesh, n, quick_config()).await
}

async fn node_with(
    mesh: &Arc<Mesh>,
    n: u8,
    config: pqnode_signaling::SignalingConfig,
) -> TestServer {
    let view = Arc::new(NodeView {
        mesh: Arc::clone(mesh),
        node: node_id(n),
    });
    let server = SignalingServer::with_federation(node_id(n), config, view.clone(), view);
    mesh.servers
        .lock()
        .unwrap()
        .insert(node_id(n), server.clone());
    start_server(server).await
}

#[tokio::test]
async fn a_peer_on_one_node_reaches_a_peer_on_another_and_back() {
    let mesh = Arc::new(Mesh::default());
    let a = node(&mesh, 1).await;
    let b = node(&mesh, 2).await;

    let mut alice = Client::connect(a.addr).await;
    let alice_id = alice.register(&Key::ed25519(), &["room"]).await;
    let mut bob = Client::connect(b.addr).await;
    let bob_id = bob.register(&Key::ml_dsa(), &["room"]).await;
    eventually(PATIENCE, "both presences are published", async || {
        mesh.present(&alice_id) == Some(node_id(1)) && mesh.present(&bob_id) == Some(node_id(2))
    })
    .await;

    // Discovery on A lists bob on node B.
    alice
        .send(json!({"type": "discover", "id": 1, "topic": "room"}))
        .await;
    assert_eq!(
        alice.recv().await["peers"],
        json!([{"peer_id": bob_id.to_hex(), "node_id": node_id(2).to_hex()}])
    );
    alice
        .send(json!({"type": "lookup", "id": 2, "peer_id": bob_id.to_hex()}))
        .await;
    assert_eq!(
        alice.recv().await,
        json!({"type": "peer", "id": 2, "peer_id": bob_id.to_hex(), "online": true, "node_id": node_id(2).to_hex()})
    );

    // Offer and a burst of candidates cross in order.
    alice
        .send(json!({"type": "offer", "id": 10, "to": bob_id.to_hex(), "sid": "s", "data": {"type": "offer", "sdp": "v=0"}}))
        .await;
    for i in 0..30 {
        alice
            .send(json!({"type": "candidate", "id": 11 + i, "to": bob_id.to_hex(), "data": {"candidate": i}}))
            .await;
    }
    for id in 10..41 {
        let ack = alice.recv().await;
        assert_eq!(
            ack,
            json!({"type": "ack", "id": id, "to": bob_id.to_hex(), "status": "forwarded"})
        );
    }
    let offer = bob.recv().await;
    assert_eq!(
        offer,
        json!({"type": "offer", "from": alice_id.to_hex(), "to": bob_id.to_hex(), "sid": "s", "data": {"type": "offer", "sdp": "v=0"}})
    );
    for i in 0..30 {
        assert_eq!(bob.recv().await["data"]["candidate"], i);
    }

    // The answer goes back without a directory lookup on B: B remembers alice's node.
    bob.send(json!({"type": "answer", "id": "ans", "to": alice_id.to_hex(), "data": {"type": "answer", "sdp": "v=0"}}))
        .await;
    assert_eq!(bob.recv().await["status"], "forwarded");
    let answer = alice.recv().await;
    assert_eq!(answer["type"], "answer");
    assert_eq!(answer["from"], bob_id.to_hex());
    assert_eq!(mesh.locates_by(node_id(2)), 0);

    let stats = a.server.stats();
    assert_eq!(stats.messages_forwarded, 31);
    assert_eq!(b.server.stats().messages_from_remote, 31);
    assert_eq!(b.server.stats().peers, 2, "bob plus alice, remembered");

    // Bob leaves: his presence is withdrawn, and node A, which routed to him, is told at once.
    assert_eq!(a.server.stats().peers, 2, "alice plus bob, remembered");
    bob.drop_abruptly();
    eventually(PATIENCE, "bob's presence is withdrawn", async || {
        mesh.present(&bob_id).is_none()
    })
    .await;
    eventually(PATIENCE, "node A forgets its route to bob", async || {
        a.server.stats().peers == 1
    })
    .await;
    assert_eq!(mesh.withdrawals_sent.load(Ordering::Relaxed), 1);
    alice
        .send(json!({"type": "offer", "id": 99, "to": bob_id.to_hex(), "data": {}}))
        .await;
    assert_eq!(alice.expect_error("PEER_NOT_FOUND").await["id"], 99);
}

#[tokio::test]
async fn envelopes_are_delivered_once_and_invalid_ones_refused() {
    let mesh = Arc::new(Mesh::default());
    let b = node(&mesh, 2).await;
    let mut bob = Client::connect(b.addr).await;
    let bob_id = bob.register(&Key::ed25519(), &[]).await;
    let alice = Key::ed25519();
    let envelope = RelayEnvelope {
        msg_id: MessageId([7; 16]),
        origin: node_id(1),
        from: alice.peer_id(),
        from_proof: alice.proof(node_id(1), common::now_ms()),
        to: bob_id,
        kind: RelayKind::Offer,
        sid: None,
        data: r#"{"sdp":"v=0"}"#.into(),
    };
    assert_eq!(
        b.server.deliver_remote(envelope.clone()),
        Ok(DeliveryOutcome::Delivered)
    );
    assert_eq!(
        b.server.deliver_remote(envelope.clone()),
        Ok(DeliveryOutcome::Duplicate)
    );
    let msg = bob.recv().await;
    assert_eq!(msg["data"], json!({"sdp": "v=0"}));
    bob.ping().await; // nothing else was queued before the pong

    let not_json = RelayEnvelope {
        msg_id: MessageId([8; 16]),
        data: "{oops".into(),
        ..envelope.clone()
    };
    assert!(b.server.deliver_remote(not_json).is_err());
    let huge = RelayEnvelope {
        msg_id: MessageId([9; 16]),
        data: format!("\"{}\"", "x".repeat(70 * 1024)),
        ..envelope.clone()
    };
    assert!(b.server.deliver_remote(huge).is_err());
    let nobody = RelayEnvelope {
        msg_id: MessageId([10; 16]),
        to: Key::ed25519().peer_id(),
        ..envelope.clone()
    };
    assert_eq!(
        b.server.deliver_remote(nobody),
        Ok(DeliveryOutcome::NotFound)
    );

    // A node speaking for a peer it does not serve: alice's proof names node 1, not node 3;
    // a proof with a broken signature; a proof for somebody else.
    let elsewhere = RelayEnvelope {
        msg_id: MessageId([11; 16]),
        origin: node_id(3),
        ..envelope.clone()
    };
    let mut broken = envelope.from_proof.clone();
    broken.signature[0] ^= 1;
    let forged = RelayEnvelope {
        msg_id: MessageId([12; 16]),
        from_proof: broken,
        ..envelope.clone()
    };
    let other = Key::ed25519();
    let borrowed = RelayEnvelope {
        msg_id: MessageId([13; 16]),
        from_proof: other.proof(node_id(1), common::now_ms()),
        ..envelope
    };
    for bad in [elsewhere, forged, borrowed] {
        assert!(matches!(
            b.server.deliver_remote(bad),
            Err(EnvelopeError::BadProof(_))
        ));
    }
    bob.ping().await; // none of them reached bob
    assert_eq!(b.server.stats().bad_proofs, 3);
}

#[tokio::test]
async fn a_node_claiming_a_peer_it_does_not_serve_gets_no_route() {
    let mesh = Arc::new(Mesh::default());
    let a = node(&mesh, 1).await;
    let b = node(&mesh, 2).await;
    let _liar = node(&mesh, 3).await;
    let mut alice = Client::connect(a.addr).await;
    alice.register(&Key::ed25519(), &[]).await;
    let bob_key = Key::ed25519();
    let mut bob = Client::connect(b.addr).await;
    let bob_id = bob.register(&bob_key, &[]).await;
    eventually(PATIENCE, "bob's presence is published", async || {
        mesh.present(&bob_id) == Some(node_id(2))
    })
    .await;
    // Node 3 puts a newer "proof" in front of bob's: bob's registration re-pointed at
    // node 3. Bob's signature does not cover that.
    let mut forged = mesh.proofs(&bob_id)[0].clone();
    forged.node_id = node_id(3);
    forged.ts_ms += 1;
    mesh.forged.lock().unwrap().insert(bob_id, forged);

    alice
        .send(json!({"type": "offer", "id": 1, "to": bob_id.to_hex(), "sid": "s", "data": {"sdp": "v=0"}}))
        .await;
    assert_eq!(alice.recv().await["status"], "forwarded");
    assert_eq!(
        bob.recv().await["data"]["sdp"],
        "v=0",
        "the offer reached bob, not node 3"
    );
    assert_eq!(a.server.stats().bad_proofs, 1);
}

#[tokio::test]
async fn shutdown_withdraws_every_presence() {
    let mesh = Arc::new(Mesh::default());
    let a = node(&mesh, 1).await;
    let mut alice = Client::connect(a.addr).await;
    let alice_id = alice.register(&Key::ed25519(), &["t"]).await;
    eventually(PATIENCE, "presence is published", async || {
        mesh.present(&alice_id).is_some()
    })
    .await;
    let server = a.server.clone();
    let shutdown = tokio::spawn(async move { server.shutdown(Duration::from_secs(5)).await });
    assert_eq!(alice.recv().await["type"], "shutdown");
    assert_eq!(
        alice.closed_with().await,
        Some(pqnode_signaling::close::GOING_AWAY)
    );
    assert!(shutdown.await.unwrap());
    assert_eq!(mesh.present(&alice_id), None);
}

#[tokio::test]
async fn directory_lookups_are_rate_limited_node_wide() {
    let mesh = Arc::new(Mesh::default());
    let config = pqnode_signaling::SignalingConfig {
        directory_lookup_rate: pqnode_signaling::RateLimit {
            per_second: 0,
            burst: 2,
        },
        ..quick_config()
    };
    let a = node_with(&mesh, 1, config).await;
    let mut alice = Client::connect(a.addr).await;
    alice.register(&Key::ed25519(), &[]).await;
    for id in 0..5 {
        let nobody = Key::ed25519().peer_id();
        alice
            .send(json!({"type": "offer", "id": id, "to": nobody.to_hex(), "data": {}}))
            .await;
        assert_eq!(alice.expect_error("PEER_NOT_FOUND").await["id"], id);
    }
    assert_eq!(
        mesh.locates_by(node_id(1)),
        2,
        "only the burst reached the directory"
    );
    assert_eq!(a.server.stats().lookups_throttled, 3);
}

/// A directory whose every call fails, like a DHT with no reachable nodes.
struct Unreachable;

impl Directory for Unreachable {
    fn publish_presence(
        &self,
        _proof: Arc<PresenceProof>,
        _topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Err(FederationError::new("no DHT nodes")) })
    }

    fn withdraw(&self, _withdrawal: Withdrawal) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Err(FederationError::new("no DHT nodes")) })
    }

    fn locate(&self, _peer: PeerId) -> BoxFuture<'_, Result<Vec<PresenceProof>, FederationError>> {
        Box::pin(async { Err(FederationError::new("no DHT nodes")) })
    }

    fn discover(&self, _topic: String) -> BoxFuture<'_, Result<Vec<RemotePeer>, FederationError>> {
        Box::pin(async { Err(FederationError::new("no DHT nodes")) })
    }
}

#[tokio::test]
async fn a_failing_directory_degrades_health_but_not_local_service() {
    let server = SignalingServer::with_federation(
        node_id(1),
        quick_config(),
        Arc::new(Unreachable),
        Arc::new(pqnode_signaling::federation::LocalOnly),
    );
    let srv = start_server(server).await;
    let mut alice = Client::connect(srv.addr).await;
    let a = alice.register(&Key::ed25519(), &["t"]).await;
    let mut bob = Client::connect(srv.addr).await;
    bob.register(&Key::ed25519(), &["t"]).await;
    eventually(PATIENCE, "health reports the directory", async || {
        srv.server.health().status == pqnode_health::Status::Warn
    })
    .await;
    // Local relay and discovery still work.
    bob.send(json!({"type": "discover", "id": 1, "topic": "t"}))
        .await;
    assert_eq!(bob.recv().await["peers"][0]["peer_id"], a.to_hex());
    bob.send(json!({"type": "offer", "id": 2, "to": a.to_hex(), "data": null}))
        .await;
    assert_eq!(bob.recv().await["status"], "delivered");
}

#[tokio::test]
async fn presence_is_refreshed_while_connected() {
    let mesh = Arc::new(Mesh::default());
    let config = pqnode_signaling::SignalingConfig {
        presence_refresh: Duration::from_millis(30),
        ..quick_config()
    };
    let a = node_with(&mesh, 1, config).await;
    let mut alice = Client::connect(a.addr).await;
    let alice_id = alice.register(&Key::ed25519(), &["t"]).await;
    eventually(PATIENCE, "presence is republished", async || {
        mesh.publishes.load(Ordering::Relaxed) >= 4
    })
    .await;
    alice
        .send(json!({"type": "join", "id": 1, "topic": "u"}))
        .await;
    assert_eq!(alice.recv().await["type"], "joined");
    eventually(PATIENCE, "the new topic is published", async || {
        mesh.topics(&alice_id).map(|t| t.len()) == Some(2)
    })
    .await;
}

#[tokio::test]
async fn a_withdrawal_ends_only_routes_through_its_sender() {
    let mesh = Arc::new(Mesh::default());
    let a = node(&mesh, 1).await;
    let b = node(&mesh, 2).await;
    let mut alice = Client::connect(a.addr).await;
    alice.register(&Key::ed25519(), &[]).await;
    let mut bob = Client::connect(b.addr).await;
    let bob_id = bob.register(&Key::ed25519(), &[]).await;
    eventually(PATIENCE, "bob's presence is published", async || {
        mesh.present(&bob_id) == Some(node_id(2))
    })
    .await;
    alice
        .send(json!({"type": "lookup", "id": 1, "peer_id": bob_id.to_hex()}))
        .await;
    assert_eq!(alice.recv().await["online"], true);
    let ts_ms = mesh.proofs(&bob_id)[0].ts_ms;

    // Another node cannot end it, nor can an older registration's withdrawal.
    let notice = |ts_ms| Withdrawal {
        peer: bob_id,
        ts_ms,
    };
    assert!(!a.server.withdrawn(node_id(3), notice(ts_ms)));
    assert!(!a.server.withdrawn(node_id(2), notice(ts_ms - 1)));
    assert_eq!(a.server.stats().peers, 2);
    // The node that serves bob can.
    assert!(a.server.withdrawn(node_id(2), notice(ts_ms)));
    assert_eq!(a.server.stats().peers, 1);
}
