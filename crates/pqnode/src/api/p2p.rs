//! `/api/peers` and `/api/messages`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use pqnode_crypto::NodeId;
use pqnode_messaging::{MessagePage, ReadError, SendError};
use pqnode_net::{DialError, RequestError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiState};
use crate::components::p2p::P2pService;

/// The spec's merged view: P2P connections, signaling and DHT figures.
pub(super) async fn peers(State(state): State<ApiState>) -> Json<Value> {
    let node = &state.node;
    let list = node
        .p2p
        .as_ref()
        .map(|p| p.network().peers())
        .unwrap_or_default();
    let signaling = node.signaling.get().map(|s| s.native_stats());
    let dht = node.dht_summary().await;
    Json(json!({
        "connected": list.len(),
        "total": list.len().max(dht.total_nodes),
        "list": list,
        "signaling": {
            "connections": signaling.as_ref().map_or(0, |s| s.connections),
            "peers": signaling.as_ref().map_or(0, |s| s.peers),
            "connectedPeers": signaling.as_ref().map_or(0, |s| s.connected_peers),
            "dhtNodes": dht.total_nodes,
            "dhtBuckets": dht.buckets_used,
        },
        "dht": {
            "totalNodes": dht.total_nodes,
            "bucketsUsed": dht.buckets_used,
            "bootstrapNodes": dht.bootstrap_nodes,
        },
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendMessage {
    to: String,
    body: String,
}

/// Seconds a caller waits before retrying a message the receiver could not store.
const STORE_RETRY_AFTER: u32 = 5;

/// Answers 200 only once the receiving node has committed the message to its disk.
pub(super) async fn send_message(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<SendMessage>,
) -> Result<Json<Value>, ApiError> {
    let to: NodeId = request.to.parse().map_err(|_| {
        ApiError::bad_request("BAD_NODE_ID", "`to` must be a node id: 40 hex characters")
    })?;
    let p2p = p2p(&state)?;
    let delivered = p2p
        .messenger
        .send(to, &request.body)
        .await
        .map_err(send_error)?;
    Ok(Json(json!({
        "to": to,
        "deliveredAt": delivered.received_at_unix_ms,
        "stored": true,
    })))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    limit: Option<usize>,
    /// `next` of the previous page: lists the messages received before that one.
    before: Option<String>,
}

/// Newest first, one page at a time; 503 while the store cannot be read.
pub(super) async fn list_messages(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
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
    Ok(Json(page))
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
            code: pqnode_net::wire::pb::FailureCode::Unavailable,
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
