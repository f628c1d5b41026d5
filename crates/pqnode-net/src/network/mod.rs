//! The node's QUIC endpoint and the API the rest of pqnode calls.

mod accept;
mod dial;
mod duplicate;
mod pool;
mod request;
mod serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use pqnode_crypto::{Identity, NodeId};
use pqnode_health::Health;
use quinn::{IdleTimeout, TransportConfig, VarInt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Limits, NetConfig, PeerAddr};
use crate::error::{DialError, RequestError, StartError, cause};
use crate::handler::{AddressLookup, DynHandler, Handler};
use crate::stats::{Counters, Direction, LiveTotals, NetStats, PeerEvent, PeerInfo};
use crate::tls::{self, Observed, TlsIdentity};
use crate::wire::{self, Protocol, pb};

use dial::{DialBackoff, DialKey};
use pool::PeerConn;

/// Registering a handler failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// The transport answers this protocol itself (PING).
    #[error("{0} is served by the transport itself")]
    Reserved(Protocol),
    /// A frame of the protocol would not fit the request byte budget, so no request of it
    /// could ever be served: refused at registration rather than per request.
    #[error(
        "{protocol} frames may carry {cap} bytes, more than the request byte budget of {budget}"
    )]
    CapOverBudget {
        /// The protocol registered.
        protocol: Protocol,
        /// Its body cap, in bytes.
        cap: usize,
        /// The smaller of the per-connection and the total request byte budgets
        /// ([`Limits`](crate::Limits)).
        budget: usize,
    },
}

/// A protocol this node serves, and who answers it.
pub(crate) struct Registered {
    pub(crate) protocol: Protocol,
    pub(crate) handler: Arc<dyn DynHandler>,
}

/// A running node-to-node transport. Cheap to clone; every clone is the same
/// node. Dropping the last clone stops it (without waiting, unlike [`Network::shutdown`]).
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
    _running: Arc<Running>,
}

/// Owned by the handles only (tasks hold `Inner`), so its drop means no handle is left.
struct Running {
    cancel: CancellationToken,
    endpoint: quinn::Endpoint,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.endpoint
            .close(wire::close_code(pb::CloseCode::Shutdown), b"shutdown");
    }
}

/// Addresses remembered for peers we are not connected to, at most.
const MAX_REMEMBERED_ADDRESSES: usize = 16 * 1024;

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("node_id", &self.inner.local_id)
            .field("local_addr", &self.local_addr().ok())
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    local_id: NodeId,
    tls: TlsIdentity,
    endpoint: quinn::Endpoint,
    /// Template for incoming connections; each gets its own TLS config so its
    /// verifier can record what that handshake proved.
    server_template: quinn::ServerConfig,
    transport: Arc<TransportConfig>,
    /// Shared by every dial so NEW_TOKEN address-validation tokens are reused.
    token_store: Arc<dyn quinn::TokenStore>,
    limits: Limits,
    configured_peers: Vec<PeerAddr>,
    /// By wire id.
    handlers: RwLock<HashMap<u8, Registered>>,
    lookup: RwLock<Option<Arc<dyn AddressLookup>>>,
    peers: Mutex<HashMap<NodeId, Arc<PeerConn>>>,
    addresses: Mutex<HashMap<NodeId, SocketAddr>>,
    dial_locks: Mutex<HashMap<DialKey, Arc<tokio::sync::Mutex<()>>>>,
    dial_backoff: Mutex<HashMap<DialKey, DialBackoff>>,
    half_open: AtomicUsize,
    per_ip: Mutex<HashMap<std::net::IpAddr, usize>>,
    counters: Counters,
    /// Connections that proved our own id without being our own dial.
    duplicates: duplicate::DuplicateIdentity,
    cancel: CancellationToken,
    tasks: TaskTracker,
    accepting: AtomicBool,
    events: tokio::sync::broadcast::Sender<PeerEvent>,
    /// Request-body bytes all peers together may have us buffer at once.
    inbound_budget: Arc<tokio::sync::Semaphore>,
}

