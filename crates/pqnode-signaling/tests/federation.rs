//! Two signaling servers joined through an in-memory implementation of the
//! federation traits: a peer on one node reaches a peer on the other.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Client, Key, TestServer, eventually, node_id, quick_config, start_server};
use pqnode_crypto::NodeId;
use pqnode_signaling::EnvelopeError;
use pqnode_signaling::federation::{
    BoxFuture, DeliveryOutcome, Directory, FederationError, Forwarder, MessageId, RelayEnvelope,
    RemotePeer, wire,
};
use pqnode_signaling::{PeerId, PresenceProof, RelayKind, SignalingServer};
use serde_json::json;

/// The shared "DHT" and "network" of the test.
#[derive(Default)]
struct Mesh {
    presence: Mutex<HashMap<PeerId, (NodeId, Vec<String>)>>,
    servers: Mutex<HashMap<NodeId, SignalingServer>>,
    locates: Mutex<HashMap<NodeId, usize>>,
    forwards: AtomicUsize,
    publishes: AtomicUsize,
    /// Presence claims by nodes that do not serve the peer.
    liars: Mutex<HashMap<PeerId, NodeId>>,
    /// What a lying node answers when asked for a peer's proof.
    forged: Mutex<HashMap<(NodeId, PeerId), PresenceProof>>,
}

impl Mesh {
    fn present(&self, peer: &PeerId) -> Option<NodeId> {
        self.presence.lock().unwrap().get(peer).map(|(n, _)| *n)
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
        peer: PeerId,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        self.mesh.publishes.fetch_add(1, Ordering::Relaxed);
        self.mesh
            .presence
            .lock()
            .unwrap()
            .insert(peer, (self.node, topics));
        Box::pin(async { Ok(()) })
    }

    fn withdraw(&self, peer: PeerId) -> BoxFuture<'_, Result<(), FederationError>> {
        let mut presence = self.mesh.presence.lock().unwrap();
        if presence.get(&peer).is_some_and(|(n, _)| *n == self.node) {
            presence.remove(&peer);
        }
        Box::pin(async { Ok(()) })
    }

    fn locate(&self, peer: PeerId) -> BoxFuture<'_, Result<Vec<NodeId>, FederationError>> {
        *self
            .mesh
            .locates
            .lock()
            .unwrap()
            .entry(self.node)
            .or_default() += 1;
        // A lying node's claim comes first, as a higher sequence number would put it.
        let mut claims: Vec<NodeId> = self
            .mesh
            .liars
            .lock()
            .unwrap()
            .get(&peer)
            .copied()
            .into_iter()
            .collect();
        claims.extend(self.mesh.present(&peer));
        Box::pin(async move { Ok(claims) })
    }

    fn discover(&self, topic: String) -> BoxFuture<'_, Result<Vec<RemotePeer>, FederationError>> {
        let peers = self
            .mesh
            .presence
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, (_, topics))| topics.contains(&topic))
            .map(|(peer, (node, _))| RemotePeer {
                peer_id: *peer,
                node_id: *node,
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
            let envelope = wire::decode_envelope(&bytes).map_err(FederationError::new)?;
            let target = target.ok_or_else(|| FederationError::new("no such node"))?;
            target
                .deliver_remote(envelope)
                .map_err(FederationError::new)
        })
    }

    fn presence(
        &self,
        node: NodeId,
        peer: PeerId,
    ) -> BoxFuture<'_, Result<Option<PresenceProof>, FederationError>> {
        let target = self.mesh.servers.lock().unwrap().get(&node).cloned();
        let forged = self.mesh.forged.lock().unwrap().get(&(node, peer)).cloned();
        Box::pin(async move {
            if forged.is_some() {
                return Ok(forged);
            }
            let target = target.ok_or_else(|| FederationError::new("no such node"))?;
            let answer = wire::encode_presence(target.presence_proof(peer).as_ref());
            wire::decode_presence(&answer).map_err(FederationError::new)
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
    eventually("both presences are published", || {
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

    // Bob leaves: his presence is withdrawn and a stale route is not trusted.
    bob.drop_abruptly();
    eventually("bob's presence is withdrawn", || {
        mesh.present(&bob_id).is_none()
    })
    .await;
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
    eventually("bob's presence is published", || {
        mesh.present(&bob_id) == Some(node_id(2))
    })
    .await;
    // Node 3 claims bob first, and when asked shows bob's real proof (for node 2) or
    // an old one of its own forging: neither names node 3 with bob's signature.
    mesh.liars.lock().unwrap().insert(bob_id, node_id(3));
    mesh.forged.lock().unwrap().insert(
        (node_id(3), bob_id),
        b.server.presence_proof(bob_id).unwrap(),
    );

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
    eventually("presence is published", || {
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
        _peer: PeerId,
        _topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Err(FederationError::new("no DHT nodes")) })
    }

    fn withdraw(&self, _peer: PeerId) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Err(FederationError::new("no DHT nodes")) })
    }

    fn locate(&self, _peer: PeerId) -> BoxFuture<'_, Result<Vec<NodeId>, FederationError>> {
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
    eventually("health reports the directory", || {
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
    eventually("presence is republished", || {
        mesh.publishes.load(Ordering::Relaxed) >= 4
    })
    .await;
    alice
        .send(json!({"type": "join", "id": 1, "topic": "u"}))
        .await;
    assert_eq!(alice.recv().await["type"], "joined");
    eventually("the new topic is published", || {
        mesh.presence
            .lock()
            .unwrap()
            .get(&alice_id)
            .map(|(_, t)| t.len())
            == Some(2)
    })
    .await;
}
