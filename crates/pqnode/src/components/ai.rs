//! Start-up step 7: the AI engine — search over the node's text (`pqnode-search`): BM25
//! always, fused with static embeddings from the model compiled into the binary, or from the
//! folder `ai.model_dir` names.
//!
//! Ids in the index say where a text came from: `doc:<name>` for CRDT documents (kept in step
//! with every committed change), `api:<id>` for text indexed through `POST /api/ai/index`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use pqnode_crdt::{DocChange, DocName, DocStore};
use pqnode_health::Health;
use pqnode_search::{SearchConfig, SearchIndex};
use pqnode_store::Store;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::{Component, StatsFuture};
use crate::config::Config;

pub(crate) struct AiService {
    /// The index, or why it could not be opened (then `ai` fails in `/api/health`).
    index: Result<SearchIndex, String>,
}

impl AiService {
    /// Opens the index. A failure does not stop the node: `ai` reports it as failing.
    pub(crate) async fn start(config: &Config, store: Store) -> anyhow::Result<Arc<Self>> {
        let settings = SearchConfig::default()
            .with_model_dir(config.ai.model_dir.clone())
            .with_bundled_model(config.ai.bundled_model);
        let index = SearchIndex::open(store, settings).await.map_err(|e| {
            error!(error = %e, "the search index cannot be opened; search is unavailable");
            e.to_string()
        });
        Ok(Arc::new(Self { index }))
    }

    pub(crate) fn index(&self) -> Result<&SearchIndex, &str> {
        self.index.as_ref().map_err(String::as_str)
    }

    /// Keeps the index in step with the CRDT documents until `stop`: everything once at
    /// start (stale entries dropped), then each document a moment after it last changed
    /// (every keystroke is an update: re-reading the text on each would waste the CPU).
    pub(crate) async fn follow_documents(self: Arc<Self>, docs: DocStore, stop: CancellationToken) {
        let Ok(index) = self.index() else { return };
        let mut changes = docs.changes();
        if let Err(e) = reconcile(index, &docs).await {
            warn!(error = %e, "indexing the stored documents failed");
        }
        // When each changed document is indexed, and when its first unindexed change came.
        let mut due: HashMap<DocName, (tokio::time::Instant, tokio::time::Instant)> =
            HashMap::new();
        loop {
            let next = due.values().map(|(at, _)| *at).min();
            tokio::select! {
                () = stop.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(DocChange::Updated { name, .. }) => {
                        // A moment after the last change, but never later than MAX_INDEX_DELAY
                        // after the first: a document edited without pause is still indexed.
                        let now = tokio::time::Instant::now();
                        let first = due.get(&name).map_or(now, |(_, first)| *first);
                        due.insert(name, ((now + INDEX_DELAY).min(first + MAX_INDEX_DELAY), first));
                    }
                    Ok(DocChange::Deleted { name }) => {
                        due.remove(&name);
                        if let Err(e) = index.remove(&doc_id(&name)).await {
                            warn!(doc = %name, error = %e, "cannot drop a deleted document from the index");
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        if let Err(e) = reconcile(index, &docs).await {
                            warn!(error = %e, "re-indexing after a burst of changes failed");
                        }
                    }
                    Err(RecvError::Closed) => return,
                },
                () = sleep_until(next) => {
                    let now = tokio::time::Instant::now();
                    let ready: Vec<DocName> =
                        due.iter().filter(|(_, (at, _))| *at <= now).map(|(n, _)| n.clone()).collect();
                    for name in ready {
                        due.remove(&name);
                        if let Err(e) = index_document(index, &docs, &name).await {
                            warn!(doc = %name, error = %e, "cannot index a document");
                        }
                    }
                }
            }
        }
    }
}

/// How long after a document's last change its text is indexed.
const INDEX_DELAY: Duration = Duration::from_millis(300);
/// The longest a changed document waits to be indexed while it keeps changing.
const MAX_INDEX_DELAY: Duration = Duration::from_secs(2);

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn doc_id(name: &DocName) -> String {
    format!("doc:{name}")
}

/// Indexes every stored document (unchanged text costs nothing) and drops entries of
/// documents that are gone.
async fn reconcile(index: &SearchIndex, docs: &DocStore) -> anyhow::Result<()> {
    let names: Vec<DocName> = docs.list().await?.into_iter().map(|d| d.name).collect();
    let ids: HashSet<String> = names.iter().map(doc_id).collect();
    for name in &names {
        index_document(index, docs, name).await?;
    }
    for id in index.ids() {
        if id.starts_with("doc:") && !ids.contains(&id) {
            index.remove(&id).await?;
        }
    }
    Ok(())
}

async fn index_document(
    index: &SearchIndex,
    docs: &DocStore,
    name: &DocName,
) -> anyhow::Result<()> {
    let content = match docs.json(name).await {
        Ok(content) => content,
        Err(pqnode_crdt::DocError::NotFound { .. }) => {
            index.remove(&doc_id(name)).await?;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let mut text = String::new();
    collect_text(&content, &mut text);
    // The index caps a text's size; a huge document is indexed by its beginning.
    truncate_at_char(&mut text, pqnode_search::MAX_TEXT_BYTES);
    index.index(&doc_id(name), &text).await?;
    Ok(())
}

/// Every string in a document's JSON view (its texts, map values, array items), one per line.
fn collect_text(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

fn truncate_at_char(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

impl Component for AiService {
    fn health(&self) -> Health {
        match &self.index {
            Ok(index) => index.status().health(),
            Err(e) => Health::fail(format!("the search index cannot be opened: {e}")),
        }
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async {
            match &self.index {
                Ok(index) => serde_json::to_value(index.status()).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e }),
            }
        })
    }
}
