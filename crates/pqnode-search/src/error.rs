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
    IdTooLong {
        /// The id's length in bytes.
        len: usize,
        /// The most this build accepts.
        max: usize,
    },
    /// A document id holding a control character.
    #[error("the document id contains a control character")]
    InvalidId,
    /// A text longer than [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES).
    #[error("the text is {len} bytes; the limit is {max}")]
    TextTooLarge {
        /// The text's length in bytes.
        len: usize,
        /// The most this build accepts.
        max: usize,
    },
    /// A query longer than [`MAX_QUERY_BYTES`](crate::MAX_QUERY_BYTES).
    #[error("the query is {len} bytes; the limit is {max}")]
    QueryTooLong {
        /// The query's length in bytes.
        len: usize,
        /// The most this build accepts.
        max: usize,
    },
    /// More documents in one batch than [`MAX_BATCH`](crate::MAX_BATCH).
    #[error("{len} documents in one batch; the limit is {max}")]
    BatchTooLarge {
        /// Documents in the batch.
        len: usize,
        /// The most one batch may hold.
        max: usize,
    },
    /// `k` is zero or above [`MAX_K`](crate::MAX_K).
    #[error("k must be between 1 and {max}, got {k}")]
    InvalidK {
        /// The `k` asked for.
        k: usize,
        /// The most results one search returns.
        max: usize,
    },
    /// The store refused or failed the read or write; nothing was acknowledged.
    #[error("search store: {0}")]
    Store(#[from] StoreError),
    /// The store holds an index written by a newer or unknown format.
    #[error("the search table has format version {found}; this build reads {supported}")]
    UnsupportedFormat {
        /// The version the table was written with.
        found: u8,
        /// The version this build reads and writes.
        supported: u8,
    },
    /// A stored entry that cannot be read (not UTF-8): the store is damaged.
    #[error("the stored text of document {id:?} is not valid UTF-8")]
    CorruptEntry {
        /// The document whose stored text is unreadable.
        id: String,
    },
    /// The configured embedding model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A background task of the index panicked or was cancelled (the runtime shutting
    /// down): the write or search did not happen.
    #[error("a search task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// Why an embedding model folder could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A model file is missing or unreadable.
    #[error("{}: cannot read the model file: {source}", path.display())]
    Io {
        /// The file that could not be read.
        path: PathBuf,
        /// What reading it failed with.
        #[source]
        source: std::io::Error,
    },
    /// A model file is larger than the loader accepts.
    #[error("{}: {len} bytes exceeds the {max}-byte limit for this file", path.display())]
    TooLarge {
        /// The oversized file.
        path: PathBuf,
        /// Its size in bytes.
        len: u64,
        /// The most the loader reads of a file of its kind.
        max: u64,
    },
    /// A file is not what a model2vec folder holds (bad JSON, bad safetensors, shapes that
    /// do not agree).
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file that is not what it should be.
        path: PathBuf,
        /// What is wrong with it, for the operator.
        reason: String,
    },
    /// A tokenizer pipeline this loader does not implement (it implements BERT-style
    /// WordPiece only).
    #[error("{}: unsupported tokenizer: {what}", path.display())]
    UnsupportedTokenizer {
        /// The tokenizer file (`tokenizer.json`).
        path: PathBuf,
        /// The part of its pipeline this loader lacks.
        what: String,
    },
}
