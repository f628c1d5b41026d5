//! The in-memory side of the index: document ids and their slots, BM25, vectors, and
//! ranking (BM25 alone, or BM25 and cosine fused by reciprocal rank).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::analyze::Analyzer;
use crate::bm25::{Bm25, TermCounts};
use crate::embed::StaticModel;

/// The reciprocal-rank-fusion constant of Cormack, Clarke and Büttcher (2009).
const RRF_K: f32 = 60.0;
/// How deep each ranked list goes into the fusion, at least.
const FUSION_DEPTH: usize = 50;

/// A document analysed and embedded, ready to go into the index.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub counts: TermCounts,
    pub vector: Option<Vec<f32>>,
    pub fingerprint: u64,
}

pub(crate) fn prepare(analyzer: &Analyzer, model: Option<&StaticModel>, text: &str) -> Prepared {
    Prepared {
        counts: TermCounts::from_terms(analyzer.terms(text)),
        vector: model.map(|m| m.encode(text)),
        fingerprint: fingerprint(text),
    }
}

fn fingerprint(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug, Default)]
pub(crate) struct State {
    slots: HashMap<String, u32>,
    /// slot -> (id, fingerprint of its text)
    docs: HashMap<u32, (String, u64)>,
    free: Vec<u32>,
    next: u32,
    bm25: Bm25,
    vectors: HashMap<u32, Vec<f32>>,
}

impl State {
    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.slots.keys().cloned().collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn terms(&self) -> usize {
        self.bm25.terms()
    }

    /// Whether `id` already holds a text with this fingerprint.
    pub(crate) fn holds(&self, id: &str, fingerprint: u64) -> bool {
        self.slots
            .get(id)
            .and_then(|slot| self.docs.get(slot))
            .is_some_and(|d| d.1 == fingerprint)
    }

    pub(crate) fn insert(&mut self, id: &str, doc: Prepared) {
        let slot = match self.slots.get(id) {
            Some(&slot) => slot,
            None => {
                let slot = self.free.pop().unwrap_or_else(|| {
                    self.next += 1;
                    self.next - 1
                });
                self.slots.insert(id.to_owned(), slot);
                slot
            }
        };
        self.bm25.insert(slot, &doc.counts);
        self.docs.insert(slot, (id.to_owned(), doc.fingerprint));
        match doc.vector {
            Some(v) => self.vectors.insert(slot, v),
            None => self.vectors.remove(&slot),
        };
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        self.bm25.remove(slot);
        self.docs.remove(&slot);
        self.vectors.remove(&slot);
        self.free.push(slot);
        true
    }

    pub(crate) fn idf(&self, term: &str) -> f32 {
        self.bm25.idf(term)
    }

    /// The best `k` documents for the query: BM25 alone when `query_vector` is `None`,
    /// otherwise BM25 and cosine fused by reciprocal rank. Best first; equal scores in
    /// document id order.
    pub(crate) fn rank(
        &self,
        terms: &[String],
        query_vector: Option<&[f32]>,
        k: usize,
    ) -> Vec<(String, f32)> {
        let bm25 = self.top(self.bm25.score(terms), k.max(FUSION_DEPTH));
        let Some(query) = query_vector else {
            return bm25.into_iter().take(k).collect();
        };
        let cosine: Vec<(u32, f32)> = self
            .vectors
            .iter()
            .map(|(&slot, v)| (slot, dot(query, v)))
            .filter(|&(_, s)| s > 0.0)
            .collect();
        let cosine = self.top(cosine, k.max(FUSION_DEPTH));
        let mut fused: HashMap<&str, f32> = HashMap::new();
        // Each document's contributions are added in the same order (BM25 first), so fused
        // scores are reproducible.
        for list in [&bm25, &cosine] {
            for (rank, (id, _)) in list.iter().enumerate() {
                *fused.entry(id.as_str()).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
            }
        }
        let mut fused: Vec<(String, f32)> = fused
            .into_iter()
            .map(|(id, s)| (id.to_owned(), s))
            .collect();
        fused.sort_by(best_first);
        fused.truncate(k);
        fused
    }

    /// The `n` best of `scored`, with ids, best first.
    fn top(&self, scored: Vec<(u32, f32)>, n: usize) -> Vec<(String, f32)> {
        let mut named: Vec<(&str, f32)> = scored
            .into_iter()
            .filter_map(|(slot, s)| Some((self.docs.get(&slot)?.0.as_str(), s)))
            .collect();
        let order =
            |a: &(&str, f32), b: &(&str, f32)| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if named.len() > n {
            named.select_nth_unstable_by(n - 1, order);
            named.truncate(n);
        }
        named.sort_by(order);
        named
            .into_iter()
            .map(|(id, s)| (id.to_owned(), s))
            .collect()
    }
}

fn best_first(a: &(String, f32), b: &(String, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
