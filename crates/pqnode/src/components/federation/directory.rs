//! This node's presence and topic entries in the DHT, the others' read back, and the
//! check every DHT node runs on presence entries.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pqnode_crypto::NodeId;
use pqnode_dht::{ProviderRecord, ProviderValidator, Verdict};
use pqnode_overlay::Overlay;
use pqnode_signaling::federation::wire::{self, PresenceEntry};
use pqnode_signaling::federation::{
    BoxFuture, Directory, FederationError, RemotePeer, Withdrawal, check_presence_entry,
    presence_key,
};
use pqnode_signaling::{PEER_ID_LEN, PeerId, PresenceProof};
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
pub(super) struct DhtDirectory {
    overlay: Overlay,
    local: NodeId,
    membership: Mutex<Membership>,
}

impl DhtDirectory {
    pub(super) fn new(overlay: Overlay) -> Self {
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
                self.overlay
                    .unpublish(key)
                    .await
                    .map_err(FederationError::from_error)?;
            } else {
                self.overlay
                    .add_provider(key, &value, PRESENCE_TTL)
                    .await
                    .map_err(FederationError::from_error)?;
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
                .map_err(FederationError::from_error)?;
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
            self.overlay
                .unpublish(key)
                .await
                .map_err(FederationError::from_error)?;
            withdrawn.map_err(FederationError::from_error)?;
            self.write_topics(writes).await
        })
    }

    fn locate(&self, peer: PeerId) -> BoxFuture<'_, Result<Vec<PresenceProof>, FederationError>> {
        Box::pin(async move {
            let providers = self
                .overlay
                .get_providers(presence_key(peer))
                .await
                .map_err(FederationError::from_error)?;
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
                .map_err(FederationError::from_error)?;
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
pub(crate) struct PresenceEntries;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
