//! Signaling across nodes: presence and topic membership as signed DHT
//! provider entries, relay envelopes and withdrawals carried one hop over QUIC.
//!
//! Presence of peer `p` is this node's provider entry under `p`'s
//! [`presence_key`], signed by this node's ML-DSA-87 key, whose value is `p`'s
//! own proof that it registered here. Every DHT node checks that proof before
//! it stores the entry ([`PresenceEntries`]), and the signaling server checks
//! it again before it routes. When `p` leaves, the entry is replaced by a
//! withdrawal, and the nodes that relayed to `p` through us are told over
//! [`SIGNALING_WITHDRAW`]. A topic is one provider entry per node under
//! `H("pqnode/signaling-topic/v1" || topic)` whose value lists that node's
//! peers in the topic (20 bytes each): a claim only, from which no route is
//! learned.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pqnode_crypto::NodeId;
use pqnode_dht::{ProviderRecord, ProviderValidator, Verdict};
use pqnode_net::{Caller, Handler, HandlerError, Network, Protocol};
use pqnode_overlay::Overlay;
use pqnode_signaling::federation::wire::{self, PresenceEntry};
use pqnode_signaling::federation::{
    BoxFuture, DeliveryOutcome, Directory, FederationError, Forwarder, RelayEnvelope, RemotePeer,
    Withdrawal, check_presence_entry, presence_key,
};
use pqnode_signaling::{PEER_ID_LEN, PeerId, PresenceProof, SignalingServer};
use sha2::{Digest, Sha256};

const TOPIC_DOMAIN: &[u8] = b"pqnode/signaling-topic/v1\0";
/// Presence is refreshed every minute by the signaling server; three missed
/// refreshes and the entry is gone from the network.
const PRESENCE_TTL: Duration = Duration::from_secs(180);
/// A topic entry is republished when its members change, and at least this often.
const TOPIC_REFRESH: Duration = Duration::from_secs(60);
/// Peers of one node listed in one topic entry (20 bytes each; the entry holds 1 KiB).
const MAX_TOPIC_PEERS: usize = pqnode_dht::MAX_PROVIDER_VALUE_LEN / PEER_ID_LEN;

fn topic_key(topic: &str) -> NodeId {
    let digest = Sha256::new()
        .chain_update(TOPIC_DOMAIN)
        .chain_update(topic.as_bytes())
        .finalize();
    let mut key = [0u8; 20];
    key.copy_from_slice(&digest[..20]);
    NodeId::from_bytes(key)
}

fn fed(e: impl std::fmt::Display) -> FederationError {
    FederationError::new(e)
}

/// Which local peers are in which topic, and when each topic entry was last
/// written. Pure bookkeeping: the directory turns its answers into DHT writes.
#[derive(Default)]
struct Membership {
    topics: HashMap<String, BTreeSet<PeerId>>,
    of_peer: HashMap<PeerId, Vec<String>>,
    published: HashMap<String, Instant>,
}

impl Membership {
    /// Sets `peer`'s topics (none = it left) and returns the topic entries to
    /// write: the changed ones and the ones due for a refresh. An empty value
    /// means the topic has no local peer left (unpublish it).
    fn update(
        &mut self,
        peer: PeerId,
        topics: Vec<String>,
        now: Instant,
    ) -> Vec<(String, Vec<u8>)> {
        let old = self.of_peer.remove(&peer).unwrap_or_default();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for topic in &old {
            if !topics.contains(topic)
                && let Some(members) = self.topics.get_mut(topic)
            {
                members.remove(&peer);
                touched.insert(topic.clone());
            }
        }
        for topic in &topics {
            if self.topics.entry(topic.clone()).or_default().insert(peer) {
                touched.insert(topic.clone());
            }
            let due = self
                .published
                .get(topic)
                .is_none_or(|at| now.duration_since(*at) >= TOPIC_REFRESH);
            if due {
                touched.insert(topic.clone());
            }
        }
        if !topics.is_empty() {
            self.of_peer.insert(peer, topics);
        }
        let mut writes = Vec::new();
        for topic in touched {
            let members = self.topics.get(&topic).cloned().unwrap_or_default();
            if members.is_empty() {
                self.topics.remove(&topic);
                self.published.remove(&topic);
            } else {
                self.published.insert(topic.clone(), now);
            }
            let value: Vec<u8> = members
                .iter()
                .take(MAX_TOPIC_PEERS)
                .flat_map(|p| hex::decode(p.to_hex()).unwrap_or_default())
                .collect();
            writes.push((topic, value));
        }
        writes
    }
}

