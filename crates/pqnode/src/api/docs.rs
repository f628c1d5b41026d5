//! `/api/docs/*`: CRDT documents — list, read (JSON, text, history, a past version), apply
//! an update, delete, access (policy and listed peers) and capability tokens;
//! `/api/capabilities/{id}` revokes.
//!
//! `{doc}` is the document name, percent-encoded where it holds `/` (`notes%2Fa`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pqnode_crdt::{DocError, DocName, DocStore};
use pqnode_crdt_ws::{Policy, Rights, parse_token_id, token_id_hex};
use pqnode_crypto::PeerId;
use pqnode_store::StoreError;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiState};
use crate::components::crdt::CrdtService;

/// Seconds a caller waits before retrying when the store could not take an update.
const STORE_RETRY_AFTER: u32 = 5;
/// Longest a capability token may live.
const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

fn crdt(state: &ApiState) -> Result<&CrdtService, ApiError> {
    state.node.crdt.as_deref().ok_or_else(|| {
        ApiError::unavailable("CRDT_DISABLED", "CRDT documents are off on this node")
    })
}

fn docs(state: &ApiState) -> Result<&DocStore, ApiError> {
    crdt(state).map(CrdtService::docs)
}

fn name(doc: &str) -> Result<DocName, ApiError> {
    DocName::new(doc).map_err(|e| ApiError::bad_request("BAD_DOCUMENT_NAME", e.to_string()))
}

fn doc_error(e: DocError) -> ApiError {
    let message = e.to_string();
    match e {
        DocError::NotFound { .. } => ApiError::not_found(message),
        DocError::UpdateTooLarge { .. } | DocError::DocumentTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", message)
        }
        DocError::VersionCompacted { .. } => {
            ApiError::new(StatusCode::GONE, "VERSION_COMPACTED", message)
        }
        e if e.is_caller_fault() => ApiError::bad_request("BAD_UPDATE", message),
        DocError::Store(_) | DocError::Stopped => {
            ApiError::retry_later("STORE_UNAVAILABLE", message, STORE_RETRY_AFTER)
        }
        _ => ApiError::internal(message),
    }
}

pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let documents = docs(&state)?.list().await.map_err(doc_error)?;
    Ok(Json(json!({ "documents": documents })))
}

pub(super) async fn get(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let crdt = crdt(&state)?;
    let name = name(&doc)?;
    let info = crdt.docs().info(&name).await.map_err(doc_error)?;
    let Some(info) = info else {
        return Err(ApiError::not_found(format!("no document named {doc}")));
    };
    let content = crdt.docs().json(&name).await.map_err(doc_error)?;
    Ok(Json(json!({
        "info": info,
        "policy": crdt.access().policy(&doc),
        "peers": crdt.access().peers(&doc),
        "content": content,
    })))
}

#[derive(Deserialize)]
pub(super) struct TextQuery {
    /// The root type to read as text (Yjs `doc.getText(root)`).
    root: String,
}

pub(super) async fn text(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    Query(query): Query<TextQuery>,
) -> Result<Json<Value>, ApiError> {
    let text = docs(&state)?
        .text(&name(&doc)?, &query.root)
        .await
        .map_err(doc_error)?;
    match text {
        Some(text) => Ok(Json(json!({ "root": query.root, "text": text }))),
        None => Err(ApiError::not_found(format!(
            "document {doc} has no text named {}",
            query.root
        ))),
    }
}

pub(super) async fn history(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = docs(&state)?
        .history(&name(&doc)?)
        .await
        .map_err(doc_error)?;
    Ok(Json(json!({ "versions": versions })))
}

pub(super) async fn version(
    State(state): State<ApiState>,
    Path((doc, version)): Path<(String, u64)>,
) -> Result<Json<Value>, ApiError> {
    let at = docs(&state)?
        .at_version(&name(&doc)?, version)
        .await
        .map_err(doc_error)?;
    Ok(Json(
        json!({ "version": version, "content": at.json().map_err(doc_error)? }),
    ))
}

/// Applies a Yjs update (v1, the raw bytes as the body); answers once it is on disk.
pub(super) async fn apply(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let version = docs(&state)?
        .apply_update(&name(&doc)?, body)
        .await
        .map_err(doc_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "version": version }))))
}

