//! How to open the index ([`SearchConfig`]) and what a search returns ([`Hit`]).

use std::path::PathBuf;

use serde::Serialize;

/// How to open the index.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SearchConfig {
    /// A model2vec-format folder; `None` for BM25 alone (or the bundled model, below).
    pub model_dir: Option<PathBuf>,
    /// With no `model_dir`, use the model compiled into the program
    /// ([`StaticModel::bundled`](crate::StaticModel::bundled)). Default: off.
    #[cfg(feature = "bundled-model")]
    pub bundled_model: bool,
    /// Plural stemming (see `benches/search.rs` for what it changes). Default: on.
    pub stemming: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            model_dir: None,
            #[cfg(feature = "bundled-model")]
            bundled_model: false,
            stemming: true,
        }
    }
}

impl SearchConfig {
    /// Sets [`SearchConfig::model_dir`]: the embedding model to load, or `None` for none.
    pub fn with_model_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.model_dir = dir;
        self
    }

    /// See [`SearchConfig::bundled_model`].
    #[cfg(feature = "bundled-model")]
    pub fn with_bundled_model(mut self, on: bool) -> Self {
        self.bundled_model = on;
        self
    }

    /// Sets [`SearchConfig::stemming`]; it applies to indexing and queries alike, and the
    /// index is rebuilt with it at every open, so it can change between starts.
    pub fn with_stemming(mut self, on: bool) -> Self {
        self.stemming = on;
        self
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// The document, by the id it was indexed under.
    pub doc_id: String,
    /// BM25 score in `bm25` mode; reciprocal-rank-fusion score in `hybrid` mode.
    pub score: f32,
    /// A short extract of the document around the query's terms (its start when none of
    /// them occurs, as in a match by meaning only).
    pub snippet: String,
}
