//! `/api/peers` and `/api/messages`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use pqnode_crypto::NodeId;
use pqnode_net::{DialError, MAX_MESSAGE_BODY_LEN, RequestError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiState};
use crate::components::messages::{body_bytes, unix_ms};

/// The spec's merged view: P2P connections, signaling and DHT figures.
pub async fn peers(State(state): State<ApiState>) -> Json<Value> {
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
pub struct SendMessage {
    to: String,
    body: String,
}

pub async fn send_message(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<SendMessage>,
) -> Result<Json<Value>, ApiError> {
    let to: NodeId = request.to.parse().map_err(|_| {
        ApiError::bad_request("BAD_NODE_ID", "`to` must be a node id: 40 hex characters")
    })?;
    if request.body.len() > MAX_MESSAGE_BODY_LEN {
        return Err(ApiError::bad_request(
            "BODY_TOO_LARGE",
            format!(
                "`body` is {} bytes; the limit is {MAX_MESSAGE_BODY_LEN}",
                request.body.len()
            ),
        ));
    }
    let p2p = state
        .node
        .p2p
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("P2P_DISABLED", "the P2P node is not running"))?;
    if to == state.node.node_id {
        return Err(ApiError::bad_request(
            "SELF",
            "cannot send a message to this node itself",
        ));
    }
    let body = body_bytes(&request.body);
    let sent = match p2p.network().send_message(to, body.clone()).await {
        // Never connected and no address: ask the DHT where the node is, once.
        Err(RequestError::Dial(DialError::NoAddress(_))) => match &state.node.dht {
            Some(dht) => {
                let found = dht.overlay().lookup(to).await;
                found.map_err(|e| ApiError::internal(e.to_string()))?;
                p2p.network().send_message(to, body).await
            }
            None => Err(RequestError::Dial(DialError::NoAddress(to))),
        },
        other => other,
    };
    let delivered_at = sent.map_err(request_error)?;
    Ok(Json(
        json!({ "to": to, "deliveredAt": unix_ms(delivered_at) }),
    ))
}

fn request_error(e: RequestError) -> ApiError {
    let (status, code) = match &e {
        RequestError::Dial(_) => (StatusCode::BAD_GATEWAY, "PEER_UNREACHABLE"),
        RequestError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "PEER_TIMEOUT"),
        RequestError::TooLarge { .. } => (StatusCode::BAD_REQUEST, "BODY_TOO_LARGE"),
        RequestError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN"),
        _ => (StatusCode::BAD_GATEWAY, "PEER_ERROR"),
    };
    ApiError::new(status, code, e.to_string())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    limit: Option<usize>,
}

pub async fn list_messages(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let p2p = state
        .node
        .p2p
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("P2P_DISABLED", "the P2P node is not running"))?;
    let limit = query.limit.unwrap_or(100).min(1000);
    let (messages, total) =
        tokio::time::timeout(Duration::from_secs(10), p2p.messages.newest(limit))
            .await
            .map_err(|_| {
                ApiError::unavailable("STORE_TIMEOUT", "the store did not answer in time")
            })?
            .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Json(json!({ "messages": messages, "total": total })))
}
