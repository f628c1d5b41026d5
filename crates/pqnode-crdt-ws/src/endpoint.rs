//! `GET /sync/{doc}`: a WebSocket per client, speaking npm y-websocket's protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use pqnode_crdt::{DocName, DocStore, Session, SessionError, SessionOptions};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::access::{AccessControl, Grant};
use crate::admission::Admission;
use crate::capability::Rights;

/// Where the endpoint is mounted: a y-websocket provider given `ws://host:port/sync` and room
/// `doc` connects to `/sync/doc`.
pub const PATH_PREFIX: &str = "/sync";
/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 8 * 1024;
/// WebSocket ping interval: finds dead clients, and keeps middleboxes from closing idle ones.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Close codes for refusals a reconnect would only repeat (y-websocket does not retry on
/// 4400-4499): a bad document name or request, no access (also a revoked capability), a
/// frame over the size cap.
pub const CLOSE_BAD_REQUEST: u16 = 4400;
/// Close code for a connection not allowed to open the document.
pub const CLOSE_FORBIDDEN: u16 = 4403;
/// Close code for a session whose token or listing was withdrawn: the same as
/// [`CLOSE_FORBIDDEN`], since a reconnect would be refused for the same reason.
pub const CLOSE_REVOKED: u16 = CLOSE_FORBIDDEN;
/// Close code for a frame over the size cap.
pub const CLOSE_TOO_LARGE: u16 = 4413;
/// Close code when new sessions arrive faster than the node lets them in (RFC 6455 1013:
/// try again later; y-websocket backs off and retries).
pub const CLOSE_TRY_LATER: u16 = 1013;

/// Called when a client opens a document (after access was granted): the node starts
/// replicating it, so a document held only by other nodes arrives here.
pub type OnOpen = Arc<dyn Fn(&DocName) + Send + Sync>;

/// What the endpoint serves from. Cheap to clone.
#[derive(Clone)]
pub struct SyncEndpoint {
    /// The documents sessions read and write.
    pub docs: DocStore,
    /// Who may open which document.
    pub access: AccessControl,
    /// Cancelled when the node stops: every connection is closed with 1001.
    pub shutdown: CancellationToken,
    /// Told of every document a client opens; `None` on a node that does not replicate.
    pub on_open: Option<OnOpen>,
    /// How fast new sessions are let in (reconnect storms after a restart).
    pub admission: Arc<Admission>,
}

#[derive(Deserialize)]
struct Params {
    /// A capability token ([`crate::capability`]).
    token: Option<String>,
    /// A listed peer's proof ([`crate::peer_proof`]).
    peer: Option<String>,
}

/// The routes: `GET /sync/{*doc}`.
pub fn router(endpoint: SyncEndpoint) -> Router {
    Router::new()
        .route("/sync/{*doc}", get(upgrade))
        .with_state(endpoint)
}

async fn upgrade(
    State(endpoint): State<SyncEndpoint>,
    // `None` when the server runs without connect info: no per-IP admission then.
    // (axum 0.8's `ConnectInfo` is no optional extractor; `Extension` is.)
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(doc): Path<String>,
    Query(params): Query<Params>,
    ws: WebSocketUpgrade,
) -> Response {
    let ip = connect_info.map(|Extension(ConnectInfo(addr))| addr.ip());
    if endpoint.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the node is stopping",
        );
    }
    // The transport reads frames up to twice the session's cap, so an oversized frame is
    // read whole and refused by the session with a reason (4413): one refused mid-read by
    // the transport leaves its unread bytes behind, and the close frame is lost to a reset.
    let max = endpoint.docs.config().max_frame_bytes.saturating_mul(2);
    // tungstenite's defaults keep 128 KiB per buffer per connection, most of a session's
    // memory: a small read chunk costs a few more reads only for large frames, and each
    // message is written (and flushed) as it is sent anyway. The write buffer is capped so a
    // client that stops reading cannot make it grow without bound.
    let ws = ws
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(max);
    if !endpoint.admission.admit(ip) {
        return ws.on_upgrade(|socket| {
            close_at_once(
                socket,
                CLOSE_TRY_LATER,
                "too many sessions opening: try again".into(),
            )
        });
    }
    // Refusals are sent as close frames after the upgrade, not as HTTP errors: a browser
    // shows a WebSocket client no HTTP status or body, and y-websocket stops retrying only
    // on a close code in 4400-4499.
    let name = match DocName::new(&doc) {
        Ok(name) => name,
        Err(e) => {
            return ws
                .on_upgrade(move |socket| close_at_once(socket, CLOSE_BAD_REQUEST, e.to_string()));
        }
    };
    let grant =
        match endpoint
            .access
            .authorize(&doc, params.token.as_deref(), params.peer.as_deref())
        {
            Ok(grant) => grant,
            Err(e) => {
                return ws.on_upgrade(move |socket| {
                    close_at_once(socket, CLOSE_FORBIDDEN, e.to_string())
                });
            }
        };
    if let Some(on_open) = &endpoint.on_open {
        on_open(&name);
    }
    ws.on_upgrade(move |socket| serve(socket, endpoint, name, grant))
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

