//! What the binary shows in `/api/health` and `/api/ai/...`: mode, model, dimensions and
//! documents indexed, all observed values.

use pqnode_health::Health;
use serde::Serialize;

/// How the index ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 alone: no model configured.
    Bm25,
    /// BM25 and static embeddings, fused by reciprocal rank.
    Hybrid,
}

impl Mode {
    /// `"bm25"` or `"hybrid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bm25 => "bm25",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// A snapshot of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchStatus {
    /// BM25 alone or hybrid: whether a model was loaded.
    pub mode: Mode,
    /// The model folder's name, in hybrid mode.
    pub model: Option<String>,
    /// The model's vector length, in hybrid mode.
    pub dims: Option<usize>,
    /// Documents in the index.
    pub documents: usize,
    /// Distinct terms in the BM25 index.
    pub terms: usize,
}

impl SearchStatus {
    /// `pass` with a model, `warn` with BM25 only. (An index that cannot be opened is the
    /// caller's `Health::fail` with the open error.)
    pub fn health(&self) -> Health {
        match self.mode {
            Mode::Hybrid => Health::pass(),
            Mode::Bm25 => Health::warn("BM25 only: no embedding model is configured"),
        }
    }
}
