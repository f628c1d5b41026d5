//! `/api/docs/*`: CRDT documents — list, read (JSON, text, history, a past version), apply
//! an update, delete, access (policy and listed peers) and capability tokens;
//! `/api/capabilities/{id}` revokes.
//!
//! `{doc}` is the document name, percent-encoded where it holds `/` (`notes%2Fa`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pqnode_crdt::{DocError, DocName, DocStore};
use pqnode_crdt_ws::{parse_token_id, token_id_hex};
use pqnode_store::StoreError;

use super::dto::{
    AccessSet, Applied, DocDeleted, DocHistory, DocInfo, DocList, DocRemoved, DocText, DocUpdated,
    DocVersion, Document, ErrorBody, HistoryEntry, IssueToken, IssuedToken, Lagged, Revoked,
    SetAccess, TextQuery, listed_peers,
};
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

/// The `{doc}` path parameter, as the document describes it.
const DOC_NAME: &str = "Document name, percent-encoded (`team%2Fnotes` for `team/notes`); 1-200 \
                        bytes of A-Z a-z 0-9 . _ ~ : @ + - /";

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

/// CRDT documents: name, version, stored bytes, history kept
#[utoipa::path(
    get,
    path = "/api/docs",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "every document on this node", body = DocList),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<DocList>, ApiError> {
    let documents = docs(&state)?.list().await.map_err(doc_error)?;
    Ok(Json(DocList {
        documents: documents.into_iter().map(DocInfo::from).collect(),
    }))
}

