//! The dialing side: one connection per peer, coalesced dials, and keeping
//! configured peers connected with backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pqnode_crypto::NodeId;
use quinn::{ConnectionError, TransportErrorCode};
use rustls::SignatureScheme;

use super::accept::close_unacceptable;
use super::pool::PeerConn;
use super::{Inner, lock, serve};
use crate::config::PeerAddr;
use crate::error::{DialError, cause};
use crate::stats::Direction;
use crate::tls::{self, Observed};

/// Peers with a pending backoff we track, at most; expired entries go first.
const MAX_BACKOFF_ENTRIES: usize = 4096;

/// After a failed dial: no new attempt before `until`; the next delay doubles from `next`.
pub(crate) struct DialBackoff {
    until: Instant,
    next: Duration,
}

/// Key under which concurrent dials coalesce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DialKey {
    Node(NodeId),
    Addr(SocketAddr),
}

impl Inner {
    /// How long dials to `key` are still held back, if they are.
    pub(crate) fn backoff_remaining(&self, key: DialKey) -> Option<Duration> {
        let backoff = lock(&self.dial_backoff);
        let until = backoff.get(&key)?.until;
        until.checked_duration_since(Instant::now())
    }

    /// Holds dials to `key` back for a while, twice as long as last time (up to `reconnect_max`).
    pub(crate) fn dial_failed(&self, key: DialKey) {
        let limits = &self.limits;
        let mut backoff = lock(&self.dial_backoff);
        let now = Instant::now();
        if backoff.len() >= MAX_BACKOFF_ENTRIES {
            backoff.retain(|_, b| b.until > now);
        }
        let next = backoff.get(&key).map_or(limits.reconnect_min, |b| {
            (b.next * 2).min(limits.reconnect_max)
        });
        backoff.insert(
            key,
            DialBackoff {
                until: now + jittered(next),
                next,
            },
        );
    }

    pub(crate) fn dial_succeeded(&self, key: DialKey) {
        lock(&self.dial_backoff).remove(&key);
    }

    /// The lock that serializes dials to one peer (or one address, when unpinned).
    pub(crate) fn dial_lock(&self, key: DialKey) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.dial_locks).entry(key).or_default().clone()
    }

    /// Drops the dial lock entry once nobody else waits on it.
    pub(crate) fn release_dial_lock(&self, key: DialKey, held: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = lock(&self.dial_locks);
        // Two references: the map's and ours.
        if Arc::strong_count(&held) <= 2 {
            locks.remove(&key);
        }
    }
}

/// The connection to `node_id`: the live one, or a new one to its known
/// address, or to the address the [`AddressLookup`](crate::AddressLookup)
/// finds when none is known.
pub(crate) async fn connection_to(
    inner: &Arc<Inner>,
    node_id: NodeId,
) -> Result<Arc<PeerConn>, DialError> {
    if let Some(conn) = inner.live(node_id) {
        return Ok(conn);
    }
    let known = lock(&inner.addresses).get(&node_id).copied();
    let addr = match known {
        Some(addr) => addr,
        None => inner
            .find_address(node_id)
            .await
            .ok_or(DialError::NoAddress(node_id))?,
    };
    dial(inner, Some(node_id), addr, DialPolicy::RespectBackoff).await
}

impl Inner {
    /// Asks the address lookup, if there is one, and remembers what it finds.
    async fn find_address(&self, node_id: NodeId) -> Option<SocketAddr> {
        if node_id == self.local_id {
            return None;
        }
        let lookup = super::read(&self.lookup).clone()?;
        let addr = lookup.find(node_id).await?;
        self.remember_address(node_id, addr);
        Some(addr)
    }
}

