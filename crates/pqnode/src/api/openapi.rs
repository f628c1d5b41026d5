//! `/api/openapi.json`: the API description, kept in `openapi.json` beside
//! this file. A test checks that every documented path is routed and every
//! routed path is documented.

use axum::http::header;
use axum::response::IntoResponse;

pub(super) const OPENAPI_JSON: &str = include_str!("openapi.json");

pub(super) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