/// [`Directory`] over the DHT.
pub struct DhtDirectory {
    overlay: Overlay,
    local: NodeId,
    membership: Mutex<Membership>,
}

impl DhtDirectory {
    pub fn new(overlay: Overlay) -> Self {
        let local = overlay.local_id();
        Self {
            overlay,
            local,
            membership: Mutex::default(),
        }
    }

    fn membership(&self) -> std::sync::MutexGuard<'_, Membership> {
        self.membership
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, peer: PeerId, topics: Vec<String>) -> Vec<(String, Vec<u8>)> {
        self.membership().update(peer, topics, Instant::now())
    }

    async fn write_topics(&self, writes: Vec<(String, Vec<u8>)>) -> Result<(), FederationError> {
        for (topic, value) in writes {
            let key = topic_key(&topic);
            if value.is_empty() {
                self.overlay.unpublish(key).await.map_err(fed)?;
            } else {
                self.overlay
                    .add_provider(key, &value, PRESENCE_TTL)
                    .await
                    .map_err(fed)?;
            }
        }
        Ok(())
    }
}

impl Directory for DhtDirectory {
    fn publish_presence(
        &self,
        proof: Arc<PresenceProof>,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async move {
            let peer = proof.peer_id;
            let writes = self.update(peer, topics);
            let value = wire::encode_presence_entry(&PresenceEntry::Present((*proof).clone()));
            self.overlay
                .add_provider(presence_key(peer), &value, PRESENCE_TTL)
                .await
                .map_err(fed)?;
            self.write_topics(writes).await
        })
    }

    fn withdraw(&self, withdrawal: Withdrawal) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async move {
            let key = presence_key(withdrawal.peer);
            let writes = self.update(withdrawal.peer, Vec::new());
            // Replaces our presence entry wherever it is stored, and outlives every copy of
            // it; then it is not republished.
            let value = wire::encode_presence_entry(&PresenceEntry::Withdrawn(withdrawal));
            let withdrawn = self.overlay.add_provider(key, &value, PRESENCE_TTL).await;
            self.overlay.unpublish(key).await.map_err(fed)?;
            withdrawn.map_err(fed)?;
            self.write_topics(writes).await
        })
    }

    fn locate(&self, peer: PeerId) -> BoxFuture<'_, Result<Vec<PresenceProof>, FederationError>> {
        Box::pin(async move {
            let providers = self
                .overlay
                .get_providers(presence_key(peer))
                .await
                .map_err(fed)?;
            // The DHT checked each proof on arrival (`PresenceEntries`); the signaling server
            // checks the one it routes by again, with its cache.
            let proofs = providers
                .iter()
                .filter_map(|p| match wire::decode_presence_entry(p.value()) {
                    Some(Ok(PresenceEntry::Present(proof)))
                        if proof.peer_id == peer && proof.node_id == p.publisher_id() =>
                    {
                        Some(proof)
                    }
                    _ => None,
                })
                .filter(|proof| proof.node_id != self.local)
                .collect();
            Ok(proofs)
        })
    }

    fn discover(&self, topic: String) -> BoxFuture<'_, Result<Vec<RemotePeer>, FederationError>> {
        Box::pin(async move {
            let providers = self
                .overlay
                .get_providers(topic_key(&topic))
                .await
                .map_err(fed)?;
            let mut found = Vec::new();
            for provider in providers.iter().filter(|p| p.publisher_id() != self.local) {
                for chunk in provider.value().chunks_exact(PEER_ID_LEN) {
                    if let Ok(peer_id) = hex::encode(chunk).parse::<PeerId>() {
                        found.push(RemotePeer {
                            peer_id,
                            node_id: provider.publisher_id(),
                        });
                    }
                }
            }
            Ok(found)
        })
    }
}