/// Connects to a configured or given peer address.
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    peer: &PeerAddr,
) -> Result<Arc<PeerConn>, DialError> {
    if let Some(conn) = peer.node_id.and_then(|id| inner.live(id)) {
        return Ok(conn);
    }
    let addrs = peer.resolve().await.map_err(|e| DialError::Resolve {
        host: peer.host.clone(),
        source: cause(e),
    })?;
    let mut last = DialError::Resolve {
        host: peer.host.clone(),
        source: cause(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no addresses",
        )),
    };
    for addr in addrs {
        match dial(inner, peer.node_id, addr, DialPolicy::Now).await {
            Ok(conn) => return Ok(conn),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Whether a dial honours the backoff left by earlier failed dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DialPolicy {
    /// Requests: fail fast while the peer recently failed, instead of every
    /// request waiting out its own handshake timeout.
    RespectBackoff,
    /// Explicit connects and the reconnect loop, which paces itself.
    Now,
}

/// Dials `addr`, expecting `expected` (or anyone, unpinned). Concurrent
/// dials to the same peer wait for the first and share its connection.
pub(crate) async fn dial(
    inner: &Arc<Inner>,
    expected: Option<NodeId>,
    addr: SocketAddr,
    policy: DialPolicy,
) -> Result<Arc<PeerConn>, DialError> {
    if expected == Some(inner.local_id) {
        return Err(DialError::SelfDial);
    }
    let key = expected.map_or(DialKey::Addr(addr), DialKey::Node);
    let dial_lock = inner.dial_lock(key);
    let result = {
        let _serialized = dial_lock.lock().await;
        match existing(inner, expected, addr) {
            Some(conn) => Ok(conn),
            None => match inner.backoff_remaining(key) {
                Some(retry_in) if policy == DialPolicy::RespectBackoff => {
                    Err(DialError::Backoff { retry_in })
                }
                _ => {
                    let result = dial_now(inner, expected, addr).await;
                    match &result {
                        Ok(_) => inner.dial_succeeded(key),
                        Err(e) if e.is_peer_failure() => inner.dial_failed(key),
                        Err(_) => {}
                    }
                    result
                }
            },
        }
    };
    inner.release_dial_lock(key, dial_lock);
    result
}

/// A live connection that already serves this dial.
fn existing(inner: &Inner, expected: Option<NodeId>, addr: SocketAddr) -> Option<Arc<PeerConn>> {
    match expected {
        Some(id) => inner.live(id),
        None => lock(&inner.peers)
            .values()
            .find(|c| c.is_live() && c.connection.remote_address() == addr)
            .cloned(),
    }
}

async fn dial_now(
    inner: &Arc<Inner>,
    expected: Option<NodeId>,
    addr: SocketAddr,
) -> Result<Arc<PeerConn>, DialError> {
    if inner.cancel.is_cancelled() {
        return Err(DialError::ShuttingDown);
    }
    if inner.endpoint.open_connections() >= inner.limits.max_connections {
        return Err(DialError::TooManyConnections);
    }
    let observed = Observed::new();
    let crypto = inner
        .tls
        .client_config(observed.clone())
        .map_err(|e| DialError::Connect {
            addr,
            source: cause(e),
        })?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config
        .transport_config(inner.transport.clone())
        .token_store(inner.token_store.clone());
    let connecting = inner
        .endpoint
        .connect_with(config, addr, &tls::server_name(expected))
        .map_err(|e| DialError::Connect {
            addr,
            source: cause(e),
        })?;
    let connection = match tokio::time::timeout(inner.limits.handshake_timeout, connecting).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(e)) => {
            let reason = failure_reason(&e, &observed);
            inner.counters.handshake_failed(reason);
            let detail = observed
                .refusal()
                .map_or_else(|| e.to_string(), |(_, detail)| detail.to_owned());
            // Addresses come from other nodes too (DHT contacts): throttled.
            if let Some(held) = inner
                .counters
                .noisy
                .outbound_handshake
                .admit(Instant::now())
            {
                tracing::info!(%addr, expected = ?expected, reason, %detail, suppressed = held.count, "outbound handshake refused");
            }
            // CONNECTION_REFUSED before any TLS: the peer is at its caps.
            if reason == REFUSED_BY_PEER {
                return Err(DialError::Busy { addr });
            }
            return Err(DialError::Refused {
                addr,
                reason: format!("{reason}: {detail}"),
            });
        }
        Err(_) => {
            inner.counters.handshake_failed("timeout");
            return Err(DialError::Timeout { addr });
        }
    };
    let peer = authenticated(inner, &connection, &observed).ok_or_else(|| DialError::Refused {
        addr,
        reason: "peer identity not acceptable".into(),
    })?;
    inner.counters.handshakes_ok.fetch_add(1, Ordering::Relaxed);
    inner.remember_address(peer.node_id, addr);
    match expected {
        Some(_) => {
            tracing::info!(peer = %peer.node_id, %addr, "outbound connection ({} + {})", tls::KEY_EXCHANGE, peer.signature)
        }
        None => tracing::warn!(
            peer = %peer.node_id, %addr,
            "outbound connection UNPINNED: dialed by address alone, node id learned from the handshake"
        ),
    }
    let conn = Arc::new(PeerConn::new(
        peer.node_id,
        connection,
        Direction::Outbound,
        peer.signature,
        expected.is_some(),
        inner.limits.max_request_bytes_per_connection,
    ));
    inner
        .tasks
        .spawn(serve::serve_connection(inner.clone(), conn.clone(), ()));
    Ok(inner.register(conn).await)
}

