//! Search over the node's text.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `/api/ai/search`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// The query text.
    pub q: String,
    /// Results wanted.
    #[serde(default = "default_k")]
    #[param(default = 10, minimum = 1)]
    pub k: usize,
}

fn default_k() -> usize {
    10
}

/// Best first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchResults {
    pub results: Vec<SearchHit>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchHit {
    /// `doc:<name>` for a CRDT document, `api:<id>` for text indexed through the API.
    pub doc_id: String,
    /// BM25 score, or the reciprocal-rank-fusion score when embeddings are on.
    pub score: f32,
    /// A short extract around the query's terms.
    pub snippet: String,
}

impl From<pqnode_search::Hit> for SearchHit {
    fn from(hit: pqnode_search::Hit) -> Self {
        let pqnode_search::Hit {
            doc_id,
            score,
            snippet,
        } = hit;
        Self {
            doc_id,
            score,
            snippet,
        }
    }
}

/// `POST /api/ai/index`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexText {
    /// Indexed as `api:<id>`, replacing what was there.
    pub id: String,
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Indexed {
    /// `api:<id>`.
    pub doc_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndexRemoved {
    /// `api:<id>`.
    pub removed: String,
}
