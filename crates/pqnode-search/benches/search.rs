//! Quality on the labelled set and speed at 10 000 documents.
//!
//! `cargo bench -p pqnode-search` prints recall@3 and MRR on the labelled set's development
//! and held-out splits for BM25 (with and without plural stemming), the embeddings alone and
//! hybrid (BM25 + embeddings fused by reciprocal rank), with the model shipped in `model/`;
//! then, at 10 000 generated documents, indexing throughput, open (rebuild) time and query
//! latency p50 / p99 for BM25 and for hybrid, and what a hybrid query adds: embedding the
//! query and scanning every document vector.
//!
//! `PQNODE_SEARCH_MODEL` names another model2vec-format folder (`none`: BM25 only);
//! `PQNODE_SEARCH_DOCS` changes the document count (`0`: quality only).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pqnode_search::eval::{
    LabelledQuery, LabelledSet, SHIPPED_MODEL_DIR, Scores, score, synthetic,
};
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
    let model = match std::env::var_os("PQNODE_SEARCH_MODEL") {
        Some(v) if v == "none" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => Some(PathBuf::from(SHIPPED_MODEL_DIR)),
    };
    let set = LabelledSet::load();
    println!(
        "labelled set: {} documents; {} development queries, {} held-out queries (eval/labelled.json)",
        set.documents.len(),
        set.queries.len(),
        set.test_queries.len()
    );
    println!(
        "{:<38} {:>8} {:>7} {:>8} {:>7}",
        "", "dev r@3", "MRR", "test r@3", "MRR"
    );
    for (label, config) in [
        ("bm25, plural stemming", SearchConfig::default()),
        (
            "bm25, no stemming",
            SearchConfig::default().with_stemming(false),
        ),
    ] {
        let (dev, test) = quality(&set, config).await;
        row(label, dev, test);
    }
    match &model {
        Some(dir) => {
            let loaded = StaticModel::load(dir).unwrap();
            let (dev, test) = embeddings_only(&set, &loaded);
            row("embeddings alone (cosine)", dev, test);
            let (dev, test) = quality(
                &set,
                SearchConfig::default().with_model_dir(Some(dir.clone())),
            )
            .await;
            row("hybrid (bm25 + embeddings, RRF)", dev, test);
            println!(
                "model: {} ({} dims, {})",
                loaded.name(),
                loaded.dims(),
                dir.display()
            );
        }
        None => println!("embeddings / hybrid: not measured (PQNODE_SEARCH_MODEL=none)"),
    }

    let count: usize = std::env::var("PQNODE_SEARCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    if count == 0 {
        return;
    }
    scale(count, None).await;
    if let Some(dir) = model {
        scale(count, Some(dir)).await;
    }
}

fn row(label: &str, dev: Scores, test: Scores) {
    println!(
        "{label:<38} {:>8.3} {:>7.3} {:>8.3} {:>7.3}",
        dev.recall_at_k, dev.mrr, test.recall_at_k, test.mrr
    );
}

/// Scores on the development and held-out queries.
async fn quality(set: &LabelledSet, config: SearchConfig) -> (Scores, Scores) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.redb")).await.unwrap();
    let index = SearchIndex::open(store, config).await.unwrap();
    let docs = set
        .documents
        .iter()
        .map(|d| (d.id.clone(), d.text.clone()))
        .collect();
    index.index_many(docs).await.unwrap();
    let mut out = Vec::new();
    for queries in [&set.queries, &set.test_queries] {
        let mut rankings = Vec::new();
        for q in queries {
            let hits = index.search(&q.query, 10).await.unwrap();
            rankings.push(hits.into_iter().map(|h| h.doc_id).collect());
        }
        out.push(score(queries, &rankings, 3));
    }
    (out[0], out[1])
}

fn embeddings_only(set: &LabelledSet, model: &StaticModel) -> (Scores, Scores) {
    let vectors: Vec<Vec<f32>> = set
        .documents
        .iter()
        .map(|d| model.encode(&d.text))
        .collect();
    let run = |queries: &[LabelledQuery]| {
        let rankings: Vec<Vec<String>> = queries
            .iter()
            .map(|q| {
                let v = model.encode(&q.query);
                let mut scored: Vec<(f32, &str)> = vectors
                    .iter()
                    .zip(&set.documents)
                    .map(|(d, doc)| (dot(d, &v), doc.id.as_str()))
                    .collect();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
                scored
                    .into_iter()
                    .take(10)
                    .map(|(_, id)| id.to_owned())
                    .collect()
            })
            .collect();
        score(queries, &rankings, 3)
    };
    (run(&set.queries), run(&set.test_queries))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

async fn scale(count: usize, model: Option<PathBuf>) {
    let mode = if model.is_some() { "hybrid" } else { "bm25" };
    let (docs, queries) = synthetic(count, 1000, 42);
    let bytes: usize = docs.iter().map(|d| d.1.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let config = SearchConfig::default().with_model_dir(model.clone());
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
    println!(
        "{mode}: {count} docs ({:.1} MB): index_many {:.2} s; index one (durable commit) {:.2} ms; open/rebuild {:.0} ms; {} terms",
        bytes as f64 / 1e6,
        batch.as_secs_f64(),
        single.as_secs_f64() * 1e3,
        open.as_secs_f64() * 1e3,
        index.status().terms
    );
    println!(
        "{mode}: query k=10 with snippets, {} queries: {}",
        latencies.len(),
        percentiles(&mut latencies)
    );
    let Some(dir) = model else { return };
    // What hybrid adds to a query, measured apart: the query's vector, and a dot product
    // with every document vector (as `State::rank` does).
    let model = StaticModel::load(&dir).unwrap();
    let mut encode = Vec::with_capacity(queries.len());
    let vectors: Vec<Vec<f32>> = queries.iter().map(|q| model.encode(q)).collect();
    for q in &queries {
        let started = Instant::now();
        std::hint::black_box(model.encode(q));
        encode.push(started.elapsed());
    }
    let docs_vectors: Vec<Vec<f32>> = docs.iter().map(|d| model.encode(&d.1)).collect();
    let mut scan = Vec::with_capacity(queries.len());
    for v in &vectors {
        let started = Instant::now();
        let best = docs_vectors
            .iter()
            .map(|d| dot(d, v))
            .fold(f32::MIN, f32::max);
        std::hint::black_box(best);
        scan.push(started.elapsed());
    }
    println!(
        "hybrid: embedding a query: {}; scanning {count} vectors of {} dims: {}",
        percentiles(&mut encode),
        model.dims(),
        percentiles(&mut scan)
    );
}

fn percentiles(latencies: &mut [Duration]) -> String {
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3
    )
}
