//! The node's TCP listeners for HTTP: the API port and the signaling port
//! (which also serves PeerJS and the demo page). Both go through here.
//!
//! What it is for: no client can take descriptors or shutdown time from the
//! node. Every connection is counted the moment it is accepted, before hyper
//! reads a byte and before any WebSocket upgrade: a listener-wide cap and a
//! per-IP cap, over which a connection is reset at once. A full listener
//! gives the place of the oldest connection that never completed a request
//! to the newcomer, so held-open sockets cannot lock real clients out.
//! Request heads must arrive within `header_read_timeout` (hyper's own
//! timer); a connection with no request in progress and no bytes moving for
//! `idle_timeout` is closed. At shutdown, accepting stops, connections that
//! never completed a request are closed, keep-alive ends, and whatever is
//! still open after the grace period is closed by force, upgraded
//! WebSockets included.
//!
//! What it is not: routing, authentication or per-message limits (the
//! routers and the signaling crates do those), nor TLS, nor HTTP/2 (neither
//! port spoke it before this module).

mod admission;
mod bind;
mod connection;
mod descriptors;
mod io;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

pub(crate) use admission::Caps;
use admission::{Admission, Verdict};
pub(crate) use bind::bind_tcp;
use connection::{refuse, serve_connection};
pub(crate) use descriptors::{descriptor_budget, fit_to_budget};
use io::ConnState;

/// One listener's limits, from `api.tcp` or `signaling.tcp` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub caps: Caps,
    /// Bound on receiving one request head (and on a keep-alive pause before the next one).
    pub header_read_timeout: Duration,
    /// A connection with no request in progress and no bytes moving is closed after this.
    pub idle_timeout: Duration,
}

/// Refusals and timeouts are logged at most this often per listener, with a count.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// How long accept pauses after the process ran out of descriptors, so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Connection tasks end at once when forced; this only bounds a task stuck outside I/O.
const FORCED_CLOSE_WAIT: Duration = Duration::from_millis(500);
/// Request heads larger than this are answered 431 (hyper's default is ~400 KiB).
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// Counters for `/api/health`, the signaling stats and `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused_full: AtomicU64,
    refused_per_ip: AtomicU64,
    evicted: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    closed_at_shutdown: AtomicU64,
    accept_errors: AtomicU64,
    malformed: Arc<AtomicU64>,
}

/// One HTTP port: open TCP connections, the caps in force, and how many were accepted,
/// refused over a cap, evicted, timed out, closed at shutdown, and malformed requests
/// answered. Shown as is in `/api/health` (schema `ListenerFigures`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ListenerFigures)]
pub(crate) struct ListenerStats {
    #[schema(value_type = String)]
    pub addr: SocketAddr,
    pub open: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub accepted: u64,
    /// Refused because the port was at `maxConnections`.
    pub refused_full: u64,
    /// Refused because the address was at `maxConnectionsPerIp`.
    pub refused_per_ip: u64,
    pub evicted: u64,
    pub header_timeouts: u64,
    pub idle_timeouts: u64,
    pub closed_at_shutdown: u64,
    pub accept_errors: u64,
    pub malformed_requests: u64,
}

struct Shared {
    name: &'static str,
    limits: Limits,
    admission: Arc<Admission>,
    counters: Counters,
    /// Parent of every connection's close token: cancelled to force everything closed.
    close_all: CancellationToken,
    /// Keep-alive off: each connection closes after its current request.
    drain: CancellationToken,
    stop_accepting: CancellationToken,
    started: Instant,
    /// Milliseconds after `started` of the last rate-limited warning, and events since.
    last_warning_ms: AtomicU64,
    unlogged: AtomicU64,
}

/// A running HTTP listener. Stop it with [`HttpServer::begin_shutdown`], then
/// [`HttpServer::finish_shutdown`].
pub(crate) struct HttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    connections: TaskTracker,
}

