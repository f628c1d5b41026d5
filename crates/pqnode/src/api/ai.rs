//! `/api/ai/*`: search over the node's text, and text indexed by hand.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use pqnode_search::{SearchError, SearchIndex};

use super::dto::{
    ErrorBody, IndexRemoved, IndexText, Indexed, SearchHit, SearchQuery, SearchResults,
};
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

/// Search the node's documents and indexed text
///
/// Best first. `docId` is `doc:<name>` for a CRDT document, `api:<id>` for text indexed
/// through the API.
#[utoipa::path(
    get,
    path = "/api/ai/search",
    security((), ("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "the results, best first", body = SearchResults),
        (status = 400, description = "BAD_REQUEST: the query is too long or k is out of range", body = ErrorBody),
        (status = 503, description = "AI_DISABLED, SEARCH_UNAVAILABLE, STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn search(
    State(state): State<ApiState>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let results = index(&state)?
        .search(&query.q, query.k)
        .await
        .map_err(search_error)?;
    Ok(Json(SearchResults {
        results: results.into_iter().map(SearchHit::from).collect(),
    }))
}

/// Index a text as `api:<id>`, replacing what was there
///
/// Answered once it is on disk.
#[utoipa::path(
    post,
    path = "/api/ai/index",
    security(("bearer" = [])),
    request_body = IndexText,
    responses(
        (status = 201, description = "indexed", body = Indexed),
        (status = 400, description = "BAD_REQUEST: a bad id", body = ErrorBody),
        (status = 413, description = "TOO_LARGE: the text is over the index's cap", body = ErrorBody),
        (status = 503, description = "AI_DISABLED, SEARCH_UNAVAILABLE, STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn index_text(
    State(state): State<ApiState>,
    ApiJson(request): ApiJson<IndexText>,
) -> Result<(StatusCode, Json<Indexed>), ApiError> {
    let id = format!("api:{}", request.id);
    index(&state)?
        .index(&id, &request.text)
        .await
        .map_err(search_error)?;
    Ok((StatusCode::CREATED, Json(Indexed { doc_id: id })))
}

/// Drop a text indexed as `api:<id>`
#[utoipa::path(
    delete,
    path = "/api/ai/index/{id}",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the id it was indexed under, without `api:`")),
    responses(
        (status = 200, description = "removed", body = IndexRemoved),
        (status = 404, description = "nothing is indexed under that id", body = ErrorBody),
        (status = 503, description = "AI_DISABLED, SEARCH_UNAVAILABLE, STORE_UNAVAILABLE", body = ErrorBody),
    )
)]
pub(super) async fn remove_text(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<IndexRemoved>, ApiError> {
    let id = format!("api:{id}");
    match index(&state)?.remove(&id).await.map_err(search_error)? {
        true => Ok(Json(IndexRemoved { removed: id })),
        false => Err(ApiError::not_found(format!("nothing is indexed as {id}"))),
    }
}