/// What a completed handshake proved about the peer.
pub(crate) struct Authenticated {
    pub node_id: NodeId,
    pub signature: &'static str,
}

/// Checks what the verifier recorded and the ALPN; closes the connection if
/// anything is off (which the TLS configuration should already make impossible).
pub(crate) fn authenticated(
    inner: &Inner,
    connection: &quinn::Connection,
    observed: &Observed,
) -> Option<Authenticated> {
    let alpn_ok = connection
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .is_some_and(|data| data.protocol.as_deref() == Some(tls::ALPN));
    let refusal = match (observed.peer(), observed.signature()) {
        _ if !alpn_ok => "alpn_mismatch",
        (Some(id), _) if id == inner.local_id => "self_connection",
        (Some(node_id), Some(SignatureScheme::ML_DSA_87)) => {
            return Some(Authenticated {
                node_id,
                signature: tls::SIGNATURE,
            });
        }
        _ => "unverified_peer",
    };
    inner.counters.handshake_failed(refusal);
    if refusal == "self_connection" && connection.side().is_client() {
        // One end of a dial to ourselves; the other end must not read as a stolen key.
        inner.duplicates.dialed_self(Instant::now());
    }
    if let Some(held) = inner.counters.noisy.unacceptable.admit(Instant::now()) {
        tracing::info!(remote = %connection.remote_address(), reason = refusal, suppressed = held.count, "connection refused after handshake");
    }
    close_unacceptable(connection, refusal);
    None
}

/// The label of a connection the peer refused before any handshake.
const REFUSED_BY_PEER: &str = "refused_by_peer";

/// A short, stable label for why a handshake failed (for stats and logs).
pub(crate) fn failure_reason(e: &ConnectionError, observed: &Observed) -> &'static str {
    if let Some((kind, _)) = observed.refusal() {
        return kind.label();
    }
    let code = match e {
        ConnectionError::TransportError(e) => e.code,
        ConnectionError::ConnectionClosed(close) => close.error_code,
        ConnectionError::TimedOut => return "timeout",
        ConnectionError::ApplicationClosed(_) => return "closed_by_peer",
        _ => return "other",
    };
    if code == TransportErrorCode::CONNECTION_REFUSED {
        return REFUSED_BY_PEER;
    }
    // TLS alerts travel as CRYPTO_ERROR 0x100 + alert (RFC 9001 §4.8).
    match u64::from(code).checked_sub(0x100) {
        Some(40) => "no_common_algorithms",
        Some(42..=46 | 48 | 49) => "certificate_rejected",
        // The peer had no key for the schemes we accept (ML-DSA-87 only).
        Some(116) => "certificate_required",
        Some(51) => "bad_signature",
        Some(120) => "alpn_mismatch",
        Some(0..=255) => "tls_alert",
        _ => "transport_error",
    }
}

/// Keeps one configured peer connected: dial, wait for the connection to
/// end, dial again, backing off exponentially (with jitter) while it fails.
pub(crate) async fn maintain(inner: Arc<Inner>, peer: PeerAddr) {
    let limits = inner.limits.clone();
    let mut delay = limits.reconnect_min;
    let mut learned = peer.node_id;
    loop {
        let conn = match learned.and_then(|id| inner.live(id)) {
            Some(conn) => Ok(conn),
            None => connect(&inner, &peer).await,
        };
        match conn {
            Ok(conn) => {
                learned = Some(conn.node_id);
                delay = limits.reconnect_min;
                tokio::select! {
                    () = inner.cancel.cancelled() => return,
                    _ = conn.connection.closed() => {}
                }
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, retry_in = ?delay, "configured peer unreachable");
                tokio::select! {
                    () = inner.cancel.cancelled() => return,
                    () = tokio::time::sleep(jittered(delay)) => {}
                }
                delay = (delay * 2).min(limits.reconnect_max);
            }
        }
    }
}

/// `delay` scaled by a random factor in [0.5, 1.0), so restarted peers do not redial in lockstep.
fn jittered(delay: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let r = aws_lc_rs::rand::fill(&mut byte).map_or(128, |()| byte[0]);
    delay.mul_f64(0.5 + f64::from(r) / 512.0)
}