/// A document's figures, access policy, listed peers and content as JSON
#[utoipa::path(
    get,
    path = "/api/docs/{doc}",
    security((), ("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME)),
    responses(
        (status = 200, description = "the document", body = Document),
        (status = 400, description = "BAD_DOCUMENT_NAME", body = ErrorBody),
        (status = 404, description = "no such document", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn get(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
) -> Result<Json<Document>, ApiError> {
    let crdt = crdt(&state)?;
    let name = name(&doc)?;
    let info = crdt.docs().info(&name).await.map_err(doc_error)?;
    let Some(info) = info else {
        return Err(ApiError::not_found(format!("no document named {doc}")));
    };
    let content = crdt.docs().json(&name).await.map_err(doc_error)?;
    Ok(Json(Document {
        info: info.into(),
        policy: crdt.access().policy(&doc).into(),
        peers: listed_peers(crdt.access().peers(&doc)),
        content,
    }))
}

/// One text root of a document, as plain text
#[utoipa::path(
    get,
    path = "/api/docs/{doc}/text",
    security((), ("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME), TextQuery),
    responses(
        (status = 200, description = "the text", body = DocText),
        (status = 400, description = "BAD_DOCUMENT_NAME", body = ErrorBody),
        (status = 404, description = "no such document, or no text under that root", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn text(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    Query(query): Query<TextQuery>,
) -> Result<Json<DocText>, ApiError> {
    let text = docs(&state)?
        .text(&name(&doc)?, &query.root)
        .await
        .map_err(doc_error)?;
    match text {
        Some(text) => Ok(Json(DocText {
            root: query.root,
            text,
        })),
        None => Err(ApiError::not_found(format!(
            "document {doc} has no text named {}",
            query.root
        ))),
    }
}

/// The versions kept, with their time and size
#[utoipa::path(
    get,
    path = "/api/docs/{doc}/history",
    security((), ("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME)),
    responses(
        (status = 200, description = "the update log kept", body = DocHistory),
        (status = 400, description = "BAD_DOCUMENT_NAME", body = ErrorBody),
        (status = 404, description = "no such document", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn history(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
) -> Result<Json<DocHistory>, ApiError> {
    let versions = docs(&state)?
        .history(&name(&doc)?)
        .await
        .map_err(doc_error)?;
    Ok(Json(DocHistory {
        versions: versions.into_iter().map(HistoryEntry::from).collect(),
    }))
}

/// The document's content as it was at a version
#[utoipa::path(
    get,
    path = "/api/docs/{doc}/versions/{version}",
    security((), ("bearer" = [])),
    params(
        ("doc" = String, Path, max_length = 200, description = DOC_NAME),
        ("version" = u64, Path, minimum = 0)
    ),
    responses(
        (status = 200, description = "the content at that version", body = DocVersion),
        (status = 400, description = "VERSION_AHEAD or a bad name", body = ErrorBody),
        (status = 404, description = "no such document", body = ErrorBody),
        (status = 410, description = "VERSION_COMPACTED: older than the history kept", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn version(
    State(state): State<ApiState>,
    Path((doc, version)): Path<(String, u64)>,
) -> Result<Json<DocVersion>, ApiError> {
    let at = docs(&state)?
        .at_version(&name(&doc)?, version)
        .await
        .map_err(doc_error)?;
    Ok(Json(DocVersion {
        version,
        content: at.json().map_err(doc_error)?,
    }))
}

/// Apply a Yjs update (v1, the raw bytes as the body)
///
/// Answered once it is on disk; live clients receive it.
#[utoipa::path(
    post,
    path = "/api/docs/{doc}/updates",
    security(("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME)),
    request_body(
        content = Vec<u8>,
        content_type = "application/octet-stream",
        description = "a Yjs update, v1 encoding, at most 4 MiB"
    ),
    responses(
        (status = 201, description = "committed: the document's version now", body = Applied),
        (status = 400, description = "BAD_UPDATE: not a Yjs update, nothing was applied; BAD_DOCUMENT_NAME", body = ErrorBody),
        (status = 413, description = "TOO_LARGE: the update or the document would exceed its cap", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn apply(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Applied>), ApiError> {
    let version = docs(&state)?
        .apply_update(&name(&doc)?, body)
        .await
        .map_err(doc_error)?;
    Ok((StatusCode::CREATED, Json(Applied { version })))
}

/// Delete a document and its history on this node
///
/// Replicas on other nodes keep theirs.
#[utoipa::path(
    delete,
    path = "/api/docs/{doc}",
    security(("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME)),
    responses(
        (status = 200, description = "deleted", body = DocDeleted),
        (status = 400, description = "BAD_DOCUMENT_NAME", body = ErrorBody),
        (status = 404, description = "no such document", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn delete(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
) -> Result<Json<DocDeleted>, ApiError> {
    let deleted = docs(&state)?
        .delete(&name(&doc)?)
        .await
        .map_err(doc_error)?;
    if !deleted {
        return Err(ApiError::not_found(format!("no document named {doc}")));
    }
    Ok(Json(DocDeleted { deleted: doc }))
}

/// Most peers listed for one document.
const MAX_LISTED_PEERS: usize = 1024;

/// Set a document's access policy, and optionally its listed peers
///
/// Sessions that lose their access close at once.
#[utoipa::path(
    put,
    path = "/api/docs/{doc}/access",
    security(("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME)),
    request_body = SetAccess,
    responses(
        (status = 200, description = "the access now", body = AccessSet),
        (status = 400, description = "BAD_DOCUMENT_NAME, TOO_MANY_PEERS, BAD_JSON", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn set_access(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    ApiJson(request): ApiJson<SetAccess>,
) -> Result<Json<AccessSet>, ApiError> {
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
        let peers = peers.into_iter().map(|(id, r)| (id, r.into())).collect();
        closed = access.set_peers(&doc, peers).await.map_err(store_error)?;
    }
    access
        .set_policy(&doc, request.policy.into())
        .await
        .map_err(store_error)?;
    Ok(Json(AccessSet {
        peers: listed_peers(access.peers(&doc)),
        document: doc,
        policy: request.policy,
        sessions_closed: closed,
    }))
}

/// Issue a capability token for `{doc}`
///
/// Give it to a client as `?token=` on `/sync/{doc}`.
#[utoipa::path(
    post,
    path = "/api/docs/{doc}/tokens",
    security(("bearer" = [])),
    params(("doc" = String, Path, max_length = 200, description = DOC_NAME)),
    request_body = IssueToken,
    responses(
        (status = 201, description = "the token", body = IssuedToken),
        (status = 400, description = "BAD_DOCUMENT_NAME, BAD_TTL", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn issue_token(
    State(state): State<ApiState>,
    Path(doc): Path<String>,
    ApiJson(request): ApiJson<IssueToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
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
        .issue(&doc, request.rights.into(), expires_ms)
        .await
        .map_err(|e| {
            ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER)
        })?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: token_id_hex(&capability.id),
            document: doc,
            rights: capability.rights.into(),
            expires_at_ms: capability.expires_ms,
            token,
        }),
    ))
}

/// Revoke a capability token
///
/// The sessions it opened on this node close at once (code 4403), and (for a token this
/// node issued) on the nodes that trust it within their poll interval.
#[utoipa::path(
    delete,
    path = "/api/capabilities/{id}",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the token's id: 32 hex characters")),
    responses(
        (status = 200, description = "revoked", body = Revoked),
        (status = 400, description = "BAD_TOKEN_ID", body = ErrorBody),
        (status = 503, description = "CRDT_DISABLED; STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn revoke(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let Some(token_id) = parse_token_id(id.as_bytes()) else {
        return Err(ApiError::bad_request(
            "BAD_TOKEN_ID",
            "a token id is 32 hex characters",
        ));
    };
    let (closed, published) = crdt(&state)?.revoke(token_id).await.map_err(|e| {
        ApiError::retry_later("STORE_UNAVAILABLE", e.to_string(), STORE_RETRY_AFTER)
    })?;
    Ok(Json(Revoked {
        revoked: id,
        sessions_closed: closed,
        published,
    }))
}

/// Server-sent events: every committed change to any document
///
/// One event per committed change: `updated` with `{name, version}` (`DocUpdated`),
/// `deleted` with `{name}` (`DocRemoved`), so an application can react to edits. A listener
/// too slow for the feed gets `lagged` with `{missed}` (`Lagged`) and should re-read
/// `/api/docs`.
#[utoipa::path(
    get,
    path = "/api/changes",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "an event stream (`updated`, `deleted`, `lagged`), each event's data one JSON object", body = String, content_type = "text/event-stream"),
        (status = 503, description = "CRDT_DISABLED", body = ErrorBody),
    )
)]
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

    fn event(kind: &'static str, data: &impl serde::Serialize) -> Event {
        Event::default()
            .event(kind)
            .json_data(data)
            .unwrap_or_else(|_| Event::default().comment("unserializable change"))
    }

    let receiver = docs(&state)?.changes();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(DocChange::Updated { name, version }) => event(
                "updated",
                &DocUpdated {
                    name: name.as_str().to_owned(),
                    version,
                },
            ),
            Ok(DocChange::Deleted { name }) => event(
                "deleted",
                &DocRemoved {
                    name: name.as_str().to_owned(),
                },
            ),
            Ok(_) => Event::default().comment("unknown change"),
            Err(RecvError::Lagged(missed)) => event("lagged", &Lagged { missed }),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
