//! Where relay messages go: a local session, or another node through the
//! federation seam; and the discovery queries that span nodes.

use std::collections::HashSet;

use pqnode_crypto::NodeId;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::MAX_SID_LEN;
use crate::federation::{DeliveryOutcome, MessageId, RelayEnvelope, RemotePeer};
use crate::presence::{PresenceProof, ProofError};
use crate::protocol::{AckStatus, ErrorCode, PeerEntry, RelayKind, RelayedMessage, Topic, encode};
use crate::registry::Outbound;
use crate::server::{EnvelopeError, Inner, Route};
use crate::stats::Counters;
use pqnode_crypto::PeerId;

/// Most entries a `peers` reply lists, local and remote together.
const MAX_DISCOVER_RESULTS: usize = 1_000;
/// Most presence proofs checked in one lookup: the budget of one lookup.
const MAX_CLAIMANTS: usize = 4;

/// Why a relay message was not handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteError {
    pub code: ErrorCode,
    pub message: String,
}

impl Inner {
    /// Checks that `proof` shows `peer` registered at `node`, once per proof.
    fn verify_proof(
        &self,
        proof: &PresenceProof,
        peer: PeerId,
        node: NodeId,
    ) -> Result<(), ProofError> {
        let key = (peer, node, proof.ts_ms);
        let signature: [u8; 32] = Sha256::digest(&proof.signature).into();
        let checked = if self.verified.get(&key) == Some(signature) {
            // The very registration verified before: only the claims need checking.
            proof.check_claims(peer, node)
        } else {
            proof
                .verify(peer, node)
                .inspect(|()| self.verified.insert(key, signature))
        };
        if checked.is_err() {
            Counters::bump(&self.counters.bad_proofs);
        }
        checked
    }

    /// Remembers that `peer` is on `node`, unless a more recent registration put it elsewhere.
    fn learn_route(&self, peer: PeerId, node: NodeId, ts_ms: u64) {
        let newer_elsewhere = self
            .routes
            .get(&peer)
            .is_some_and(|known| known.node != node && known.ts_ms > ts_ms);
        if !newer_elsewhere {
            self.routes.insert(peer, Route { node, ts_ms });
        }
    }

    /// Entry point for relay messages from other nodes. Delivers to the local
    /// addressee, drops repeats, and remembers that `from` is on `origin`
    /// (its proof says so) so replies need no lookup.
    pub(crate) fn deliver_remote(
        &self,
        envelope: RelayEnvelope,
    ) -> Result<DeliveryOutcome, EnvelopeError> {
        if envelope.data.len() > self.config.max_message_bytes {
            return Err(EnvelopeError::TooLarge);
        }
        if envelope.sid.as_ref().is_some_and(|s| s.len() > MAX_SID_LEN) {
            return Err(EnvelopeError::BadSid);
        }
        let data: &RawValue =
            serde_json::from_str(&envelope.data).map_err(|_| EnvelopeError::BadData)?;
        // Before anything is delivered or learned: `origin` may speak only for its own peers.
        self.verify_proof(&envelope.from_proof, envelope.from, envelope.origin)?;
        if !self.seen.entry(envelope.msg_id).or_insert(()).is_fresh() {
            return Ok(DeliveryOutcome::Duplicate);
        }
        if envelope.origin != self.node_id {
            self.learn_route(envelope.from, envelope.origin, envelope.from_proof.ts_ms);
        }
        let Some(outbox) = self.registry().outbox(&envelope.to) else {
            return Ok(DeliveryOutcome::NotFound);
        };
        if envelope.origin != self.node_id {
            // `origin` now routes to `to` through us: it hears first when `to` leaves.
            self.note_audience(envelope.to, envelope.origin);
        }
        let text = encode(&RelayedMessage {
            kind: envelope.kind,
            from: envelope.from,
            to: envelope.to,
            sid: envelope.sid.as_deref(),
            data,
        });
        Ok(match outbox.try_send(Outbound::Text(text)) {
            Ok(()) => {
                Counters::bump(&self.counters.relayed_local);
                Counters::bump(&self.counters.delivered_from_remote);
                DeliveryOutcome::Delivered
            }
            Err(mpsc::error::TrySendError::Full(_)) => DeliveryOutcome::Busy,
            Err(mpsc::error::TrySendError::Closed(_)) => DeliveryOutcome::NotFound,
        })
    }

