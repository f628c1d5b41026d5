//! One accepted TCP connection: hyper's HTTP/1.1 server on it, with the header-read and
//! idle timeouts, the drain at shutdown and the forced close after it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::debug;

use super::io::{ConnIo, ConnState};
use super::{MAX_HEAD_BYTES, MAX_HEADERS, Shared};

/// Closes a refused connection as cheaply as possible: a reset, no FIN handshake, nothing
/// read or written, and the descriptor freed now.
pub(super) fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Why a connection task ended.
enum Ended {
    Done,
    HeaderTimeout,
    Idle,
    Closed,
    Error,
}

pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    state: Arc<ConnState>,
    router: Router,
) {
    let limits = shared.limits;
    let io = TokioIo::new(ConnIo::new(
        stream,
        state.clone(),
        shared.counters.malformed.clone(),
    ));
    let service = ConnService {
        router,
        remote,
        state: state.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let close = state.ticket().close_token().clone();
    let mut draining = false;
    let ended = loop {
        let now = tokio::time::Instant::now();
        let idle_at = if state.in_flight() > 0 {
            now + limits.idle_timeout
        } else {
            tokio::time::Instant::from_std(state.last_activity() + limits.idle_timeout)
        };
        if idle_at <= now {
            break Ended::Idle;
        }
        tokio::select! {
            result = conn.as_mut() => break match result {
                Ok(()) => Ended::Done,
                Err(e) if e.is_timeout() => Ended::HeaderTimeout,
                Err(e) => {
                    debug!(listener = shared.name, remote = %remote, error = %e, "connection ended with an error");
                    Ended::Error
                }
            },
            _ = close.cancelled() => break Ended::Closed,
            _ = shared.drain.cancelled(), if !draining => {
                draining = true;
                // Idle keep-alive connections close now; a request in progress finishes first.
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(idle_at) => {}
        }
    };
    match ended {
        Ended::HeaderTimeout => shared.count(
            &shared.counters.header_timeouts,
            "pqnode_tcp_connections_closed_total",
            "header_timeout",
        ),
        Ended::Idle => shared.count(
            &shared.counters.idle_timeouts,
            "pqnode_tcp_connections_closed_total",
            "idle_timeout",
        ),
        Ended::Done | Ended::Closed | Ended::Error => {}
    }
}

/// The router, as hyper calls it for one connection: adds the peer's address
/// (`ConnectInfo`, which the signaling per-IP caps read) and marks the request in flight.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
    state: Arc<ConnState>,
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<axum::response::Response, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self
            .state
            .request_started(request.method() == hyper::Method::HEAD);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.remote));
        // A Router is always ready (axum documents `poll_ready` as always `Ready`).
        let response = tower::Service::call(&mut self.router.clone(), request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}
