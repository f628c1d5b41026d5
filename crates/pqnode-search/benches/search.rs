//! Quality on the labelled set and speed at 10 000 documents.
//!
//! `cargo bench -p pqnode-search` prints recall@3 and MRR for BM25 (with and without plural
//! stemming), and, when `PQNODE_SEARCH_MODEL` names a model2vec-format folder, for the
//! embeddings alone and for hybrid; then indexing throughput, open (rebuild) time and query
//! latency p50 / p99 at 10 000 generated documents. `PQNODE_SEARCH_DOCS` changes the count.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pqnode_search::eval::{LabelledSet, score, synthetic};
use pqnode_search::{SearchConfig, SearchIndex, StaticModel};
use pqnode_store::Store;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let model = std::env::var_os("PQNODE_SEARCH_MODEL").map(PathBuf::from);
    let set = LabelledSet::load();
    println!(
        "labelled set: {} documents, {} queries (eval/labelled.json)",
        set.documents.len(),
        set.queries.len()
    );
    for (label, config) in [
        ("bm25, plural stemming", SearchConfig::default()),
        (
            "bm25, no stemming",
            SearchConfig::default().with_stemming(false),
        ),
    ] {
        quality(label, &set, config).await;
    }
    match &model {
        Some(dir) => {
            embeddings_only(&set, dir);
            quality(
                "hybrid (bm25 + embeddings, RRF)",
                &set,
                SearchConfig::default().with_model_dir(Some(dir.clone())),
            )
            .await;
        }
        None => println!(
            "embeddings / hybrid: not measured (set PQNODE_SEARCH_MODEL to a model2vec folder)"
        ),
    }

    let count: usize = std::env::var("PQNODE_SEARCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    scale(count, None).await;
    if let Some(dir) = model {
        scale(count, Some(dir)).await;
    }
}

async fn quality(label: &str, set: &LabelledSet, config: SearchConfig) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.redb")).await.unwrap();
    let index = SearchIndex::open(store, config).await.unwrap();
    let docs = set
        .documents
        .iter()
        .map(|d| (d.id.clone(), d.text.clone()))
        .collect();
    index.index_many(docs).await.unwrap();
    let mut rankings = Vec::new();
    for q in &set.queries {
        let hits = index.search(&q.query, 10).await.unwrap();
        rankings.push(hits.into_iter().map(|h| h.doc_id).collect());
    }
    let s = score(&set.queries, &rankings, 3);
    println!(
        "{label:<36} recall@3 {:.3}  MRR {:.3}",
        s.recall_at_k, s.mrr
    );
}

fn embeddings_only(set: &LabelledSet, dir: &std::path::Path) {
    let model = StaticModel::load(dir).unwrap();
    let vectors: Vec<Vec<f32>> = set
        .documents
        .iter()
        .map(|d| model.encode(&d.text))
        .collect();
    let rankings: Vec<Vec<String>> = set
        .queries
        .iter()
        .map(|q| {
            let v = model.encode(&q.query);
            let mut scored: Vec<(f32, &str)> = vectors
                .iter()
                .zip(&set.documents)
                .map(|(d, doc)| (d.iter().zip(&v).map(|(a, b)| a * b).sum(), doc.id.as_str()))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
            scored
                .into_iter()
                .take(10)
                .map(|(_, id)| id.to_owned())
                .collect()
        })
        .collect();
    let s = score(&set.queries, &rankings, 3);
    println!(
        "{:<36} recall@3 {:.3}  MRR {:.3}  (model {})",
        "embeddings alone (cosine)",
        s.recall_at_k,
        s.mrr,
        model.name()
    );
}

async fn scale(count: usize, model: Option<PathBuf>) {
    let mode = if model.is_some() { "hybrid" } else { "bm25" };
    let (docs, queries) = synthetic(count, 1000, 42);
    let bytes: usize = docs.iter().map(|d| d.1.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let config = SearchConfig::default().with_model_dir(model);
    let store = Store::open(&path).await.unwrap();
    let index = SearchIndex::open(store.clone(), config.clone())
        .await
        .unwrap();
    let started = Instant::now();
    for chunk in docs.chunks(1000) {
        index.index_many(chunk.to_vec()).await.unwrap();
    }
    let batch = started.elapsed();
    let started = Instant::now();
    for (id, text) in docs.iter().take(200) {
        index.index(id, &format!("{text} edited")).await.unwrap();
    }
    let single = started.elapsed() / 200;
    drop(index);
    store.close().await.unwrap();

    let store = Store::open(&path).await.unwrap();
    let started = Instant::now();
    let index = SearchIndex::open(store, config).await.unwrap();
    let open = started.elapsed();
    assert_eq!(index.len(), count);

    let mut latencies: Vec<Duration> = Vec::with_capacity(queries.len());
    for q in &queries {
        let started = Instant::now();
        let hits = index.search(q, 10).await.unwrap();
        latencies.push(started.elapsed());
        assert!(!hits.is_empty(), "query {q:?} found nothing");
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{mode}: {count} docs ({:.1} MB): index_many {:.2} s; index one (durable commit) {:.2} ms; open/rebuild {:.0} ms; {} terms",
        bytes as f64 / 1e6,
        batch.as_secs_f64(),
        single.as_secs_f64() * 1e3,
        open.as_secs_f64() * 1e3,
        index.status().terms
    );
    println!(
        "{mode}: query k=10 with snippets, {} queries: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    );
}
