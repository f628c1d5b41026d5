//! [`SearchIndex`]: the index on the node's store.
//!
//! Persistence: the source text of every document is kept in [`Table::Search`] under
//! `d<id>` (and a format version under `v`); the postings and vectors live in memory and are
//! rebuilt from the texts at open. A write is acknowledged only after the store committed it,
//! and is applied to memory right after, under one lock, so memory always matches the store.

use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use pqnode_store::{Store, Table};

use crate::analyze::Analyzer;
use crate::config::{Hit, SearchConfig};
use crate::embed::StaticModel;
use crate::limits::{check_id, check_query, check_text};
use crate::state::{Prepared, State, prepare};
use crate::status::{Mode, SearchStatus};
use crate::{SearchError, snippet};

const FORMAT_KEY: &[u8] = b"v";
const FORMAT: u8 = 1;
const DOC_PREFIX: u8 = b'd';
/// Documents read per store page at open.
const OPEN_PAGE: usize = 256;
/// Texts longer than this are analysed off the async runtime's threads.
const BLOCKING_TEXT: usize = 64 * 1024;
/// Most documents in one [`SearchIndex::index_many`].
pub const MAX_BATCH: usize = 1000;
/// Snippets are looked for in this much of a text (bytes).
const SNIPPET_SCAN: usize = 64 * 1024;

/// The search index. Cloning is cheap; clones share one index.
#[derive(Clone, Debug)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    analyzer: Analyzer,
    model: Option<StaticModel>,
    state: RwLock<State>,
    /// Serializes writes so the store and memory see them in the same order.
    writes: tokio::sync::Mutex<()>,
}

impl SearchIndex {
    /// Opens the index on `store`, loading the model if one is configured and rebuilding
    /// from the stored texts.
    pub async fn open(store: Store, config: SearchConfig) -> Result<SearchIndex, SearchError> {
        let model = match config.model_dir {
            Some(dir) => Some(blocking(move || StaticModel::load(&dir)).await??),
            #[cfg(feature = "bundled-model")]
            None if config.bundled_model => Some(blocking(StaticModel::bundled).await??),
            None => None,
        };
        // A store created before the search table existed has no such table: the first
        // write creates it, so write the format version when it is missing or unreadable.
        let format = match store.get(Table::Search, FORMAT_KEY).await {
            Ok(Some(v)) => Some(v),
            Ok(None) | Err(_) => {
                store.put(Table::Search, FORMAT_KEY, vec![FORMAT]).await?;
                store.get(Table::Search, FORMAT_KEY).await?
            }
        };
        if format.as_deref() != Some(&[FORMAT]) {
            let found = format.and_then(|v| v.first().copied()).unwrap_or(0);
            return Err(SearchError::UnsupportedFormat {
                found,
                supported: FORMAT,
            });
        }
        let index = SearchIndex {
            inner: Arc::new(Inner {
                store,
                analyzer: Analyzer {
                    stem: config.stemming,
                },
                model,
                state: RwLock::new(State::default()),
                writes: tokio::sync::Mutex::new(()),
            }),
        };
        let started = std::time::Instant::now();
        index.rebuild().await?;
        let status = index.status();
        tracing::info!(
            mode = status.mode.as_str(),
            model = status.model.as_deref().unwrap_or("-"),
            documents = status.documents,
            ms = started.elapsed().as_millis() as u64,
            "search index rebuilt"
        );
        Ok(index)
    }

