//! `/api/peers` and `/api/messages`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use pqnode_crypto::NodeId;
use pqnode_messaging::{ReadError, SendError};
use pqnode_net::{DialError, RequestError};

use super::dto::{
    Delivered, DhtFigures, ErrorBody, ListMessages, MessagePage, Peer, Peers, SendMessage,
    SignalingFigures,
};
use super::{ApiError, ApiJson, ApiState};
use crate::components::p2p::P2pService;

/// P2P connections merged with signaling and DHT figures
///
/// The spec's merged view: every live QUIC connection (RTT, bytes, ML-KEM-1024 /
/// ML-DSA-87), the signaling server's counts and the DHT's.
#[utoipa::path(
    get,
    path = "/api/peers",
    security((), ("bearer" = [])),
    responses((status = 200, description = "connections and figures", body = Peers))
)]
pub(super) async fn peers(State(state): State<ApiState>) -> Json<Peers> {
    let node = &state.node;
    let list: Vec<Peer> = node
        .p2p
        .as_ref()
        .map(|p| p.network().peers())
        .unwrap_or_default()
        .into_iter()
        .map(Peer::from)
        .collect();
    let signaling = node.signaling.get().map(|s| s.native_stats());
    let dht = node.dht_summary().await;
    Json(Peers {
        connected: list.len(),
        total: list.len().max(dht.total_nodes),
        list,
        signaling: SignalingFigures {
            connections: signaling.as_ref().map_or(0, |s| s.connections),
            peers: signaling.as_ref().map_or(0, |s| s.peers),
            connected_peers: signaling.as_ref().map_or(0, |s| s.connected_peers),
            dht_nodes: dht.total_nodes,
            dht_buckets: dht.buckets_used,
        },
        dht: DhtFigures {
            total_nodes: dht.total_nodes,
            buckets_used: dht.buckets_used,
            bootstrap_nodes: dht.bootstrap_nodes,
        },
    })
}

/// Seconds a caller waits before retrying a message the receiver could not store.
const STORE_RETRY_AFTER: u32 = 5;

/// Send a text message to another node; answers once the receiver has it on disk
///
/// Answers 200 only once the receiving node has committed the message to its disk. Load
/// on either side is 503 with `Retry-After`: nothing was sent or stored, and the same
/// request may be repeated.
#[utoipa::path(
    post,
    path = "/api/messages",
    security(("bearer" = [])),
    request_body = SendMessage,
    responses(
        (status = 200, description = "delivered: the receiving node committed the message to its store", body = Delivered),
        (status = 400, description = "BAD_NODE_ID, BODY_TOO_LARGE, SELF", body = ErrorBody),
        (status = 502, description = "the peer is unreachable or refused (PEER_UNREACHABLE, PEER_REFUSED, PEER_ERROR)", body = ErrorBody),
        (status = 503, description = "load, nothing was sent or stored; retry after Retry-After: PEER_STORE_UNAVAILABLE (the receiver could not store it), PEER_BUSY (the receiver is at its connection limits or asks us to slow down), NODE_BUSY (this node is at its connection limit), PEER_UNREACHABLE (recent dials failed; the next is allowed after Retry-After), SHUTTING_DOWN, P2P_DISABLED", body = ErrorBody),
        (status = 504, description = "PEER_TIMEOUT: the peer did not answer", body = ErrorBody),
    )
)]
pub(super) async fn send_message(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<SendMessage>,
) -> Result<Json<Delivered>, ApiError> {
    let to: NodeId = request.to.parse().map_err(|_| {
        ApiError::bad_request("BAD_NODE_ID", "`to` must be a node id: 40 hex characters")
    })?;
    let p2p = p2p(&state)?;
    let delivered = p2p
        .messenger
        .send(to, &request.body)
        .await
        .map_err(send_error)?;
    Ok(Json(Delivered {
        to,
        delivered_at: delivered.received_at_unix_ms,
        stored: true,
    }))
}

fn send_error(e: SendError) -> ApiError {
    let message = e.to_string();
    match e {
        SendError::TooLarge { .. } => ApiError::bad_request("BODY_TOO_LARGE", message),
        SendError::ToSelf => ApiError::bad_request("SELF", message),
        SendError::Refused(_) => ApiError::new(StatusCode::BAD_GATEWAY, "PEER_REFUSED", message),
        SendError::Unavailable(_) => {
            ApiError::retry_later("PEER_STORE_UNAVAILABLE", message, STORE_RETRY_AFTER)
        }
        SendError::Transport(e) => request_error(e),
        _ => ApiError::new(StatusCode::BAD_GATEWAY, "PEER_ERROR", message),
    }
}

