//! `/api/dht/*`: the routing table, lookups and signed records.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use pqnode_crypto::NodeId;
use pqnode_dht::{MAX_TTL, MAX_VALUE_LEN};
use pqnode_overlay::{Overlay, OverlayError};

use super::dto::{
    AddContact, ContactAdded, ContactRemoved, DhtBucket, DhtBuckets, DhtNode, DhtNodeStats,
    DhtNodes, DhtRecord, ErrorBody, Lookup, PublishRecord, Published,
};
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

/// The routing table and its figures
///
/// The spec's `{nodes, stats: {totalNodes, bucketsUsed, bootstrapNodes}}`, with a few more
/// figures.
#[utoipa::path(
    get,
    path = "/api/dht/nodes",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "the routing table", body = DhtNodes),
        (status = 503, description = "DHT_DISABLED, DHT_STOPPED", body = ErrorBody),
    )
)]
pub(super) async fn nodes(State(state): State<ApiState>) -> Result<Json<DhtNodes>, ApiError> {
    let overlay = overlay(&state)?;
    let nodes = overlay.nodes().await.map_err(dht_error)?;
    let stats = overlay.stats().await.map_err(dht_error)?;
    Ok(Json(DhtNodes {
        nodes: nodes.into_iter().map(DhtNode::from).collect(),
        stats: DhtNodeStats::from(&stats),
    }))
}

/// The routing table, bucket by bucket
#[utoipa::path(
    get,
    path = "/api/dht/buckets",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "the buckets that hold something", body = DhtBuckets),
        (status = 503, description = "DHT_DISABLED, DHT_STOPPED", body = ErrorBody),
    )
)]
pub(super) async fn buckets(State(state): State<ApiState>) -> Result<Json<DhtBuckets>, ApiError> {
    let buckets = overlay(&state)?.buckets().await.map_err(dht_error)?;
    Ok(Json(DhtBuckets {
        buckets: buckets.into_iter().map(DhtBucket::from).collect(),
    }))
}

/// The nodes closest to an id, found over the network
#[utoipa::path(
    get,
    path = "/api/dht/lookup/{id}",
    security((), ("bearer" = [])),
    params(("id" = String, Path, description = "the target: 40 hex characters (160 bits)")),
    responses(
        (status = 200, description = "how the lookup ended", body = Lookup),
        (status = 400, description = "BAD_ID", body = ErrorBody),
        (status = 503, description = "DHT_DISABLED, DHT_STOPPED", body = ErrorBody),
    )
)]
pub(super) async fn lookup(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Lookup>, ApiError> {
    let target = parse_id(&id, "the lookup target")?;
    let outcome = overlay(&state)?.lookup(target).await.map_err(dht_error)?;
    Ok(Json(outcome.into()))
}

/// Fetch a signed record by its key
///
/// From this node or the network; only verified records are returned.
#[utoipa::path(
    get,
    path = "/api/dht/records/{key}",
    security((), ("bearer" = [])),
    params(("key" = String, Path, description = "the record's key: 40 hex characters, as `POST /api/dht/records` answered")),
    responses(
        (status = 200, description = "the record", body = DhtRecord),
        (status = 400, description = "BAD_ID", body = ErrorBody),
        (status = 404, description = "no record under that key", body = ErrorBody),
        (status = 503, description = "DHT_DISABLED, DHT_STOPPED, STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn get_record(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> Result<Json<DhtRecord>, ApiError> {
    let key = parse_id(&key, "the record key")?;
    match overlay(&state)?.get_record(key).await.map_err(dht_error)? {
        Some(record) => Ok(Json(DhtRecord::from(&record))),
        None => Err(ApiError::not_found(format!("no record under {key}"))),
    }
}

/// Publish a record named `name`, signed by this node
///
/// The answer carries the key, derived from (this node's id, name), so only this node can
/// publish there. A record is read back by its key: `GET /api/dht/records/{key}`.
#[utoipa::path(
    post,
    path = "/api/dht/records",
    security(("bearer" = [])),
    request_body = PublishRecord,
    responses(
        (status = 200, description = "stored: the key, how many of the K closest nodes accepted it, elapsed", body = Published),
        (status = 400, description = "BAD_NAME, VALUE_TOO_LARGE, BAD_TTL, BAD_RECORD", body = ErrorBody),
        (status = 503, description = "STORE_UNAVAILABLE: the store cannot take the record now; DHT_DISABLED, DHT_STOPPED", body = ErrorBody),
    )
)]
pub(super) async fn publish_record(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<PublishRecord>,
) -> Result<Json<Published>, ApiError> {
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
    Ok(Json(outcome.into()))
}

/// Add a contact by hand
///
/// It is asked for our neighbours and enters the routing table if it answers.
#[utoipa::path(
    post,
    path = "/api/dht/contacts",
    security(("bearer" = [])),
    request_body = AddContact,
    responses(
        (status = 200, description = "it answered and is in the table", body = ContactAdded),
        (status = 400, description = "BAD_CONTACT, SELF", body = ErrorBody),
        (status = 502, description = "CONTACT_UNREACHABLE: it did not answer over the DHT", body = ErrorBody),
        (status = 503, description = "DHT_DISABLED, DHT_STOPPED, STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn add_contact(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<AddContact>,
) -> Result<Json<ContactAdded>, ApiError> {
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
    Ok(Json(ContactAdded {
        added: request.contact,
        lookup: outcome.into(),
    }))
}

/// Take a contact out of the routing table
#[utoipa::path(
    delete,
    path = "/api/dht/contacts/{id}",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the contact's node id: 40 hex characters")),
    responses(
        (status = 200, description = "removed", body = ContactRemoved),
        (status = 400, description = "BAD_ID", body = ErrorBody),
        (status = 404, description = "not in the routing table", body = ErrorBody),
        (status = 503, description = "DHT_DISABLED, DHT_STOPPED", body = ErrorBody),
    )
)]
pub(super) async fn remove_contact(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ContactRemoved>, ApiError> {
    let id = parse_id(&id, "the contact's id")?;
    match overlay(&state)?
        .remove_contact(id)
        .await
        .map_err(dht_error)?
    {
        true => Ok(Json(ContactRemoved { removed: id })),
        false => Err(ApiError::not_found(format!(
            "{id} is not in the routing table"
        ))),
    }
}
