//! `/api/crypto/status`.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::ApiState;

/// Keys, algorithms, sizes and mode; never secret material
///
/// The body is the crypto component's own status (the `crypto` entry's stats in
/// `/api/health` too), described by [`CryptoStatus`](super::dto::CryptoStatus).
#[utoipa::path(
    get,
    path = "/api/crypto/status",
    responses((status = 200, description = "the crypto status", body = super::dto::CryptoStatus))
)]
pub(super) async fn status(State(state): State<ApiState>) -> Json<Value> {
    Json(state.node.crypto.status_json())
}