/// Load is 503 with `Retry-After`, never a gateway error: the caller did
/// nothing wrong and the same request works later. Only real failures of
/// the peer or of the path to it are 502 / 504.
fn request_error(e: RequestError) -> ApiError {
    if let Some(wait) = e.retry_after() {
        let code = match &e {
            RequestError::Dial(DialError::TooManyConnections) => "NODE_BUSY",
            // Recent dials failed: still unreachable, just not tried again yet.
            RequestError::Dial(DialError::Backoff { .. }) => "PEER_UNREACHABLE",
            _ => "PEER_BUSY",
        };
        return ApiError::retry_later(code, e.to_string(), retry_after_secs(wait));
    }
    let (status, code) = match &e {
        RequestError::Dial(_) => (StatusCode::BAD_GATEWAY, "PEER_UNREACHABLE"),
        RequestError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "PEER_TIMEOUT"),
        RequestError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN"),
        _ => (StatusCode::BAD_GATEWAY, "PEER_ERROR"),
    };
    ApiError::new(status, code, e.to_string())
}

/// Whole seconds for `Retry-After`, rounded up and at least 1.
fn retry_after_secs(wait: Duration) -> u32 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
}

/// Messages this node received, newest first
///
/// One page at a time; 503 while the store cannot be read.
#[utoipa::path(
    get,
    path = "/api/messages",
    security((), ("bearer" = [])),
    params(ListMessages),
    responses(
        (status = 200, description = "one page", body = MessagePage),
        (status = 400, description = "BAD_CURSOR: `before` is not a message id", body = ErrorBody),
        (status = 503, description = "STORE_UNAVAILABLE, STORE_TIMEOUT: the store cannot be read now (see /api/health); P2P_DISABLED", body = ErrorBody),
    )
)]
pub(super) async fn list_messages(
    State(state): State<ApiState>,
    Query(query): Query<ListMessages>,
) -> Result<Json<MessagePage>, ApiError> {
    let p2p = p2p(&state)?;
    let limit = query.limit.unwrap_or(100).min(1000);
    let page = p2p.messenger.log().page(limit, query.before.as_deref());
    let page = tokio::time::timeout(Duration::from_secs(10), page)
        .await
        .map_err(|_| {
            ApiError::retry_later(
                "STORE_TIMEOUT",
                "the store did not answer in time",
                STORE_RETRY_AFTER,
            )
        })?
        .map_err(|e| match e {
            ReadError::BadCursor => ApiError::bad_request(
                "BAD_CURSOR",
                "`before` must be the `next` of an earlier page",
            ),
            e => ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER),
        })?;
    Ok(Json(page.into()))
}

fn p2p(state: &ApiState) -> Result<&P2pService, ApiError> {
    state
        .node
        .p2p
        .as_deref()
        .ok_or_else(|| ApiError::unavailable("P2P_DISABLED", "the P2P node is not running"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_pressure_is_503_with_retry_after() {
        let busy = request_error(RequestError::Dial(DialError::TooManyConnections));
        assert_eq!(
            (busy.status, busy.code),
            (StatusCode::SERVICE_UNAVAILABLE, "NODE_BUSY")
        );
        assert!(busy.retry_after.is_some());
        let peer_busy = request_error(RequestError::Dial(DialError::Busy {
            addr: "127.0.0.1:4001".parse().unwrap(),
        }));
        assert_eq!(peer_busy.code, "PEER_BUSY");
        assert_eq!(peer_busy.status, StatusCode::SERVICE_UNAVAILABLE);
        let backoff = request_error(RequestError::Dial(DialError::Backoff {
            retry_in: Duration::from_millis(2500),
        }));
        assert_eq!(backoff.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(backoff.retry_after, Some(3));
        let remote = request_error(RequestError::Remote {
            code: pqnode_net::FailureCode::Unavailable,
            detail: "too many DHT requests; slow down".into(),
        });
        assert_eq!(remote.status, StatusCode::SERVICE_UNAVAILABLE);
        // A real failure stays a gateway error.
        let refused = request_error(RequestError::Dial(DialError::Refused {
            addr: "127.0.0.1:4001".parse().unwrap(),
            reason: "wrong_node_id".into(),
        }));
        assert_eq!(refused.status, StatusCode::BAD_GATEWAY);
    }
}
