//! Evaluation helpers shared by the tests and `benches/search.rs`: the labelled set in
//! `eval/labelled.json`, recall@k and MRR, and a deterministic generator of synthetic
//! documents for latency and open-time figures. Not used by the node itself.

use serde::Deserialize;

/// The model folder shipped in this crate's source tree (see its `NOTICE`): a path on the
/// machine that built the crate, for tests and benches.
pub const SHIPPED_MODEL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/model/minilm-l6-static");

/// The labelled set written for this project.
pub const LABELLED_JSON: &str = include_str!("../eval/labelled.json");

/// Documents and the queries they answer, judged by hand: what recall@k and MRR are measured
/// on.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledSet {
    /// The corpus every query is run against.
    pub documents: Vec<LabelledDoc>,
    /// The development split: used while building BM25 and choosing the model and fusion.
    pub queries: Vec<LabelledQuery>,
    /// The held-out split: written before any embedding model was run on it; reported only.
    #[serde(default)]
    pub test_queries: Vec<LabelledQuery>,
}

/// One document of the labelled set.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledDoc {
    /// What [`LabelledQuery::relevant`] names it by, and the id it is indexed under.
    pub id: String,
    /// Its text, indexed as it is.
    pub text: String,
}

/// One query of the labelled set and its right answers.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledQuery {
    /// The query as a user would type it.
    pub query: String,
    /// Ids of the documents that answer it.
    pub relevant: Vec<String>,
}

impl LabelledSet {
    /// The set in `eval/labelled.json`.
    pub fn load() -> LabelledSet {
        serde_json::from_str(LABELLED_JSON).expect("eval/labelled.json is valid")
    }
}

/// Recall@k and MRR of one ranking per query (`rankings[i]` answers `queries[i]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Mean over queries of (relevant documents in the top k) / (relevant documents).
    pub recall_at_k: f64,
    /// Mean over queries of 1 / rank of the first relevant document (0 if none returned).
    pub mrr: f64,
}

/// Scores `rankings` (document ids, best first, one list per query) against the queries'
/// relevant documents, looking at the first `k` of each for recall.
pub fn score(queries: &[LabelledQuery], rankings: &[Vec<String>], k: usize) -> Scores {
    let n = queries.len().max(1) as f64;
    let mut recall = 0.0;
    let mut mrr = 0.0;
    for (q, ranked) in queries.iter().zip(rankings) {
        let relevant = |id: &String| q.relevant.contains(id);
        let found = ranked.iter().take(k).filter(|id| relevant(id)).count();
        recall += found as f64 / q.relevant.len().max(1) as f64;
        if let Some(rank) = ranked.iter().position(relevant) {
            mrr += 1.0 / (rank + 1) as f64;
        }
    }
    Scores {
        recall_at_k: recall / n,
        mrr: mrr / n,
    }
}

/// A deterministic pseudo-random source (SplitMix64), so generated corpora are identical
/// on every machine and run.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A source whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next value of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `count` synthetic documents (`gen-00000`, ...) of 40 to 200 words drawn from a
/// 20 000-word vocabulary with a Zipf-like distribution, and `queries` queries of two or
/// three words taken from random documents. Same seed, same output.
pub fn synthetic(count: usize, queries: usize, seed: u64) -> (Vec<(String, String)>, Vec<String>) {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "da", "gu", "ho", "ji", "be", "zo",
        "fa", "wi", "xu", "qe", "ly", "cor", "sten", "mar", "del",
    ];
    let mut rng = SplitMix::new(seed);
    let vocab: Vec<String> = (0..20_000)
        .map(|i| {
            let mut word = String::new();
            let mut n = i + 24;
            while n > 0 {
                word.push_str(SYLLABLES[n % 24]);
                n /= 24;
            }
            word
        })
        .collect();
    // Cumulative Zipf weights 1/(rank+1).
    let mut cumulative = Vec::with_capacity(vocab.len());
    let mut total = 0.0;
    for rank in 0..vocab.len() {
        total += 1.0 / (rank as f64 + 1.0);
        cumulative.push(total);
    }
    let word = |rng: &mut SplitMix| {
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        &vocab[cumulative.partition_point(|&c| c < x).min(vocab.len() - 1)]
    };
    let docs: Vec<(String, String)> = (0..count)
        .map(|i| {
            let len = 40 + rng.below(161);
            let words: Vec<&str> = (0..len).map(|_| word(&mut rng).as_str()).collect();
            (format!("gen-{i:05}"), words.join(" "))
        })
        .collect();
    let queries = (0..queries)
        .map(|_| {
            let text = &docs[rng.below(docs.len())].1;
            let words: Vec<&str> = text.split(' ').collect();
            let n = 2 + rng.below(2);
            (0..n)
                .map(|_| words[rng.below(words.len())])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (docs, queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_by_hand() {
        let q = |r: &[&str]| LabelledQuery {
            query: String::new(),
            relevant: r.iter().map(|s| s.to_string()).collect(),
        };
        let queries = [q(&["a"]), q(&["b", "c"])];
        let ranked = [
            vec!["x".into(), "a".into()],
            vec!["b".into(), "y".into(), "z".into(), "c".into()],
        ];
        let s = score(&queries, &ranked, 3);
        assert_eq!(s.recall_at_k, (1.0 + 0.5) / 2.0);
        assert_eq!(s.mrr, (0.5 + 1.0) / 2.0);
    }

    #[test]
    fn synthetic_is_deterministic() {
        assert_eq!(synthetic(20, 5, 7), synthetic(20, 5, 7));
        assert_ne!(synthetic(20, 5, 7), synthetic(20, 5, 8));
    }
}
