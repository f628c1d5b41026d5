//! `GET /sync/{doc}`: a WebSocket per client, speaking npm y-websocket's protocol.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pqnode_crdt::{DocName, DocStore, Session, SessionError, SessionOptions};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::access::{AccessControl, Grant};
use crate::capability::Rights;

/// Where the endpoint is mounted: a y-websocket provider given `ws://host:port/sync` and room
/// `doc` connects to `/sync/doc`.
pub const PATH_PREFIX: &str = "/sync";
/// WebSocket ping interval: finds dead clients, and keeps middleboxes from closing idle ones.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// Close code for a revoked capability (application range).
pub const CLOSE_REVOKED: u16 = 4403;

/// Called when a client opens a document (after access was granted): the node starts
/// replicating it, so a document held only by other nodes arrives here.
pub type OnOpen = Arc<dyn Fn(&DocName) + Send + Sync>;

/// What the endpoint serves from. Cheap to clone.
#[derive(Clone)]
pub struct SyncEndpoint {
    pub docs: DocStore,
    pub access: AccessControl,
    /// Cancelled when the node stops: every connection is closed with 1001.
    pub shutdown: CancellationToken,
    pub on_open: Option<OnOpen>,
}

#[derive(Deserialize)]
struct Params {
    token: Option<String>,
}

/// The routes: `GET /sync/{*doc}`.
pub fn router(endpoint: SyncEndpoint) -> Router {
    Router::new()
        .route("/sync/{*doc}", get(upgrade))
        .with_state(endpoint)
}

async fn upgrade(
    State(endpoint): State<SyncEndpoint>,
    Path(doc): Path<String>,
    Query(params): Query<Params>,
    ws: WebSocketUpgrade,
) -> Response {
    let name = match DocName::new(&doc) {
        Ok(name) => name,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "INVALID_DOCUMENT", &e.to_string()),
    };
    let grant = match endpoint.access.authorize(&doc, params.token.as_deref()) {
        Ok(grant) => grant,
        Err(e) => return refuse(StatusCode::FORBIDDEN, "FORBIDDEN", &e.to_string()),
    };
    if endpoint.shutdown.is_cancelled() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "SHUTTING_DOWN",
            "the node is stopping",
        );
    }
    if let Some(on_open) = &endpoint.on_open {
        on_open(&name);
    }
    let max = endpoint.docs.config().max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, endpoint, name, grant))
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
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
    let revoked = grant.token.map(|id| (id, endpoint.access.watch(id)));
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
            code: if e.is_caller_fault() { 1008 } else { 1011 },
            reason: e.to_string(),
        }),
    };
    if let Some((id, cancel)) = &revoked {
        endpoint.access.unwatch(*id, cancel);
    }
    if let Some(Ending { code, reason }) = ending {
        tracing::debug!(doc = %name, code, %reason, "sync connection closed");
        // A close reason is at most 123 bytes.
        let reason: String = reason.chars().take(120).collect();
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
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
                Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            },
            event = events.recv() => event.and_then(|e| session.on_event(e)),
            () = revoked.cancelled() => {
                return Some(Ending { code: CLOSE_REVOKED, reason: "capability revoked".into() });
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
