//! `/api/ai/*`: search over the node's text, and text indexed by hand.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pqnode_search::{SearchError, SearchIndex};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiJson, ApiState};

const STORE_RETRY_AFTER: u32 = 5;

fn index(state: &ApiState) -> Result<&SearchIndex, ApiError> {
    let ai =
        state.node.ai.as_deref().ok_or_else(|| {
            ApiError::unavailable("AI_DISABLED", "the AI engine is off on this node")
        })?;
    ai.index().map_err(|e| {
        ApiError::unavailable(
            "SEARCH_UNAVAILABLE",
            format!("the search index cannot be opened: {e}"),
        )
    })
}

fn search_error(e: SearchError) -> ApiError {
    let message = e.to_string();
    match e {
        SearchError::TextTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", message)
        }
        SearchError::Store(_) | SearchError::Task(_) => {
            ApiError::retry_later("STORE_UNAVAILABLE", message, STORE_RETRY_AFTER)
        }
        SearchError::EmptyId
        | SearchError::IdTooLong { .. }
        | SearchError::InvalidId
        | SearchError::QueryTooLong { .. }
        | SearchError::InvalidK { .. }
        | SearchError::BatchTooLarge { .. } => ApiError::bad_request("BAD_REQUEST", message),
        _ => ApiError::internal(message),
    }
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    q: String,
    #[serde(default = "default_k")]
    k: usize,
}

fn default_k() -> usize {
    10
}

/// `{"results": [{docId, score, snippet}, ...]}`, best first. `docId` is `doc:<name>` for a
/// CRDT document, `api:<id>` for text indexed through the API.
pub(super) async fn search(
    State(state): State<ApiState>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let results = index(&state)?
        .search(&query.q, query.k)
        .await
        .map_err(search_error)?;
    Ok(Json(json!({ "results": results })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IndexText {
    id: String,
    text: String,
}

/// Indexes `text` under `api:<id>` (replacing what was there); answered once on disk.
pub(super) async fn index_text(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<IndexText>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = format!("api:{}", request.id);
    index(&state)?
        .index(&id, &request.text)
        .await
        .map_err(search_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "docId": id }))))
}

pub(super) async fn remove_text(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = format!("api:{id}");
    match index(&state)?.remove(&id).await.map_err(search_error)? {
        true => Ok(Json(json!({ "removed": id }))),
        false => Err(ApiError::not_found(format!("nothing is indexed as {id}"))),
    }
}