impl Network {
    /// Binds the endpoint, starts accepting, and starts keeping the configured
    /// peers connected. Must be called inside a tokio runtime.
    pub async fn start(identity: &Identity, config: NetConfig) -> Result<Self, StartError> {
        let tls = TlsIdentity::new(identity)?;
        let limits = config.limits.clone();
        let transport = Arc::new(transport_config(&limits)?);

        let mut server_template =
            quinn::ServerConfig::with_crypto(Arc::new(tls.server_config(Observed::new())?));
        server_template.transport_config(transport.clone());
        // Bounded queue of not-yet-accepted connections: our own caps decide the rest.
        server_template.max_incoming(limits.max_half_open.saturating_mul(2).max(1));

        let socket = accept::bind(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let endpoint = quinn::Endpoint::new(
            accept::endpoint_config(identity),
            Some(server_template.clone()),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;

        let inner = Arc::new(Inner {
            local_id: identity.node_id(),
            tls,
            endpoint,
            server_template,
            transport,
            token_store: Arc::new(quinn::TokenMemoryCache::default()),
            limits,
            configured_peers: config.peers.clone(),
            handlers: RwLock::default(),
            lookup: RwLock::default(),
            peers: Mutex::default(),
            addresses: Mutex::default(),
            dial_locks: Mutex::default(),
            dial_backoff: Mutex::default(),
            half_open: AtomicUsize::new(0),
            per_ip: Mutex::default(),
            counters: Counters::default(),
            duplicates: duplicate::DuplicateIdentity::default(),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            accepting: AtomicBool::new(true),
            events: tokio::sync::broadcast::channel(1024).0,
            inbound_budget: Arc::new(tokio::sync::Semaphore::new(
                config.limits.max_request_bytes_total,
            )),
        });
        inner.tasks.spawn(accept::accept_loop(inner.clone()));
        for peer in config.peers {
            // A request to a configured peer may come before the first dial
            // finishes: it must find the address, not fail with NoAddress.
            if let (Some(id), Ok(ip)) = (peer.node_id, peer.host.parse::<std::net::IpAddr>()) {
                inner.remember_address(id, SocketAddr::new(ip, peer.port));
            }
            inner.tasks.spawn(dial::maintain(inner.clone(), peer));
        }
        tracing::info!(
            node_id = %inner.local_id,
            addr = ?inner.endpoint.local_addr().ok(),
            "QUIC endpoint up (TLS 1.3: {} + {})",
            tls::KEY_EXCHANGE,
            tls::SIGNATURE
        );
        let running = Arc::new(Running {
            cancel: inner.cancel.clone(),
            endpoint: inner.endpoint.clone(),
        });
        Ok(Self {
            inner,
            _running: running,
        })
    }

    /// This node's id, the one its TLS handshakes prove.
    pub fn node_id(&self) -> NodeId {
        self.inner.local_id
    }

    /// The bound UDP address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    /// Answers requests of `protocol` with `handler`, replacing any earlier
    /// one. Requests for a protocol nobody registered are answered
    /// `FAILURE_CODE_NO_HANDLER` without reading their body.
    pub fn register<H: Handler>(
        &self,
        protocol: Protocol,
        handler: H,
    ) -> Result<(), RegisterError> {
        if protocol == Protocol::PING {
            return Err(RegisterError::Reserved(protocol));
        }
        // A frame that fits no budget could never be served: refuse it now, not per request.
        let limits = &self.inner.limits;
        let budget = limits
            .max_request_bytes_per_connection
            .min(limits.max_request_bytes_total);
        if protocol.max_body_len() > budget {
            return Err(RegisterError::CapOverBudget {
                protocol,
                cap: protocol.max_body_len(),
                budget,
            });
        }
        let registered = Registered {
            protocol,
            handler: Arc::new(handler),
        };
        write(&self.inner.handlers).insert(protocol.id(), registered);
        Ok(())
    }

    /// Who to ask for the address of a node the transport has none for (the
    /// DHT). Without one, such dials fail with [`DialError::NoAddress`].
    pub fn set_address_lookup(&self, lookup: Arc<dyn AddressLookup>) {
        *write(&self.inner.lookup) = Some(lookup);
    }

    /// Remembers where `node_id` can be dialed (e.g. learned from the DHT).
    pub fn add_address(&self, node_id: NodeId, addr: SocketAddr) {
        self.inner.remember_address(node_id, addr);
    }

    /// Peers connecting and disconnecting, from now on. A receiver that
    /// falls more than 1024 events behind gets `RecvError::Lagged` and should
    /// resynchronise from [`Network::peers`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<PeerEvent> {
        self.inner.events.subscribe()
    }

    /// Connects to `peer` (or reuses the connection) and returns its proven node id.
    pub async fn connect(&self, peer: &PeerAddr) -> Result<NodeId, DialError> {
        dial::connect(&self.inner, peer)
            .await
            .map(|conn| conn.node_id)
    }

    /// Sends one request and waits for its answer, within the request timeout
    /// (which includes dialing, if there is no connection yet).
    pub async fn request(
        &self,
        to: NodeId,
        protocol: Protocol,
        payload: Bytes,
    ) -> Result<Bytes, RequestError> {
        let (reply, _) = self.inner.request(to, protocol, payload).await?;
        Ok(reply)
    }

    /// Like [`Network::request`], and also says where the answer came from:
    /// the remote address of the connection that carried it. That is where
    /// the peer is now, which may not be the address last given to
    /// [`Network::add_address`] when the peer already had a connection open.
    pub async fn request_with_addr(
        &self,
        to: NodeId,
        protocol: Protocol,
        payload: Bytes,
    ) -> Result<(Bytes, SocketAddr), RequestError> {
        self.inner.request(to, protocol, payload).await
    }

    /// The peers we hold a connection to, one entry per peer.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let peers: Vec<_> = lock(&self.inner.peers).values().cloned().collect();
        let mut infos: Vec<_> = peers
            .iter()
            .filter(|p| p.is_live())
            .map(|p| p.info())
            .collect();
        infos.sort_by_key(|p| p.node_id);
        infos
    }

