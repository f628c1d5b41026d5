//! Where a peer is ([`Router::lookup`], and `locate` behind it for the directory's answer)
//! and who is in a topic across nodes ([`Router::discover`]). Every directory query spends
//! the node-wide lookup budget. Not routing itself: [`super::relay`] uses what is found.

use std::collections::HashSet;

use pqnode_crypto::{NodeId, PeerId};

use super::{Route, Router};
use crate::federation::RemotePeer;
use crate::protocol::{PeerEntry, Topic};
use crate::registry::SharedRegistry;
use crate::stats::Counters;

/// Most entries a `peers` reply lists, local and remote together.
const MAX_DISCOVER_RESULTS: usize = 1_000;
/// Most presence proofs checked in one lookup: the budget of one lookup.
const MAX_CLAIMANTS: usize = 4;

impl Router {
    /// Where `peer` is on another node: of the proofs the directory holds for it, the most
    /// recent registration that verifies.
    ///
    /// Lookups are node-wide rate limited: each one costs DHT traffic and signature checks,
    /// and a client naming random peer ids must not turn this node into an amplifier. Over
    /// budget, the peer is simply not found.
    pub(super) async fn locate(&self, peer: PeerId) -> Option<NodeId> {
        if !self.take_lookup_token() {
            Counters::bump(&self.counters.lookups_throttled);
            tracing::debug!(%peer, "directory lookup skipped: lookup budget exhausted");
            return None;
        }
        let mut proofs = self
            .directory_call("locate", self.directory.locate(peer))
            .await
            .unwrap_or_default();
        proofs.retain(|proof| proof.node_id != self.node_id);
        proofs.sort_by_key(|proof| std::cmp::Reverse(proof.ts_ms));
        // The newest that verifies wins; at most MAX_CLAIMANTS checks per lookup.
        let route = proofs.iter().take(MAX_CLAIMANTS).find_map(|proof| {
            match self.verify_proof(proof, peer, proof.node_id) {
                Ok(()) => Some(Route {
                    node: proof.node_id,
                    ts_ms: proof.ts_ms,
                }),
                Err(e) => {
                    tracing::debug!(%peer, node = %proof.node_id, error = %e, "a presence proof that does not hold");
                    None
                }
            }
        })?;
        self.learn_route(peer, route.node, route.ts_ms);
        Some(route.node)
    }

    /// Peers in `topic`: local members first, then the directory's.
    pub(crate) async fn discover(
        &self,
        registry: &SharedRegistry,
        topic: &Topic,
        requester: &PeerId,
    ) -> Vec<PeerEntry> {
        let mut entries: Vec<PeerEntry> = registry
            .lock()
            .members(topic, requester)
            .into_iter()
            .map(|peer_id| PeerEntry {
                peer_id,
                node_id: self.node_id,
            })
            .collect();
        // One DHT query per discover: it spends the same budget as a lookup.
        let remote: Vec<RemotePeer> = if self.take_lookup_token() {
            self.directory_call(
                "discover",
                self.directory.discover(topic.as_str().to_owned()),
            )
            .await
            .unwrap_or_default()
        } else {
            Counters::bump(&self.counters.lookups_throttled);
            Vec::new()
        };
        let local_ids: HashSet<PeerId> = entries.iter().map(|e| e.peer_id).collect();
        let mut seen = local_ids;
        seen.insert(*requester);
        for peer in remote {
            if entries.len() >= MAX_DISCOVER_RESULTS {
                break;
            }
            if peer.node_id == self.node_id || !seen.insert(peer.peer_id) {
                continue;
            }
            // A topic entry is its node's claim, not the peer's proof: no route is learned
            // from it (the first relay to the peer looks up the peer's proof).
            entries.push(PeerEntry {
                peer_id: peer.peer_id,
                node_id: peer.node_id,
            });
        }
        entries.truncate(MAX_DISCOVER_RESULTS);
        entries
    }

    /// Where `peer` is: here, on a remembered node, or wherever the directory says.
    pub(crate) async fn lookup(&self, registry: &SharedRegistry, peer: PeerId) -> Option<NodeId> {
        if registry.lock().is_local(&peer) {
            return Some(self.node_id);
        }
        if let Some(route) = self.routes.get(&peer) {
            return Some(route.node);
        }
        self.locate(peer).await
    }
}