pub(super) async fn delete(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let deleted = docs(&state)?
        .delete(&name(&doc)?)
        .await
        .map_err(doc_error)?;
    if !deleted {
        return Err(ApiError::not_found(format!("no document named {doc}")));
    }
    Ok(Json(json!({ "deleted": doc })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetAccess {
    policy: Policy,
    /// The peers who may open the document when it is restricted, with their rights;
    /// replaces the list. Absent: the list stays as it is.
    peers: Option<BTreeMap<PeerId, Rights>>,
}

/// Most peers listed for one document.
const MAX_LISTED_PEERS: usize = 1024;

pub(super) async fn set_access(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    ApiJson(request): ApiJson<SetAccess>,
) -> Result<Json<Value>, ApiError> {
    name(&doc)?;
    let access = crdt(&state)?.access();
    let store_error = |e: StoreError| {
        ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER)
    };
    let mut closed = 0;
    if let Some(peers) = request.peers {
        if peers.len() > MAX_LISTED_PEERS {
            return Err(ApiError::bad_request(
                "TOO_MANY_PEERS",
                format!("at most {MAX_LISTED_PEERS} peers per document"),
            ));
        }
        closed = access.set_peers(&doc, peers).await.map_err(store_error)?;
    }
    access
        .set_policy(&doc, request.policy)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({
        "document": doc,
        "policy": request.policy,
        "peers": access.peers(&doc),
        "sessionsClosed": closed,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct IssueToken {
    rights: Rights,
    ttl_secs: u64,
}

/// Issues a capability token for `{doc}`: give it to a client as `?token=` on `/sync/{doc}`.
pub(super) async fn issue_token(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    ApiJson(request): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    name(&doc)?;
    let ttl = Duration::from_secs(request.ttl_secs);
    if ttl.is_zero() || ttl > MAX_TOKEN_TTL {
        return Err(ApiError::bad_request(
            "BAD_TTL",
            format!("ttlSecs must be between 1 and {}", MAX_TOKEN_TTL.as_secs()),
        ));
    }
    let expires_ms = pqnode_clock::unix_ms(std::time::SystemTime::now() + ttl);
    let (capability, token) = crdt(&state)?
        .access()
        .issue(&doc, request.rights, expires_ms)
        .await
        .map_err(|e| {
            ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER)
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": token_id_hex(&capability.id),
            "document": doc,
            "rights": capability.rights,
            "expiresAtMs": capability.expires_ms,
            "token": token,
        })),
    ))
}

/// Revokes a capability token; the sessions it opened on this node close at once, and (for
/// a token this node issued) on the nodes that trust it within their poll interval.
pub(super) async fn revoke(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(token_id) = parse_token_id(id.as_bytes()) else {
        return Err(ApiError::bad_request(
            "BAD_TOKEN_ID",
            "a token id is 32 hex characters",
        ));
    };
    let (closed, published) = crdt(&state)?.revoke(token_id).await.map_err(|e| {
        ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER)
    })?;
    Ok(Json(
        json!({ "revoked": id, "sessionsClosed": closed, "published": published }),
    ))
}

/// `GET /api/changes`: server-sent events, one per committed change to any document
/// (`updated` with `{name, version}`, `deleted` with `{name}`), so an application can react
/// to edits. A listener too slow for the feed gets `lagged` with `{missed}` and should
/// re-read `/api/docs`.
pub(super) async fn changes(
    State(state): State<ApiState>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use pqnode_crdt::DocChange;
    use tokio::sync::broadcast::error::RecvError;

    let receiver = docs(&state)?.changes();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(DocChange::Updated { name, version }) => Event::default()
                .event("updated")
                .data(json!({ "name": name, "version": version }).to_string()),
            Ok(DocChange::Deleted { name }) => Event::default()
                .event("deleted")
                .data(json!({ "name": name }).to_string()),
            Ok(_) => Event::default().comment("unknown change"),
            Err(RecvError::Lagged(missed)) => Event::default()
                .event("lagged")
                .data(json!({ "missed": missed }).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
