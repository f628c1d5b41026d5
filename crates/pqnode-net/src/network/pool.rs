//! The connection table: at most one connection in use per peer.
//!
//! Two nodes that dial each other at the same moment end up with two
//! connections. Both sides must keep the same one without talking about
//! it, so the rule is symmetric: of two live connections, keep the one
//! dialed by the smaller node id. A new connection from the same dialer as
//! the old one always wins (the dialer only dials again when it lost the
//! old one). And because "live" on our side may be stale (the peer
//! restarted), an old connection that the rule would keep must first answer
//! a ping; if it does not, the new one replaces it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pqnode_crypto::NodeId;
use tokio::sync::Semaphore;

use pqnode_clock::unix_ms;

use super::{Inner, lock, read, request};
use crate::stats::{Direction, PeerEvent, PeerInfo};
use crate::tls;
use crate::wire::{self, Protocol, pb};

/// How long a duplicate connection stays open for requests already on it.
const DUPLICATE_DRAIN: Duration = Duration::from_secs(3);

enum Installed {
    First,
    Replaced(Arc<PeerConn>, pb::CloseCode),
    Kept(Arc<PeerConn>),
}

/// One established, authenticated connection.
pub(crate) struct PeerConn {
    pub node_id: NodeId,
    pub connection: quinn::Connection,
    pub direction: Direction,
    pub since: SystemTime,
    /// Signature scheme the peer's CertificateVerify used, as our verifier saw it.
    pub signature: &'static str,
    pub pinned: bool,
    violations: AtomicU32,
    /// Bytes of request bodies this peer may have us buffer at once.
    pub inbound_budget: Arc<Semaphore>,
}

impl PeerConn {
    pub(crate) fn new(
        node_id: NodeId,
        connection: quinn::Connection,
        direction: Direction,
        signature: &'static str,
        pinned: bool,
        inbound_budget: usize,
    ) -> Self {
        Self {
            node_id,
            connection,
            direction,
            since: SystemTime::now(),
            signature,
            pinned,
            violations: AtomicU32::new(0),
            inbound_budget: Arc::new(Semaphore::new(inbound_budget)),
        }
    }

    pub(crate) fn same_as(&self, other: &PeerConn) -> bool {
        self.connection.stable_id() == other.connection.stable_id()
    }

    /// The peer's address as people write it: an IPv4 peer on a dual-stack
    /// socket shows as `1.2.3.4:p`, not `[::ffff:1.2.3.4]:p`.
    pub(crate) fn address(&self) -> SocketAddr {
        let addr = self.connection.remote_address();
        SocketAddr::new(addr.ip().to_canonical(), addr.port())
    }

    pub(crate) fn is_live(&self) -> bool {
        self.connection.close_reason().is_none()
    }

    /// Who dialed this connection.
    fn dialer(&self, local: NodeId) -> NodeId {
        match self.direction {
            Direction::Outbound => local,
            Direction::Inbound => self.node_id,
        }
    }

    /// Counts one malformed frame; true when the peer has used up its allowance.
    pub(crate) fn violation(&self, allowed: u32) -> bool {
        self.violations.fetch_add(1, Ordering::Relaxed) + 1 > allowed
    }

    pub(crate) fn close(&self, code: pb::CloseCode, reason: &str) {
        self.connection
            .close(wire::close_code(code), reason.as_bytes());
    }

    pub(crate) fn info(&self) -> PeerInfo {
        let stats = self.connection.stats();
        PeerInfo {
            node_id: self.node_id,
            address: self.address(),
            direction: self.direction,
            since_unix_ms: unix_ms(self.since),
            rtt_ms: self.connection.rtt().as_secs_f64() * 1e3,
            bytes_in: stats.udp_rx.bytes,
            bytes_out: stats.udp_tx.bytes,
            // The provider offers this group alone, so a completed handshake used it.
            key_exchange: tls::KEY_EXCHANGE,
            signature: self.signature,
            pinned: self.pinned,
        }
    }
}

impl Inner {
    /// The protocol a request names, if this node serves it (the transport
    /// itself answers [`Protocol::PING`]).
    pub(crate) fn served(&self, id: u8) -> Option<Protocol> {
        if id == Protocol::PING.id() {
            return Some(Protocol::PING);
        }
        read(&self.handlers).get(&id).map(|r| r.protocol)
    }

    /// The live connection to `node_id`, if any.
    pub(crate) fn live(&self, node_id: NodeId) -> Option<Arc<PeerConn>> {
        lock(&self.peers)
            .get(&node_id)
            .filter(|c| c.is_live())
            .cloned()
    }