impl HttpServer {
    /// Serves `router` on `listener` until shut down. `name` labels logs and metrics.
    pub(crate) fn start(
        name: &'static str,
        listener: TcpListener,
        router: Router,
        limits: Limits,
    ) -> std::io::Result<Arc<Self>> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            name,
            limits,
            admission: Admission::new(limits.caps),
            counters: Counters::default(),
            close_all: CancellationToken::new(),
            drain: CancellationToken::new(),
            stop_accepting: CancellationToken::new(),
            started: Instant::now(),
            last_warning_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        });
        let connections = TaskTracker::new();
        let accept_task = tokio::spawn(accept_loop(
            shared.clone(),
            listener,
            router,
            connections.clone(),
        ));
        info!(
            listener = name,
            addr = %addr,
            max_connections = limits.caps.max_connections,
            max_connections_per_ip = limits.caps.max_connections_per_ip,
            header_read_timeout_ms = limits.header_read_timeout.as_millis() as u64,
            idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
            "HTTP listener up"
        );
        Ok(Arc::new(Self {
            addr,
            shared,
            accept_task: Mutex::new(Some(accept_task)),
            connections,
        }))
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends keep-alive, and closes at once every connection that never
    /// completed a request (there is nothing of theirs to finish). Requests in progress and
    /// upgraded connections carry on until [`HttpServer::finish_shutdown`].
    pub(crate) fn begin_shutdown(&self) {
        if self.shared.stop_accepting.is_cancelled() {
            return;
        }
        self.shared.stop_accepting.cancel();
        self.shared.drain.cancel();
        let closed = self.shared.admission.close_pending();
        self.shared.count_closed_at_shutdown(closed);
        if closed > 0 {
            info!(
                listener = self.shared.name,
                closed, "closed connections that never completed a request"
            );
        }
    }

    /// Waits until every connection has closed or `grace` has passed, then closes the rest
    /// by force. Never waits on a client beyond `grace` plus a short bound.
    pub(crate) async fn finish_shutdown(&self, grace: Duration) {
        self.begin_shutdown();
        let task = self
            .accept_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            // The loop ends as soon as it sees `stop_accepting`; the listening socket goes with it.
            let _ = task.await;
        }
        self.connections.close();
        let deadline = tokio::time::Instant::now() + grace;
        while self.shared.admission.open() > 0 && tokio::time::Instant::now() < deadline {
            // Connection tasks end when their HTTP exchange does; upgraded sockets are only
            // counted, so the count is polled as well.
            let step = deadline.min(tokio::time::Instant::now() + Duration::from_millis(20));
            let _ = tokio::time::timeout_at(step, self.connections.wait()).await;
            if self.connections.is_empty() {
                tokio::time::sleep_until(step).await;
            }
        }
        let forced = self.shared.admission.open();
        if forced > 0 {
            self.shared.count_closed_at_shutdown(forced);
            warn!(
                listener = self.shared.name,
                forced,
                grace_ms = grace.as_millis() as u64,
                "closing connections still open after the grace period"
            );
        }
        self.shared.close_all.cancel();
        if tokio::time::timeout(FORCED_CLOSE_WAIT, self.connections.wait())
            .await
            .is_err()
        {
            warn!(
                listener = self.shared.name,
                "some connection tasks had not ended after the forced close"
            );
        }
    }

    pub(crate) fn stats(&self) -> ListenerStats {
        let c = &self.shared.counters;
        let l = &self.shared.limits;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ListenerStats {
            addr: self.addr,
            open: self.shared.admission.open(),
            max_connections: l.caps.max_connections,
            max_connections_per_ip: l.caps.max_connections_per_ip,
            header_read_timeout_ms: l.header_read_timeout.as_millis() as u64,
            idle_timeout_ms: l.idle_timeout.as_millis() as u64,
            accepted: get(&c.accepted),
            refused_full: get(&c.refused_full),
            refused_per_ip: get(&c.refused_per_ip),
            evicted: get(&c.evicted),
            header_timeouts: get(&c.header_timeouts),
            idle_timeouts: get(&c.idle_timeouts),
            closed_at_shutdown: get(&c.closed_at_shutdown),
            accept_errors: get(&c.accept_errors),
            malformed_requests: get(&c.malformed),
        }
    }

    /// Brings the open-connections gauge up to date (called before a scrape).
    pub(crate) fn record_metrics(&self) {
        metrics::gauge!("pqnode_tcp_connections_open", "listener" => self.shared.name)
            .set(self.shared.admission.open() as f64);
        metrics::counter!("pqnode_http_malformed_requests_total", "listener" => self.shared.name)
            .absolute(self.shared.counters.malformed.load(Ordering::Relaxed));
    }
}

impl Shared {
    fn count(&self, counter: &AtomicU64, metric: &'static str, reason: &'static str) {
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(metric, "listener" => self.name, "reason" => reason).increment(1);
    }

    fn count_closed_at_shutdown(&self, n: usize) {
        self.counters
            .closed_at_shutdown
            .fetch_add(n as u64, Ordering::Relaxed);
        metrics::counter!("pqnode_tcp_connections_closed_total", "listener" => self.name, "reason" => "shutdown")
            .increment(n as u64);
    }

    /// A warning about a flood, at most once per [`LOG_INTERVAL`], with what happened since.
    fn warn_throttled(&self, what: &'static str) {
        self.unlogged.fetch_add(1, Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_INTERVAL.as_millis() as u64;
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let events = self.unlogged.swap(0, Ordering::Relaxed);
            let c = &self.counters;
            warn!(
                listener = self.name,
                latest = what,
                events,
                refused_full = c.refused_full.load(Ordering::Relaxed),
                refused_per_ip = c.refused_per_ip.load(Ordering::Relaxed),
                evicted = c.evicted.load(Ordering::Relaxed),
                accept_errors = c.accept_errors.load(Ordering::Relaxed),
                "connections refused or closed by the listener's limits (logged at most every 10 s)"
            );
        }
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    router: Router,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.stop_accepting.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors (EMFILE/ENFILE), or a connection that died in the
                // backlog. The caps are meant to keep us off the first; pause briefly
                // rather than spin if it happens anyway.
                shared
                    .counters
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                metrics::counter!("pqnode_tcp_accept_errors_total", "listener" => shared.name)
                    .increment(1);
                debug!(listener = shared.name, error = %e, "accept failed");
                shared.warn_throttled("accept error");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        match shared.admission.admit(remote.ip(), &shared.close_all) {
            Verdict::Admitted { ticket, evicted } => {
                shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                if evicted {
                    shared.count(
                        &shared.counters.evicted,
                        "pqnode_tcp_connections_closed_total",
                        "evicted",
                    );
                    shared.warn_throttled("evicted a connection that never sent a request");
                }
                let _ = stream.set_nodelay(true);
                let state = ConnState::new(ticket);
                connections.spawn(serve_connection(
                    shared.clone(),
                    stream,
                    remote,
                    state,
                    router.clone(),
                ));
            }
            Verdict::PerIp => {
                refuse(stream);
                shared.count(
                    &shared.counters.refused_per_ip,
                    "pqnode_tcp_connections_refused_total",
                    "max_connections_per_ip",
                );
                shared.warn_throttled("refused: per-IP cap");
            }
            Verdict::Full => {
                refuse(stream);
                shared.count(
                    &shared.counters.refused_full,
                    "pqnode_tcp_connections_refused_total",
                    "max_connections",
                );
                shared.warn_throttled("refused: listener full");
            }
        }
    }
}
