//! The shared state of the endpoint: realm, counters, limits and the
//! shutdown machinery every connection hangs off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pqnode_health::Health;
use pqnode_limits::LogThrottle;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::PeerJsConfig;
use crate::realm::{Realm, RealmLimits};

/// The PeerJS endpoint. Cheap to clone; all clones are the same server.
#[derive(Debug, Clone)]
pub struct PeerJsServer {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: PeerJsConfig,
    realm: Mutex<Realm>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub counters: Counters,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    shutting_down: AtomicBool,
    next_conn_id: AtomicU64,
    /// Lines about what clients do wrong, at most one per interval each:
    /// a client can repeat them as fast as it can send, the counters are exact.
    abuse_log: LogThrottle,
    ignored_log: LogThrottle,
}

/// How often a line about a misbehaving client is logged at most.
const NOISY_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Event counters since start; each only grows.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connections: AtomicUsize,
    pub accepted: AtomicU64,
    pub relayed: AtomicU64,
    pub queued: AtomicU64,
    pub expired: AtomicU64,
    pub id_taken: AtomicU64,
    pub rejected: AtomicU64,
    pub rate_limited: AtomicU64,
    pub oversized: AtomicU64,
    pub ignored: AtomicU64,
    pub dropped_slow: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A snapshot of the endpoint for `/api/peers` and `/api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerJsStats {
    /// Open WebSockets.
    pub connections: usize,
    /// Registered PeerJS ids.
    pub peers: usize,
    /// Messages waiting for peers that are not connected.
    pub queued_messages: usize,
    /// WebSockets accepted since start.
    pub accepted_total: u64,
    /// Messages delivered to a connected peer.
    pub relayed_total: u64,
    /// Messages held for an absent peer.
    pub queued_total: u64,
    /// Held messages dropped because their peer did not come in time.
    pub expired_total: u64,
    /// Connections refused because their id was live with another token.
    pub id_taken_total: u64,
    /// Connections refused for a bad key, missing parameters or a full server.
    pub rejected_total: u64,
    /// Connections closed for sending too fast.
    pub rate_limited_total: u64,
    /// Connections closed for a message above the size cap.
    pub oversized_total: u64,
    /// Frames ignored as malformed or of an unknown type.
    pub ignored_total: u64,
    /// Connections closed because they did not read their messages.
    pub dropped_slow_total: u64,
}

/// What [`PeerJsServer::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every connection was closed before the deadline.
    Clean,
    /// The deadline passed with connections still closing.
    TimedOut {
        /// Connection tasks not finished at the deadline.
        remaining: usize,
    },
}

impl PeerJsServer {
    /// A server with no clients; nothing listens until its [`router`](crate::router) is
    /// served.
    pub fn new(config: PeerJsConfig) -> Self {
        let limits = RealmLimits {
            concurrent: config.concurrent_limit,
            queued_per_peer: config.max_queued_per_peer,
            queued_total: config.max_queued_total,
        };
        Self {
            inner: Arc::new(Inner {
                realm: Mutex::new(Realm::new(limits)),
                per_ip: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                shutting_down: AtomicBool::new(false),
                next_conn_id: AtomicU64::new(0),
                abuse_log: LogThrottle::new(NOISY_LOG_INTERVAL),
                ignored_log: LogThrottle::new(NOISY_LOG_INTERVAL),
                config,
            }),
        }
    }

    /// The configuration it was created with.
    pub fn config(&self) -> &PeerJsConfig {
        &self.inner.config
    }

    /// Gauges now and counters since start, for `/api/health`.
    pub fn stats(&self) -> PeerJsStats {
        let (peers, queued_messages) = {
            let realm = self.inner.realm();
            (realm.peers(), realm.queued())
        };
        let c = &self.inner.counters;
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        PeerJsStats {
            connections: c.connections.load(Ordering::Relaxed),
            peers,
            queued_messages,
            accepted_total: load(&c.accepted),
            relayed_total: load(&c.relayed),
            queued_total: load(&c.queued),
            expired_total: load(&c.expired),
            id_taken_total: load(&c.id_taken),
            rejected_total: load(&c.rejected),
            rate_limited_total: load(&c.rate_limited),
            oversized_total: load(&c.oversized),
            ignored_total: load(&c.ignored),
            dropped_slow_total: load(&c.dropped_slow),
        }
    }

    /// Pass while serving; warn from 90 % of the concurrent limit; fail once
    /// shut down (the endpoint no longer accepts clients).
    pub fn health(&self) -> Health {
        if self.is_shutting_down() {
            return Health::fail("PeerJS endpoint is shut down");
        }
        let peers = self.inner.realm().peers();
        let limit = self.inner.config.concurrent_limit;
        if limit == 0 || peers.saturating_mul(10) >= limit.saturating_mul(9) {
            return Health::warn(format!(
                "{peers} of {limit} PeerJS peers: near the concurrent limit"
            ));
        }
        Health::pass()
    }

    /// True once [`shutdown`](Self::shutdown) began: new clients are refused from then on.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Stops accepting clients, closes every connection with 1001 and waits up
    /// to `deadline` for them to finish. Safe to call more than once.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownOutcome {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        match tokio::time::timeout(deadline, self.inner.tasks.wait()).await {
            Ok(()) => ShutdownOutcome::Clean,
            Err(_) => ShutdownOutcome::TimedOut {
                remaining: self.inner.tasks.len(),
            },
        }
    }
}

impl Inner {
    /// The realm lock. A panic while holding it cannot leave the maps
    /// half-updated in a way later calls would trip on, so poisoning is ignored.
    pub(crate) fn realm(&self) -> MutexGuard<'_, Realm> {
        self.realm.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs, throttled, that a client was closed for `why` (it is counted elsewhere).
    pub(crate) fn log_abuse(&self, why: &'static str) {
        if let Some(held) = self.abuse_log.admit(std::time::Instant::now()) {
            tracing::info!(
                why,
                suppressed = held.count,
                "PeerJS client closed for abuse"
            );
        }
    }

    /// Logs, throttled, that a client frame was ignored for `why`.
    pub(crate) fn log_ignored(&self, why: &'static str) {
        if let Some(held) = self.ignored_log.admit(std::time::Instant::now()) {
            tracing::info!(why, suppressed = held.count, "PeerJS client frame ignored");
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts an open connection from `ip`; `None` if `ip` is at its cap.
    pub(crate) fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Option<ConnectionSlot> {
        if let Some(ip) = ip {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let open = per_ip.entry(ip).or_insert(0);
            if *open >= self.config.max_connections_per_ip {
                return None;
            }
            *open += 1;
        }
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        bump(&self.counters.accepted);
        Some(ConnectionSlot {
            inner: Arc::clone(self),
            ip,
        })
    }
}

/// One open connection in the counts; released on drop, whatever path the
/// connection took to its end.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    inner: Arc<Inner>,
    ip: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.inner
            .counters
            .connections
            .fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.ip {
            let mut per_ip = self.inner.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(open) = per_ip.get_mut(&ip) {
                *open = open.saturating_sub(1);
                if *open == 0 {
                    per_ip.remove(&ip);
                }
            }
        }
    }
}