    /// Counters since start and live totals, for `/api/health`.
    pub fn stats(&self) -> NetStats {
        let mut live = LiveTotals {
            handshakes_in_progress: self.inner.half_open.load(Ordering::Acquire),
            ..LiveTotals::default()
        };
        for peer in lock(&self.inner.peers).values().filter(|p| p.is_live()) {
            match peer.direction {
                Direction::Inbound => live.inbound += 1,
                Direction::Outbound => live.outbound += 1,
            }
            let s = peer.connection.stats();
            live.bytes_sent += s.udp_tx.bytes;
            live.bytes_received += s.udp_rx.bytes;
        }
        let mut stats = self.inner.counters.snapshot(live);
        stats.duplicate_identity_connections = self.inner.duplicates.count();
        stats.identity_clashes = self.inner.duplicates.clashes();
        stats
    }

    /// Fails once the endpoint is closed; warns while configured peers are all unreachable.
    pub fn health(&self) -> Health {
        if !self.inner.accepting.load(Ordering::Acquire) {
            return Health::fail("QUIC endpoint is closed");
        }
        if let Some(clash) = self.inner.duplicates.health(std::time::Instant::now()) {
            return clash;
        }
        let connected = lock(&self.inner.peers).values().any(|p| p.is_live());
        if !connected && !self.inner.configured_peers.is_empty() {
            return Health::warn(format!(
                "none of the {} configured peers is connected",
                self.inner.configured_peers.len()
            ));
        }
        Health::pass()
    }

    /// Closes every connection with `CLOSE_CODE_SHUTDOWN`, stops accepting,
    /// and waits (at most `limits.shutdown_timeout`) for peers to acknowledge.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.accepting.store(false, Ordering::Release);
        inner.cancel.cancel();
        inner
            .endpoint
            .close(wire::close_code(pb::CloseCode::Shutdown), b"shutdown");
        inner.tasks.close();
        let drained = tokio::time::timeout(inner.limits.shutdown_timeout, async {
            inner.endpoint.wait_idle().await;
            inner.tasks.wait().await;
        })
        .await;
        lock(&inner.peers).clear();
        match drained {
            Ok(()) => tracing::info!(node_id = %inner.local_id, "QUIC endpoint shut down"),
            Err(_) => tracing::warn!(
                node_id = %inner.local_id,
                "QUIC shutdown bound reached; remaining connections dropped"
            ),
        }
    }
}