    /// Puts a freshly established connection in the table and returns the
    /// connection to use for this peer (the new one, or an older live one).
    pub(crate) async fn register(&self, new: Arc<PeerConn>) -> Arc<PeerConn> {
        let old = self.live(new.node_id);
        match old {
            Some(old) if !self.prefers_new(&new, &old) => {
                if self.answers_ping(&old).await {
                    tracing::debug!(peer = %new.node_id, "keeping the existing connection; retiring the duplicate");
                    self.retire(new);
                    old
                } else {
                    tracing::info!(peer = %new.node_id, "existing connection did not answer; replacing it");
                    self.install(new, Some(old))
                }
            }
            // The same dialer again, from another address, while its first connection
            // lives: it moved (then the old path no longer answers) or a second host holds
            // its key. Routing flips only when the old connection is gone.
            Some(old)
                if new.direction == Direction::Inbound
                    && old.direction == Direction::Inbound
                    && new.address() != old.address() =>
            {
                if self.answers_ping(&old).await {
                    let now = std::time::Instant::now();
                    self.duplicates
                        .remote_clash(new.node_id, old.address(), new.address(), now);
                    new.close(
                        pb::CloseCode::Duplicate,
                        "this node id is connected from another address",
                    );
                    old
                } else {
                    tracing::info!(peer = %new.node_id, from = %new.address(), "peer moved; replacing its old connection");
                    self.install(new, Some(old))
                }
            }
            _ => self.install(new, None),
        }
    }

    fn prefers_new(&self, new: &PeerConn, old: &PeerConn) -> bool {
        new.direction == old.direction || new.dialer(self.local_id) < old.dialer(self.local_id)
    }

    /// Decides under the table lock, against whatever is in the table now
    /// (another handshake may have finished while we probed `stale`).
    fn install(&self, new: Arc<PeerConn>, stale: Option<Arc<PeerConn>>) -> Arc<PeerConn> {
        let mut peers = lock(&self.peers);
        let current = peers.get(&new.node_id).filter(|c| c.is_live()).cloned();
        let outcome = match current {
            Some(cur) if stale.as_ref().is_some_and(|s| s.same_as(&cur)) => {
                Installed::Replaced(cur, pb::CloseCode::Stale)
            }
            Some(cur) if self.prefers_new(&new, &cur) => {
                Installed::Replaced(cur, pb::CloseCode::Duplicate)
            }
            Some(cur) => Installed::Kept(cur),
            None => Installed::First,
        };
        if let Installed::Kept(cur) = outcome {
            drop(peers);
            self.retire(new);
            return cur;
        }
        peers.insert(new.node_id, new.clone());
        drop(peers);
        match outcome {
            Installed::Replaced(old, pb::CloseCode::Duplicate) => self.retire(old),
            Installed::Replaced(old, code) => old.close(code, "replaced by a newer connection"),
            _ => {}
        }
        let _ = self.events.send(PeerEvent::Connected {
            node_id: new.node_id,
            address: new.address(),
            direction: new.direction,
        });
        new
    }

    /// Closes a duplicate connection once requests already in flight on it
    /// had time to finish. It is out of the table, so no new request starts
    /// on it from our side, and the peer applies the same rule to its own.
    fn retire(&self, conn: Arc<PeerConn>) {
        let drain = self.limits.request_timeout.min(DUPLICATE_DRAIN);
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(drain) => {}
                () = cancel.cancelled() => {}
            }
            conn.close(pb::CloseCode::Duplicate, "duplicate connection");
        });
    }

    pub(crate) async fn answers_ping(&self, conn: &PeerConn) -> bool {
        let bound = (conn.connection.rtt() * 4)
            .max(Duration::from_millis(500))
            .min(self.limits.request_timeout);
        matches!(
            tokio::time::timeout(
                bound,
                request::request_on(conn, Protocol::PING, &Bytes::new())
            )
            .await,
            Ok(Ok(_))
        )
    }

    /// Forgets `conn` if it is still the table's entry for its peer.
    pub(crate) fn forget(&self, conn: &PeerConn) {
        let mut peers = lock(&self.peers);
        if peers.get(&conn.node_id).is_some_and(|c| c.same_as(conn)) {
            peers.remove(&conn.node_id);
            drop(peers);
            let _ = self.events.send(PeerEvent::Disconnected {
                node_id: conn.node_id,
            });
        }
    }
}