/// The check every DHT node runs on signaling presence entries before it stores or
/// returns them: the peer's own proof, naming the publishing node, under the peer's key.
#[derive(Debug)]
pub struct PresenceEntries;

impl ProviderValidator for PresenceEntries {
    fn validate(&self, entry: &ProviderRecord) -> Verdict {
        match check_presence_entry(entry.key(), entry.publisher_id(), entry.value()) {
            None => Verdict::NotMine,
            Some(Ok(PresenceEntry::Present(_))) => Verdict::Valid,
            // Any node may withdraw, so a withdrawal must never take a slot of its own:
            // throwaway identities could fill the key and keep the peer's real node out.
            Some(Ok(PresenceEntry::Withdrawn(_))) => Verdict::ReplacesOnly,
            Some(Err(e)) => Verdict::Invalid(e.to_string()),
        }
    }
}

/// Signaling envelopes between nodes: wire id 2 (see `pqnode-net`'s `proto/wire.proto`),
/// protobuf from `pqnode-signaling`'s `proto/federation.proto`. An envelope carries one
/// signaling message (SDP offers are the largest, a few KiB), its routing and its
/// sender's presence proof (up to 7.3 KiB): 64 KiB is ample.
pub const SIGNALING_RELAY: Protocol = Protocol::new(2, "SIGNALING_RELAY", 64 * 1024);

/// "A peer you relayed to through me left": wire id 6 (id 5 is retired). The request is a
/// protobuf `Withdrawal`, the answer empty. It can only end routes through the sending node.
pub const SIGNALING_WITHDRAW: Protocol = Protocol::new(6, "SIGNALING_WITHDRAW", 256);

/// [`Forwarder`] over QUIC: one request on [`SIGNALING_RELAY`] or [`SIGNALING_WITHDRAW`].
pub struct QuicForwarder {
    pub network: Network,
}

impl Forwarder for QuicForwarder {
    fn forward(
        &self,
        node: NodeId,
        envelope: RelayEnvelope,
    ) -> BoxFuture<'_, Result<DeliveryOutcome, FederationError>> {
        Box::pin(async move {
            let payload = wire::encode_envelope(&envelope);
            // The network finds `node` through the DHT when it has no address for it.
            let reply = self
                .network
                .request(node, SIGNALING_RELAY, payload)
                .await
                .map_err(fed)?;
            wire::decode_delivery(&reply).map_err(fed)
        })
    }

    fn withdrawn(
        &self,
        node: NodeId,
        withdrawal: Withdrawal,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async move {
            let payload = wire::encode_withdrawal(&withdrawal);
            self.network
                .request(node, SIGNALING_WITHDRAW, payload)
                .await
                .map_err(fed)?;
            Ok(())
        })
    }
}

/// Answers [`SIGNALING_WITHDRAW`]: the calling node, as TLS proved it, ends its own routes.
pub struct WithdrawHandler {
    pub signaling: SignalingServer,
}

impl Handler for WithdrawHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        let withdrawal = wire::decode_withdrawal(&payload)
            .map_err(|e| HandlerError::BadRequest(format!("withdrawal: {e}")))?;
        self.signaling.withdrawn(caller.node_id, withdrawal);
        Ok(Bytes::new())
    }
}

/// Envelopes from other nodes, handed to the local signaling server.
pub struct RelayHandler {
    pub signaling: SignalingServer,
}

