//! The JSON error body every failing route answers with.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error either HTTP port sends: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code for programs, a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `SCREAMING_SNAKE_CASE`, stable across versions.
    #[schema(examples("NOT_FOUND"))]
    pub code: String,
    pub message: String,
}
