//! The crate's error types.

use std::path::PathBuf;

use pqnode_store::StoreError;

/// Why an index, search or open failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// A document id that is empty.
    #[error("the document id is empty")]
    EmptyId,
    /// A document id longer than [`MAX_ID_BYTES`](crate::MAX_ID_BYTES).
    #[error("the document id is {len} bytes; the limit is {max}")]
    IdTooLong { len: usize, max: usize },
    /// A document id holding a control character.
    #[error("the document id contains a control character")]
    InvalidId,
    /// A text longer than [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES).
    #[error("the text is {len} bytes; the limit is {max}")]
    TextTooLarge { len: usize, max: usize },
    /// A query longer than [`MAX_QUERY_BYTES`](crate::MAX_QUERY_BYTES).
    #[error("the query is {len} bytes; the limit is {max}")]
    QueryTooLong { len: usize, max: usize },
    /// More documents in one batch than [`MAX_BATCH`](crate::MAX_BATCH).
    #[error("{len} documents in one batch; the limit is {max}")]
    BatchTooLarge { len: usize, max: usize },
    /// `k` is zero or above [`MAX_K`](crate::MAX_K).
    #[error("k must be between 1 and {max}, got {k}")]
    InvalidK { k: usize, max: usize },
    /// The store refused or failed the read or write; nothing was acknowledged.
    #[error("search store: {0}")]
    Store(#[from] StoreError),
    /// The store holds an index written by a newer or unknown format.
    #[error("the search table has format version {found}; this build reads {supported}")]
    UnsupportedFormat { found: u8, supported: u8 },
    /// A stored entry that cannot be read (not UTF-8): the store is damaged.
    #[error("the stored text of document {id:?} is not valid UTF-8")]
    CorruptEntry { id: String },
    /// The configured embedding model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A background task of the index panicked or was cancelled.
    #[error("a search task failed: {0}")]
    Task(String),
}

/// Why an embedding model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A model file is missing or unreadable.
    #[error("{}: cannot read the model file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A model file is larger than the loader accepts.
    #[error("{}: {len} bytes exceeds the {max}-byte limit for this file", path.display())]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    /// A file is not what a model2vec folder holds (bad JSON, bad safetensors, shapes that
    /// do not agree).
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A tokenizer pipeline this loader does not implement (it implements BERT-style
    /// WordPiece only).
    #[error("{}: unsupported tokenizer: {what}", path.display())]
    UnsupportedTokenizer { path: PathBuf, what: String },
}