    /// Hands one relay message to its addressee, here or on another node.
    pub(crate) async fn route(
        &self,
        from: PeerId,
        kind: RelayKind,
        to: PeerId,
        sid: Option<&str>,
        data: &RawValue,
    ) -> Result<AckStatus, RouteError> {
        let local = self.registry().outbox(&to);
        if let Some(outbox) = local {
            let text = encode(&RelayedMessage {
                kind,
                from,
                to,
                sid,
                data,
            });
            return match outbox.try_send(Outbound::Text(text)) {
                Ok(()) => {
                    Counters::bump(&self.counters.relayed_local);
                    Ok(AckStatus::Delivered)
                }
                Err(mpsc::error::TrySendError::Full(_)) => Err(busy(to)),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(not_found(to)),
            };
        }

        // The sender's own signature travels with its message: the receiving
        // node accepts nothing this node cannot prove it speaks for.
        let Some(from_proof) = self.registry().proof(&from) else {
            return Err(internal("the sender is not registered here"));
        };
        let cached = self.routes.get(&to).map(|route| route.node);
        let mut node = match cached {
            Some(node) => Some(node),
            None => self.locate(to).await,
        };
        let mut from_cache = cached.is_some();
        while let Some(target) = node {
            let envelope = RelayEnvelope {
                msg_id: MessageId::generate().map_err(|_| internal("no randomness"))?,
                origin: self.node_id,
                from,
                from_proof: (*from_proof).clone(),
                to,
                kind,
                sid: sid.map(str::to_owned),
                data: data.get().to_owned(),
            };
            let outcome = tokio::time::timeout(
                self.config.federation_timeout,
                self.forwarder.forward(target, envelope),
            )
            .await;
            match outcome {
                Ok(Ok(DeliveryOutcome::Delivered | DeliveryOutcome::Duplicate)) => {
                    Counters::bump(&self.counters.forwarded);
                    return Ok(AckStatus::Forwarded);
                }
                Ok(Ok(DeliveryOutcome::Busy)) => return Err(busy(to)),
                Ok(Ok(DeliveryOutcome::NotFound)) => {
                    self.routes.invalidate(&to);
                    // A remembered route may be stale: ask the directory once.
                    if !from_cache {
                        break;
                    }
                    from_cache = false;
                    node = self.locate(to).await.filter(|n| *n != target);
                }
                Ok(Err(e)) => {
                    tracing::debug!(%to, node = %target, error = %e, "forwarding failed");
                    return Err(RouteError {
                        code: ErrorCode::PeerNotFound,
                        message: format!("peer {to} is on node {target}, which is unreachable"),
                    });
                }
                Err(_) => {
                    return Err(RouteError {
                        code: ErrorCode::PeerNotFound,
                        message: format!("node {target} did not answer for peer {to}"),
                    });
                }
            }
        }
        Err(not_found(to))
    }

    /// Where `peer` is on another node: of the proofs the directory holds for it, the most
    /// recent registration that verifies.
    ///
    /// Lookups are node-wide rate limited: each one costs DHT traffic and signature checks,
    /// and a client naming random peer ids must not turn this node into an amplifier. Over
    /// budget, the peer is simply not found.
    async fn locate(&self, peer: PeerId) -> Option<NodeId> {
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

    fn take_lookup_token(&self) -> bool {
        let mut budget = self
            .lookup_budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        budget.try_take(tokio::time::Instant::now())
    }

    /// Peers in `topic`: local members first, then the directory's.
    pub(crate) async fn discover(&self, topic: &Topic, requester: &PeerId) -> Vec<PeerEntry> {
        let mut entries: Vec<PeerEntry> = self
            .registry()
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
    pub(crate) async fn lookup(&self, peer: PeerId) -> Option<NodeId> {
        if self.registry().is_local(&peer) {
            return Some(self.node_id);
        }
        if let Some(route) = self.routes.get(&peer) {
            return Some(route.node);
        }
        self.locate(peer).await
    }
}

fn not_found(to: PeerId) -> RouteError {
    RouteError {
        code: ErrorCode::PeerNotFound,
        message: format!("peer {to} is not connected"),
    }
}

fn busy(to: PeerId) -> RouteError {
    RouteError {
        code: ErrorCode::PeerBusy,
        message: format!("peer {to} is not keeping up; retry later"),
    }
}

fn internal(what: &str) -> RouteError {
    RouteError {
        code: ErrorCode::Internal,
        message: what.to_owned(),
    }
}
