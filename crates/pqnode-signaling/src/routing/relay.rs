//! Relay messages across nodes: a client's message to its addressee, here or on another
//! node ([`Router::route`]), and another node's envelope to a local peer
//! ([`Router::deliver_remote`]). Not the client protocol: the session parses and answers.

use pqnode_crypto::PeerId;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::Router;
use crate::config::MAX_SID_LEN;
use crate::federation::{DeliveryOutcome, MessageId, RelayEnvelope};
use crate::presence::ProofError;
use crate::protocol::{AckStatus, ErrorCode, RelayKind, RelayedMessage, encode};
use crate::registry::{Outbound, SharedRegistry};
use crate::stats::Counters;

/// An envelope from another node that breaks the protocol's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// `data` is over `max_message_bytes`.
    #[error("data is larger than the message limit")]
    TooLarge,
    /// `data` is not JSON: a sender must relay what its client sent, which was JSON.
    #[error("data is not valid JSON")]
    BadData,
    /// `sid` is over [`MAX_SID_LEN`].
    #[error("sid is longer than {MAX_SID_LEN} bytes")]
    BadSid,
    /// The sender's presence proof does not show that it is attached to the sending node.
    #[error("the sender's presence proof is invalid: {0}")]
    BadProof(#[from] ProofError),
}

/// Why a relay message was not handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteError {
    pub code: ErrorCode,
    pub message: String,
}

impl Router {
    /// Entry point for relay messages from other nodes. Delivers to the local
    /// addressee, drops repeats, and remembers that `from` is on `origin`
    /// (its proof says so) so replies need no lookup.
    pub(crate) fn deliver_remote(
        &self,
        registry: &SharedRegistry,
        envelope: RelayEnvelope,
    ) -> Result<DeliveryOutcome, EnvelopeError> {
        if envelope.data.len() > self.max_message_bytes {
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
        let Some(outbox) = registry.lock().outbox(&envelope.to) else {
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

    /// Hands one relay message from the local peer `from` to its addressee, here or on
    /// another node.
    pub(crate) async fn route(
        &self,
        registry: &SharedRegistry,
        from: PeerId,
        kind: RelayKind,
        to: PeerId,
        sid: Option<&str>,
        data: &RawValue,
    ) -> Result<AckStatus, RouteError> {
        let local = registry.lock().outbox(&to);
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
        let Some(from_proof) = registry.lock().proof(&from) else {
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
                self.federation_timeout,
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