async fn close_at_once(mut socket: WebSocket, code: u16, reason: String) {
    tracing::debug!(code, %reason, "sync connection refused");
    close(&mut socket, Ending { code, reason }).await;
}

async fn close(socket: &mut WebSocket, ending: Ending) {
    // A close reason is at most 123 bytes.
    let reason: String = ending.reason.chars().take(120).collect();
    let frame = CloseFrame {
        code: ending.code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// A frame over the transport's cap is refused with a close frame that says so; any other
/// read error means the client is gone.
fn too_large(error: axum::Error) -> Option<Ending> {
    let error = error.into_inner();
    match error.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(e)) => Some(Ending {
            code: CLOSE_TOO_LARGE,
            reason: format!("frame refused: {e}"),
        }),
        _ => None,
    }
}

/// Why a connection ended, as its close frame says.
struct Ending {
    code: u16,
    reason: String,
}

impl From<SessionError> for Ending {
    fn from(e: SessionError) -> Self {
        Ending {
            code: e.close_code(),
            reason: e.to_string(),
        }
    }
}

async fn serve(mut socket: WebSocket, endpoint: SyncEndpoint, name: DocName, grant: Grant) {
    let revoked = grant.holder.map(|holder| {
        let cancel = endpoint.access.watch(&holder);
        (holder, cancel)
    });
    let options = match grant.rights {
        Rights::Write => SessionOptions::default(),
        Rights::Read => SessionOptions::read_only(),
    };
    let ending = match Session::open(&endpoint.docs, &name, options).await {
        Ok((mut session, mut events, greeting)) => {
            let revoked_signal = revoked.as_ref().map(|(_, cancel)| cancel.clone());
            let ending = run(
                &mut socket,
                &mut session,
                &mut events,
                greeting,
                revoked_signal.unwrap_or_default(),
                &endpoint.shutdown,
            )
            .await;
            session.close();
            ending
        }
        Err(e) => Some(Ending {
            code: if e.is_caller_fault() {
                CLOSE_BAD_REQUEST
            } else {
                1011
            },
            reason: e.to_string(),
        }),
    };
    if let Some((holder, cancel)) = &revoked {
        endpoint.access.unwatch(holder, cancel);
    }
    if let Some(ending) = ending {
        tracing::debug!(doc = %name, code = ending.code, reason = %ending.reason, "sync connection closed");
        close(&mut socket, ending).await;
    }
}

/// The connection's loop; `None` when the client went away first.
async fn run(
    socket: &mut WebSocket,
    session: &mut Session,
    events: &mut pqnode_crdt::DocSubscription,
    greeting: Vec<pqnode_crdt::Outgoing>,
    revoked: CancellationToken,
    shutdown: &CancellationToken,
) -> Option<Ending> {
    for out in greeting {
        // One y-sync message per WebSocket message: y-websocket reads one per frame.
        socket.send(Message::Binary(out.frame)).await.ok()?;
    }
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        let outgoing = tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Binary(frame))) => session.on_message(&frame).await,
                Some(Ok(Message::Text(_))) => {
                    return Some(Ending { code: 1003, reason: "text frames are not Yjs messages".into() });
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Err(e)) => return too_large(e),
                Some(Ok(Message::Close(_))) | None => return None,
            },
            event = events.recv() => event.and_then(|e| session.on_event(e)),
            // The client's updates commit in the background; a failed one ends the session.
            committed = session.committed() => committed.map(|()| Vec::new()),
            () = revoked.cancelled() => {
                return Some(Ending { code: CLOSE_REVOKED, reason: "access revoked".into() });
            }
            () = shutdown.cancelled() => {
                return Some(Ending { code: 1001, reason: "node shutting down".into() });
            }
            _ = ping.tick() => {
                socket.send(Message::Ping(Default::default())).await.ok()?;
                continue;
            }
        };
        match outgoing {
            Ok(frames) => {
                for out in frames {
                    socket.send(Message::Binary(out.frame)).await.ok()?;
                }
            }
            Err(e) => return Some(e.into()),
        }
    }
}