impl Inner {
    /// Records a dialable address. The book is bounded: anyone can make new
    /// identities, so when it is full, entries of unconnected peers go first.
    pub(crate) fn remember_address(&self, node_id: NodeId, addr: SocketAddr) {
        let mut addresses = lock(&self.addresses);
        if addresses.len() >= MAX_REMEMBERED_ADDRESSES && !addresses.contains_key(&node_id) {
            let peers = lock(&self.peers);
            addresses.retain(|id, _| peers.contains_key(id));
        }
        if addresses.len() < MAX_REMEMBERED_ADDRESSES || addresses.contains_key(&node_id) {
            addresses.insert(node_id, addr);
        }
    }

    /// Sends one request; the reply comes with the address of the connection that carried it.
    async fn request(
        self: &Arc<Self>,
        to: NodeId,
        protocol: Protocol,
        payload: Bytes,
    ) -> Result<(Bytes, SocketAddr), RequestError> {
        if self.cancel.is_cancelled() {
            return Err(RequestError::ShuttingDown);
        }
        // Over the protocol's cap fails here, before any dial.
        let frame = crate::wire::encode_request(protocol, &payload)?;
        self.counters.request_out(protocol);
        let attempt = async {
            // Two failures prove the peer never saw the request, so one more
            // try on a fresh connection is safe: the connection died before
            // the stream opened (a duplicate was retired), or the peer
            // answered with a stateless reset (it restarted and lost the
            // connection; our reset key is derived from the identity, so a
            // restarted node can send one).
            let mut retried = false;
            loop {
                let conn = dial::connection_to(self, to).await?;
                let (result, sent) = match conn.connection.open_bi().await {
                    Ok((send, recv)) => {
                        (request::exchange(send, recv, protocol, &frame).await, true)
                    }
                    Err(e) => (Err(RequestError::ConnectionLost(cause(e))), false),
                };
                let unseen = !sent
                    || matches!(
                        conn.connection.close_reason(),
                        Some(quinn::ConnectionError::Reset)
                    );
                match result {
                    Err(_) if unseen && !retried => {
                        self.forget(&conn);
                        retried = true;
                    }
                    result => return result.map(|reply| (reply, conn.address())),
                }
            }
        };
        let result = tokio::time::timeout(self.limits.request_timeout, attempt)
            .await
            .unwrap_or(Err(RequestError::Timeout));
        if result.is_err() {
            self.counters
                .requests_failed_out
                .fetch_add(1, Ordering::Relaxed);
        }
        if matches!(result, Err(RequestError::Timeout)) {
            self.check_liveness(to);
        }
        result
    }

    /// A request timed out: maybe the handler is slow, maybe the peer is
    /// gone. A ping tells which; a dead connection is dropped now, so the
    /// next request redials instead of waiting out the idle timeout too.
    fn check_liveness(self: &Arc<Self>, to: NodeId) {
        let Some(conn) = self.live(to) else {
            return;
        };
        let inner = self.clone();
        self.tasks.spawn(async move {
            if !inner.answers_ping(&conn).await {
                tracing::info!(peer = %to, "connection stopped answering; closing it");
                conn.close(pb::CloseCode::Stale, "peer stopped answering");
                inner.forget(&conn);
            }
        });
    }
}

fn transport_config(limits: &Limits) -> Result<TransportConfig, StartError> {
    let smallest_budget = limits
        .max_request_bytes_per_connection
        .min(limits.max_request_bytes_total);
    if smallest_budget > tokio::sync::Semaphore::MAX_PERMITS {
        return Err(StartError::Config("request byte budget too large".into()));
    }
    let mut transport = TransportConfig::default();
    let idle = IdleTimeout::try_from(limits.idle_timeout)
        .map_err(|_| StartError::Config("idle timeout too large".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(Some(limits.keep_alive))
        .max_concurrent_bidi_streams(VarInt::from_u32(limits.max_streams_per_connection))
        .max_concurrent_uni_streams(VarInt::from_u32(0));
    Ok(transport)
}

/// Our locks guard plain maps that no code leaves half-updated, so a
/// poisoned lock (a panic elsewhere) still holds consistent data.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