impl Handler for RelayHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        let envelope = wire::decode_envelope(&payload)
            .map_err(|e| HandlerError::BadRequest(format!("relay envelope: {e}")))?;
        // Replies are routed back to `origin`: it must be the node that proved itself in TLS.
        if envelope.origin != caller.node_id {
            return Err(HandlerError::BadRequest(
                "envelope origin is not the sending node".into(),
            ));
        }
        let outcome = self
            .signaling
            .deliver_remote(envelope)
            .map_err(|e| HandlerError::BadRequest(e.to_string()))?;
        Ok(wire::encode_delivery(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pqnode_signaling::SignalingConfig;

    fn peer(n: u8) -> PeerId {
        hex::encode([n; PEER_ID_LEN]).parse().unwrap()
    }

    #[test]
    fn topic_entries_follow_membership_and_refresh() {
        let mut m = Membership::default();
        let t0 = Instant::now();
        let writes = m.update(peer(1), vec!["a".into(), "b".into()], t0);
        assert_eq!(writes.len(), 2);
        assert!(writes.iter().all(|(_, v)| v.len() == PEER_ID_LEN));

        // A second peer in "a": only "a" changes; "b" is fresh.
        let writes = m.update(peer(2), vec!["a".into()], t0);
        assert_eq!(
            writes,
            vec![("a".to_owned(), [[1u8; 20], [2u8; 20]].concat())]
        );

        // Nothing changed and nothing is due: no writes.
        assert!(m.update(peer(2), vec!["a".into()], t0).is_empty());
        // Due for a refresh: written again.
        assert_eq!(
            m.update(peer(2), vec!["a".into()], t0 + TOPIC_REFRESH)
                .len(),
            1
        );

        // Peer 1 leaves: "b" is emptied (unpublish), "a" keeps peer 2.
        let mut writes = m.update(peer(1), Vec::new(), t0 + TOPIC_REFRESH);
        writes.sort();
        assert_eq!(
            writes,
            vec![
                ("a".to_owned(), vec![2u8; 20]),
                ("b".to_owned(), Vec::new())
            ]
        );
    }

    /// An envelope from a real ML-DSA-87 peer attached to `origin`, carrying its proof.
    fn envelope(origin: NodeId) -> Bytes {
        use pqnode_signaling::{Algorithm, REGISTER_DOMAIN, registration_body};
        let key = pqnode_crypto::Identity::generate().unwrap();
        let public_key = key.public_key().as_bytes().to_vec();
        let from = PeerId::derive(Algorithm::MlDsa87, &public_key);
        let nonce = "ab".repeat(32);
        let body = registration_body(&origin, &nonce, &from, 1);
        let signature = key.sign(REGISTER_DOMAIN, body.as_bytes()).unwrap();
        let proof = PresenceProof {
            algorithm: Algorithm::MlDsa87,
            public_key,
            peer_id: from,
            node_id: origin,
            nonce,
            ts_ms: 1,
            signature: signature.as_bytes().to_vec(),
        };
        wire::encode_envelope(&RelayEnvelope {
            msg_id: pqnode_signaling::federation::MessageId([0x11; 16]),
            origin,
            from,
            from_proof: proof,
            to: peer(2),
            kind: pqnode_signaling::RelayKind::Offer,
            sid: None,
            data: "{}".into(),
        })
    }

    #[tokio::test]
    async fn an_envelope_must_come_from_its_origin_node() {
        let [local, sender, other] = [[1u8; 20], [2u8; 20], [3u8; 20]].map(NodeId::from_bytes);
        let handler = RelayHandler {
            signaling: SignalingServer::new(local, SignalingConfig::default()),
        };
        let caller = Caller {
            node_id: sender,
            addr: "127.0.0.1:4001".parse().unwrap(),
        };

        let spoofed = handler.handle(caller, envelope(other)).await;
        assert!(
            matches!(spoofed, Err(HandlerError::BadRequest(_))),
            "{spoofed:?}"
        );

        // From its origin it is accepted; the addressee is not here, and the reply says so.
        let reply = handler.handle(caller, envelope(sender)).await.unwrap();
        let outcome = wire::decode_delivery(&reply).unwrap();
        assert_eq!(outcome, DeliveryOutcome::NotFound);

        let garbage = handler
            .handle(caller, Bytes::from_static(b"\xff not protobuf"))
            .await;
        assert!(matches!(garbage, Err(HandlerError::BadRequest(_))));
    }
}
