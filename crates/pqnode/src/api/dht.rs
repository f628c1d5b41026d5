//! `/api/dht/*`: the routing table, lookups and signed records.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use pqnode_crypto::NodeId;
use pqnode_dht::{MAX_TTL, MAX_VALUE_LEN, Record};
use pqnode_overlay::{Overlay, OverlayError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiState};

fn overlay(state: &ApiState) -> Result<&Overlay, ApiError> {
    state
        .node
        .dht
        .as_ref()
        .map(|d| d.overlay())
        .ok_or_else(|| ApiError::unavailable("DHT_DISABLED", "the DHT is not running on this node"))
}

/// Seconds a caller waits before retrying when the store could not take a record.
const STORE_RETRY_AFTER: u32 = 5;

fn dht_error(e: OverlayError) -> ApiError {
    match e {
        OverlayError::Record(e) => ApiError::bad_request("BAD_RECORD", e.to_string()),
        OverlayError::Stopped => ApiError::unavailable("DHT_STOPPED", "the DHT has stopped"),
        // The store is failing or recovering (it retries by itself): load, not a bug.
        OverlayError::Store(e) => {
            ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER)
        }
        e => ApiError::internal(e.to_string()),
    }
}

fn parse_id(text: &str, what: &str) -> Result<NodeId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "BAD_ID",
            format!("{what} must be 40 hex characters (160 bits)"),
        )
    })
}

/// The spec's `{nodes, stats: {totalNodes, bucketsUsed, bootstrapNodes}}`.
pub(super) async fn nodes(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let overlay = overlay(&state)?;
    let nodes = overlay.nodes().await.map_err(dht_error)?;
    let stats = overlay.stats().await.map_err(dht_error)?;
    Ok(Json(json!({
        "nodes": nodes,
        "stats": {
            "totalNodes": stats.total_nodes,
            "bucketsUsed": stats.buckets_used,
            "bootstrapNodes": stats.bootstrap_nodes,
            "goodNodes": stats.good_nodes,
            "questionableNodes": stats.questionable_nodes,
            "badNodes": stats.bad_nodes,
            "recordsStored": stats.records_stored,
            "meanLookupRounds": stats.mean_lookup_rounds,
        },
    })))
}

pub(super) async fn buckets(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let buckets = overlay(&state)?.buckets().await.map_err(dht_error)?;
    Ok(Json(json!({ "buckets": buckets })))
}

pub(super) async fn lookup(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let target = parse_id(&id, "the lookup target")?;
    let outcome = overlay(&state)?.lookup(target).await.map_err(dht_error)?;
    Ok(Json(serde_json::to_value(outcome).unwrap_or_default()))
}

fn record_json(record: &Record) -> Value {
    let value = match std::str::from_utf8(record.value()) {
        Ok(text) => json!({ "value": text }),
        Err(_) => json!({ "valueHex": hex::encode(record.value()) }),
    };
    let mut body = json!({
        "key": record.key(),
        "name": String::from_utf8_lossy(record.name()),
        "publisher": record.publisher().node_id(),
        "seq": record.seq(),
        "ttlSecs": record.ttl().as_secs(),
    });
    if let (Some(body), Some(value)) = (body.as_object_mut(), value.as_object()) {
        body.extend(value.clone());
    }
    body
}

/// A record by key, from this node or the network; only verified records are returned.
pub(super) async fn get_record(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = parse_id(&key, "the record key")?;
    match overlay(&state)?.get_record(key).await.map_err(dht_error)? {
        Some(record) => Ok(Json(record_json(&record))),
        None => Err(ApiError::not_found(format!("no record under {key}"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct PublishRecord {
    name: String,
    value: String,
    ttl_secs: Option<u64>,
}

/// `POST /api/dht/records`: publishes `value` under `name`, signed by this node; the answer
/// carries the key, derived from (this node's id, name), so only this node can publish
/// there. (A record is read back by its key: `GET /api/dht/records/{key}`.)
pub(super) async fn publish_record(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<PublishRecord>,
) -> Result<Json<Value>, ApiError> {
    let name = &request.name;
    if name.is_empty() || name.len() > pqnode_dht::MAX_NAME_LEN {
        return Err(ApiError::bad_request(
            "BAD_NAME",
            format!("`name` must be 1..={} bytes", pqnode_dht::MAX_NAME_LEN),
        ));
    }
    if request.value.len() > MAX_VALUE_LEN {
        return Err(ApiError::bad_request(
            "VALUE_TOO_LARGE",
            format!(
                "`value` is {} bytes; the limit is {MAX_VALUE_LEN}",
                request.value.len()
            ),
        ));
    }
    let ttl = Duration::from_secs(request.ttl_secs.unwrap_or(3600));
    if ttl.is_zero() || ttl > MAX_TTL {
        return Err(ApiError::bad_request(
            "BAD_TTL",
            format!("`ttlSecs` must be 1..={}", MAX_TTL.as_secs()),
        ));
    }
    let outcome = overlay(&state)?
        .publish(name.as_bytes(), request.value.as_bytes(), ttl)
        .await
        .map_err(dht_error)?;
    Ok(Json(serde_json::to_value(outcome).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddContact {
    /// `<node-id>@<host>:<port>`
    contact: String,
}

/// Adds a contact by hand: it is asked for our neighbours and enters the table if it answers.
pub(super) async fn add_contact(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<AddContact>,
) -> Result<Json<Value>, ApiError> {
    let peer: pqnode_net::PeerAddr = request.contact.parse().map_err(|e| {
        ApiError::bad_request(
            "BAD_CONTACT",
            format!("contact must be <node-id>@<host>:<port>: {e}"),
        )
    })?;
    if peer.node_id.is_none() {
        return Err(ApiError::bad_request(
            "BAD_CONTACT",
            "contact must name the node id (<node-id>@<host>:<port>): the handshake checks it",
        ));
    }
    if peer.node_id == Some(state.node.node_id) {
        return Err(ApiError::bad_request("SELF", "that is this node's own id"));
    }
    let (outcome, added) = overlay(&state)?
        .add_contact(&peer)
        .await
        .map_err(|e| match e {
            OverlayError::Unresolved => ApiError::bad_request("BAD_CONTACT", e.to_string()),
            e => dht_error(e),
        })?;
    if !added {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "CONTACT_UNREACHABLE",
            format!("{} did not answer over the DHT", request.contact),
        ));
    }
    Ok(Json(json!({ "added": request.contact, "lookup": outcome })))
}

/// Takes a contact out of the routing table.
pub(super) async fn remove_contact(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "the contact's id")?;
    match overlay(&state)?
        .remove_contact(id)
        .await
        .map_err(dht_error)?
    {
        true => Ok(Json(json!({ "removed": id }))),
        false => Err(ApiError::not_found(format!(
            "{id} is not in the routing table"
        ))),
    }
}
