//! The node's "AI engine": local search over the text the node holds (CRDT documents, and
//! anything indexed through the API), with nothing downloaded at run time.
//!
//! What it is for. [`SearchIndex`] keeps a BM25 index, always on, updated one document at a
//! time ([`SearchIndex::index`] replaces a document's text, [`SearchIndex::remove`] drops it)
//! and answers [`SearchIndex::search`] with the best `k` documents and a snippet of each.
//! When a model is configured (a model folder, or the bundled one) it also embeds every
//! document with a static (model2vec-format) embedding model and fuses the BM25 and cosine
//! rankings by reciprocal rank: "semantic search" in that sense and no other.
//! [`SearchIndex::status`] reports the mode, model, dimensions and document count for
//! `/api/health`.
//!
//! Persistence. The source texts live in the store's `search` table and every write is
//! acknowledged only after its commit; postings and vectors are rebuilt in memory at open
//! (0.95 s for 10 000 generated documents, 7.3 MB, in a release build on a shared 2-core
//! machine; `benches/search.rs`).
//! Keeping texts rather than postings makes writes one key each, gives snippets their text,
//! and lets a new tokenizer or model take effect at the next start with no migration.
//!
//! What it is not. Not a language model, a question answerer or a chat engine; not a
//! general search server (no fields, filters, phrase queries or fuzzy matching); not
//! distributed (each node indexes what it holds).
//!
//! The model. `model/minilm-l6-static/` is a 128-dimension float16 static model (8.0 MB)
//! distilled for this crate from sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) by
//! `tools/distil/distil.py`; its `NOTICE` says how and under which licences. Point
//! [`SearchConfig::model_dir`] at that folder (or any model2vec-format folder with a
//! WordPiece tokenizer), or build with the `bundled-model` feature and
//! `SearchConfig::with_bundled_model` to compile it in. With neither, BM25 works alone.
//!
//! Quality, measured only on a small labelled set written for this project (`eval/`: 47
//! documents; 28 development queries, 40 held-out ones written before any model was run on
//! them), recall@3 / MRR from `benches/search.rs`: BM25 0.946 / 0.911 (dev), 0.838 / 0.783
//! (held-out); the model's embeddings alone 0.982 / 1.000, 0.900 / 0.880; hybrid (reciprocal
//! rank fusion, k = 60, equal weights) 0.982 / 0.964, 0.900 / 0.859. One query is 2.5 to 3.6
//! points of recall: these figures say hybrid and the embeddings beat BM25 on short topical
//! documents, not how they rank a large corpus of similar texts.
//!
//! ```no_run
//! # async fn demo(store: pqnode_store::Store) -> Result<(), pqnode_search::SearchError> {
//! use pqnode_search::{SearchConfig, SearchIndex};
//!
//! let index = SearchIndex::open(store, SearchConfig::default()).await?;
//! index.index("notes", "Sourdough needs a lively starter and a long, cool rise.").await?;
//! for hit in index.search("sourdough starter", 10).await? {
//!     println!("{} {:.3} {}", hit.doc_id, hit.score, hit.snippet);
//! }
//! index.remove("notes").await?;
//! println!("{:?}", index.status().health());
//! # Ok(()) }
//! ```

mod analyze;
mod bm25;
mod config;
mod embed;
mod error;
pub mod eval;
mod index;
mod limits;
mod snippet;
mod state;
mod status;

pub use config::{Hit, SearchConfig};
pub use embed::{StaticModel, write_safetensors_f32};
pub use error::{ModelError, SearchError};
pub use index::{MAX_BATCH, SearchIndex};
pub use limits::{MAX_ID_BYTES, MAX_K, MAX_QUERY_BYTES, MAX_TEXT_BYTES};
pub use status::{Mode, SearchStatus};
