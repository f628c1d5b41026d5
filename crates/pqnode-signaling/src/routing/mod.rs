//! [`Router`]: the signaling server's federation state and everything done with it.
//!
//! What it is for: getting a relay message to its addressee (a local session or another
//! node), finding where a peer is and who is in a topic across nodes, and keeping this
//! node's peers' presence in the directory. It owns all that federation has to remember:
//! the routes learned from verified proofs, the envelope ids seen lately (deduplication),
//! the proofs already verified, the node-wide lookup budget, the nodes that relayed to each
//! local peer (its audience, told first when the peer leaves), whether the directory answers,
//! and the two seams ([`Directory`], [`Forwarder`]) it reaches other nodes through.
//!
//! Presence publishing is here rather than beside the sessions because it shares all of it:
//! the directory, the health flag every directory call sets, and the audience that relaying
//! fills and a withdrawal empties.
//!
//! What it is not: the session registry. Who is connected here belongs to
//! [`Registry`](crate::registry::Registry); the router reads it (an addressee's outbox, a
//! sender's proof, a topic's local members, whether a peer is here) through the
//! [`SharedRegistry`](crate::registry::SharedRegistry) each call is handed, and never
//! changes it. It parses no client message ([`crate::session`]), touches no socket
//! ([`crate::connection`]), and runs no task of its own except presence workers on the
//! tracker it is given.
//!
//! By job: [`relay`] (messages to and from other nodes), [`locate`] (where a peer is, who is
//! in a topic), [`announce`] (presence in the directory, withdrawals both ways).

mod announce;
mod locate;
mod relay;

pub use relay::EnvelopeError;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;
use pqnode_crypto::{NodeId, PeerId};
use pqnode_limits::{LogThrottle, TokenBucket};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::config::SignalingConfig;
use crate::federation::{BoxFuture, Directory, FederationError, Forwarder, MessageId};
use crate::presence::{PresenceProof, ProofError};
use crate::stats::{Counters, RoutingCounters};

/// Recently seen envelope ids; a repeat within this window is dropped.
const DEDUP_WINDOW: Duration = Duration::from_secs(120);
const DEDUP_CAPACITY: u64 = 100_000;
const ROUTE_CAPACITY: u64 = 100_000;

/// Where peers on other nodes are, and how this node's peers are announced.
pub(crate) struct Router {
    /// This node: envelopes it originates name it, directory entries for it are skipped.
    node_id: NodeId,
    federation_timeout: Duration,
    max_message_bytes: usize,
    presence_refresh: Duration,
    directory: Arc<dyn Directory>,
    forwarder: Arc<dyn Forwarder>,
    /// Which node a remote peer proved it is attached to, so replies skip the lookup.
    routes: Cache<PeerId, Route>,
    /// Envelope ids delivered recently (deduplication).
    seen: Cache<MessageId, ()>,
    /// Presence proofs already verified, by (peer, node, registration time), with the
    /// SHA-256 of their signature: an ML-DSA-87 check per relayed message would cost more
    /// than the relay.
    verified: Cache<(PeerId, NodeId, u64), [u8; 32]>,
    /// Node-wide budget for directory queries (see `locate` and `discover`).
    lookup_budget: Mutex<TokenBucket>,
    /// Whether the last directory call succeeded.
    directory_answering: AtomicBool,
    /// While the DHT is down every registration fails to publish: one line per interval.
    presence_failures: LogThrottle,
    /// For each local peer, the nodes that relayed to it (and so hold a route to it through
    /// this node): they are told at once when it leaves.
    audience: Mutex<HashMap<PeerId, VecDeque<NodeId>>>,
    counters: RoutingCounters,
}

/// Where a remote peer is, and the time of the registration that proved it: a route is
/// replaced only by a proof at least as recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    node: NodeId,
    ts_ms: u64,
}

impl Router {
    /// A router for the node `node_id`, reaching other nodes through `directory` and
    /// `forwarder`, with `config`'s timeouts, TTLs and lookup rate.
    pub(crate) fn new(
        node_id: NodeId,
        config: &SignalingConfig,
        directory: Arc<dyn Directory>,
        forwarder: Arc<dyn Forwarder>,
    ) -> Self {
        Self {
            node_id,
            federation_timeout: config.federation_timeout,
            max_message_bytes: config.max_message_bytes,
            presence_refresh: config.presence_refresh,
            directory,
            forwarder,
            routes: Cache::builder()
                .max_capacity(ROUTE_CAPACITY)
                .time_to_live(config.remote_route_ttl)
                .build(),
            seen: Cache::builder()
                .max_capacity(DEDUP_CAPACITY)
                .time_to_live(DEDUP_WINDOW)
                .build(),
            verified: Cache::builder()
                .max_capacity(ROUTE_CAPACITY)
                .time_to_live(config.remote_route_ttl)
                .build(),
            lookup_budget: Mutex::new(TokenBucket::new(
                config.directory_lookup_rate.per_second,
                config.directory_lookup_rate.burst,
                Instant::now(),
            )),
            directory_answering: AtomicBool::new(true),
            presence_failures: LogThrottle::new(Duration::from_secs(10)),
            audience: Mutex::default(),
            counters: RoutingCounters::default(),
        }
    }

    /// Whether the last directory call succeeded (for the server's health).
    pub(crate) fn directory_answering(&self) -> bool {
        self.directory_answering.load(Ordering::Relaxed)
    }

    /// Remote peers this node holds a live route to.
    pub(crate) fn remote_peers(&self) -> usize {
        // moka counts lazily; settle pending inserts and expiries first.
        self.routes.run_pending_tasks();
        usize::try_from(self.routes.entry_count()).unwrap_or(usize::MAX)
    }

    /// What the router counted, for the server's stats.
    pub(crate) fn counters(&self) -> &RoutingCounters {
        &self.counters
    }

    /// Runs one directory call under `federation_timeout`, and records
    /// whether the directory answered (for `health()`).
    async fn directory_call<T>(
        &self,
        what: &'static str,
        call: BoxFuture<'_, Result<T, FederationError>>,
    ) -> Option<T> {
        let outcome = tokio::time::timeout(self.federation_timeout, call).await;
        let value = match outcome {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "directory call {what} failed");
                None
            }
            Err(_) => {
                tracing::debug!("directory call {what} timed out");
                None
            }
        };
        self.directory_answering
            .store(value.is_some(), Ordering::Relaxed);
        value
    }

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

    /// Spends one directory query from the node-wide budget; `false` when it is spent.
    fn take_lookup_token(&self) -> bool {
        let mut budget = self
            .lookup_budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        budget.try_take(tokio::time::Instant::now())
    }
}