    async fn rebuild(&self) -> Result<(), SearchError> {
        let inner = &self.inner;
        let mut before = vec![DOC_PREFIX + 1];
        loop {
            let page = inner
                .store
                .last_entries_before(Table::Search, &before, OPEN_PAGE)
                .await?;
            let docs: Vec<(String, String)> = page
                .iter()
                .take_while(|(key, _)| key.first() == Some(&DOC_PREFIX))
                .map(|(key, value)| {
                    let id = String::from_utf8_lossy(&key[1..]).into_owned();
                    match String::from_utf8(value.to_vec()) {
                        Ok(text) => Ok((id, text)),
                        Err(_) => Err(SearchError::CorruptEntry { id }),
                    }
                })
                .collect::<Result<_, _>>()?;
            let full = docs.len() == OPEN_PAGE;
            if let Some((last, _)) = page.get(docs.len().wrapping_sub(1)) {
                before = last.to_vec();
            }
            let this = self.clone();
            let prepared = blocking(move || this.prepare_all(docs)).await?;
            let mut state = inner.state.write().unwrap_or_else(PoisonError::into_inner);
            for (id, doc) in prepared {
                state.insert(&id, doc);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn prepare_all(&self, docs: Vec<(String, String)>) -> Vec<(String, Prepared)> {
        let model = self.inner.model.as_ref();
        docs.into_iter()
            .map(|(id, text)| {
                let doc = prepare(&self.inner.analyzer, model, &text);
                (id, doc)
            })
            .collect()
    }

    /// Indexes `text` as document `id`, replacing its previous text. Returns once the store
    /// has committed it; from then on searches see it. Unchanged text costs no write.
    pub async fn index(&self, id: &str, text: &str) -> Result<(), SearchError> {
        check_id(id)?;
        check_text(text)?;
        let (this, id, text) = (self.clone(), id.to_owned(), text.to_owned());
        // Spawned, so a caller that gives up cannot leave a committed write unapplied.
        spawned(async move {
            let inner = &this.inner;
            let doc = if text.len() > BLOCKING_TEXT {
                let (this2, text2) = (this.clone(), text.clone());
                blocking(move || prepare(&this2.inner.analyzer, this2.inner.model.as_ref(), &text2))
                    .await?
            } else {
                prepare(&inner.analyzer, inner.model.as_ref(), &text)
            };
            let _write = inner.writes.lock().await;
            let key = doc_key(&id);
            if this.read().holds(&id, doc.fingerprint)
                && inner.store.get(Table::Search, &key).await?.as_deref() == Some(text.as_bytes())
            {
                return Ok(());
            }
            inner
                .store
                .put(Table::Search, key, Bytes::from(text))
                .await?;
            this.write().insert(&id, doc);
            Ok(())
        })
        .await
    }

    /// Indexes many documents in one store transaction (all or none); a later duplicate id
    /// wins. At most [`MAX_BATCH`] documents.
    pub async fn index_many(&self, docs: Vec<(String, String)>) -> Result<(), SearchError> {
        if docs.len() > MAX_BATCH {
            return Err(SearchError::BatchTooLarge {
                len: docs.len(),
                max: MAX_BATCH,
            });
        }
        for (id, text) in &docs {
            check_id(id)?;
            check_text(text)?;
        }
        let this = self.clone();
        spawned(async move {
            let entries: Vec<(Vec<u8>, Bytes)> = docs
                .iter()
                .map(|(id, text)| (doc_key(id), Bytes::copy_from_slice(text.as_bytes())))
                .collect();
            let this2 = this.clone();
            let prepared = blocking(move || this2.prepare_all(docs)).await?;
            let _write = this.inner.writes.lock().await;
            this.inner.store.put_many(Table::Search, entries).await?;
            let mut state = this.write();
            for (id, doc) in prepared {
                state.insert(&id, doc);
            }
            Ok(())
        })
        .await
    }

    /// Removes document `id`; returns whether it was indexed. Acknowledged after the commit.
    pub async fn remove(&self, id: &str) -> Result<bool, SearchError> {
        check_id(id)?;
        let (this, id) = (self.clone(), id.to_owned());
        spawned(async move {
            let _write = this.inner.writes.lock().await;
            let stored = this.inner.store.delete(Table::Search, doc_key(&id)).await?;
            Ok(this.write().remove(&id) || stored)
        })
        .await
    }

    /// The `k` best documents for `query` (1 ≤ k ≤ [`MAX_K`](crate::MAX_K)), best first,
    /// equal scores in document id order. An empty query, or one of stopwords only, finds
    /// nothing in `bm25` mode.
    pub async fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>, SearchError> {
        check_query(query, k)?;
        let inner = &self.inner;
        let terms = inner.analyzer.terms(query);
        let vector = inner.model.as_ref().map(|m| m.encode(query));
        let (ranked, weights) = {
            let state = self.read();
            let ranked = state.rank(&terms, vector.as_deref(), k);
            let weights = terms.iter().map(|t| (t.clone(), state.idf(t))).collect();
            (ranked, weights)
        };
        let mut hits = Vec::with_capacity(ranked.len());
        for (doc_id, score) in ranked {
            // Removed since it was ranked: leave it out.
            let Some(text) = inner.store.get(Table::Search, doc_key(&doc_id)).await? else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            let scan = floor_char_boundary(&text, SNIPPET_SCAN);
            let snippet = snippet::snippet(&inner.analyzer, &text[..scan], &weights);
            hits.push(Hit {
                doc_id,
                score,
                snippet,
            });
        }
        Ok(hits)
    }

    /// Mode, model, dimensions and counts, as observed now.
    pub fn status(&self) -> SearchStatus {
        let state = self.read();
        let model = self.inner.model.as_ref();
        SearchStatus {
            mode: if model.is_some() {
                Mode::Hybrid
            } else {
                Mode::Bm25
            },
            model: model.map(|m| m.name().to_owned()),
            dims: model.map(StaticModel::dims),
            documents: state.len(),
            terms: state.terms(),
        }
    }

    /// Every indexed document id, sorted: to reconcile with the documents the node holds
    /// at start-up (remove ids whose document is gone).
    pub fn ids(&self) -> Vec<String> {
        self.read().ids()
    }

    /// Documents in the index.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the index holds no document.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn doc_key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(DOC_PREFIX);
    key.extend_from_slice(id.as_bytes());
    key
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SearchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(SearchError::Task)
}

async fn spawned<T: Send + 'static>(
    f: impl Future<Output = Result<T, SearchError>> + Send + 'static,
) -> Result<T, SearchError> {
    tokio::spawn(f).await.map_err(SearchError::Task)?
}
