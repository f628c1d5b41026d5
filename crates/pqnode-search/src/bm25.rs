//! An in-memory BM25 index over document slots, updated one document at a time.
//!
//! Scores are Okapi BM25 with k1 = 1.2, b = 0.75 and the non-negative idf
//! `ln(1 + (N - df + 0.5) / (df + 0.5))`. A document's score adds its query terms in sorted
//! term order, so the same index content gives bit-identical scores whatever the order
//! documents were inserted in (for instance after a restart).

use std::collections::HashMap;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// A document as BM25 sees it: how long it is and how often each distinct term occurs.
#[derive(Debug, Clone, Default)]
pub(crate) struct TermCounts {
    pub len: u32,
    pub counts: Vec<(String, u32)>,
}

impl TermCounts {
    pub(crate) fn from_terms(terms: Vec<String>) -> Self {
        let len = u32::try_from(terms.len()).unwrap_or(u32::MAX);
        let mut map: HashMap<String, u32> = HashMap::new();
        for term in terms {
            *map.entry(term).or_default() += 1;
        }
        let mut counts: Vec<_> = map.into_iter().collect();
        counts.sort_unstable();
        TermCounts { len, counts }
    }
}

/// (slot, term frequency) of every document holding a term.
type Postings = Vec<(u32, u32)>;

/// Terms are numbered; postings are vectors indexed by term number, so adding a document
/// hashes each of its distinct terms once. A term whose last posting goes is forgotten and
/// its number reused.
#[derive(Debug, Default)]
pub(crate) struct Bm25 {
    term_ids: HashMap<Box<str>, u32>,
    /// term number -> (the term, its postings (slot, term frequency))
    postings: Vec<(Box<str>, Postings)>,
    free_terms: Vec<u32>,
    /// slot -> (length, its term numbers), to undo a document.
    docs: HashMap<u32, (u32, Vec<u32>)>,
    /// slot -> length, for scoring without a hash lookup per posting.
    lens: Vec<u32>,
    total_len: u64,
}

impl Bm25 {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(crate) fn terms(&self) -> usize {
        self.term_ids.len()
    }

    /// Adds `slot`, replacing whatever it held.
    pub(crate) fn insert(&mut self, slot: u32, doc: &TermCounts) {
        self.remove(slot);
        let mut terms = Vec::with_capacity(doc.counts.len());
        for (term, tf) in &doc.counts {
            let id = match self.term_ids.get(term.as_str()) {
                Some(&id) => id,
                None => {
                    let entry = (Box::from(term.as_str()), Vec::new());
                    let id = match self.free_terms.pop() {
                        Some(id) => {
                            self.postings[id as usize] = entry;
                            id
                        }
                        None => {
                            self.postings.push(entry);
                            (self.postings.len() - 1) as u32
                        }
                    };
                    self.term_ids.insert(Box::from(term.as_str()), id);
                    id
                }
            };
            self.postings[id as usize].1.push((slot, *tf));
            terms.push(id);
        }
        self.total_len += u64::from(doc.len);
        let at = slot as usize;
        if self.lens.len() <= at {
            self.lens.resize(at + 1, 0);
        }
        self.lens[at] = doc.len;
        self.docs.insert(slot, (doc.len, terms));
    }

    /// Removes `slot`; returns whether it was there.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let Some((len, terms)) = self.docs.remove(&slot) else {
            return false;
        };
        self.total_len -= u64::from(len);
        for id in terms {
            let (term, list) = &mut self.postings[id as usize];
            if let Some(at) = list.iter().position(|p| p.0 == slot) {
                list.swap_remove(at);
            }
            if list.is_empty() {
                self.term_ids.remove(&**term);
                *term = Box::from("");
                *list = Vec::new();
                self.free_terms.push(id);
            }
        }
        true
    }

    /// Every document matching at least one of `terms`, with its score (unsorted).
    pub(crate) fn score(&self, terms: &[String]) -> Vec<(u32, f32)> {
        let mut query: Vec<&str> = terms.iter().map(String::as_str).collect();
        query.sort_unstable();
        query.dedup();
        let n = self.docs.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let avg_len = (self.total_len as f32 / n).max(1.0);
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in query {
            let Some(&id) = self.term_ids.get(term) else {
                continue;
            };
            let list = &self.postings[id as usize].1;
            let idf = idf(n, list.len() as f32);
            for &(slot, tf) in list {
                let len = self.lens[slot as usize] as f32;
                let tf = tf as f32;
                let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg_len));
                *scores.entry(slot).or_default() += idf * norm;
            }
        }
        scores.into_iter().collect()
    }

    /// The idf of a term (0 for unknown ones), to weigh snippet windows.
    pub(crate) fn idf(&self, term: &str) -> f32 {
        match self.term_ids.get(term) {
            Some(&id) => idf(
                self.docs.len() as f32,
                self.postings[id as usize].1.len() as f32,
            ),
            None => 0.0,
        }
    }
}

fn idf(n: f32, df: f32) -> f32 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> TermCounts {
        TermCounts::from_terms(text.split_whitespace().map(str::to_owned).collect())
    }

    fn q(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn rarer_terms_and_shorter_docs_score_higher() {
        let mut index = Bm25::default();
        index.insert(1, &doc("apple banana"));
        index.insert(2, &doc("apple cherry cherry durian elder fig grape"));
        index.insert(3, &doc("banana"));
        let mut s = index.score(&q("cherry apple"));
        s.sort_by_key(|e| e.0);
        assert_eq!(s.len(), 2);
        assert!(s[1].1 > s[0].1, "{s:?}");
    }

    #[test]
    fn replace_and_remove_leave_no_trace() {
        let mut index = Bm25::default();
        index.insert(1, &doc("alpha beta"));
        index.insert(1, &doc("gamma"));
        assert!(index.score(&q("alpha")).is_empty());
        assert_eq!(index.terms(), 1);
        assert!(index.remove(1));
        assert!(!index.remove(1));
        assert_eq!((index.len(), index.terms(), index.total_len), (0, 0, 0));
    }

    #[test]
    fn scores_do_not_depend_on_insertion_order() {
        let texts = ["a b c", "b c d d", "c d e", "a a e"];
        let mut one = Bm25::default();
        let mut two = Bm25::default();
        for (i, t) in texts.iter().enumerate() {
            one.insert(i as u32, &doc(t));
        }
        for (i, t) in texts.iter().enumerate().rev() {
            two.insert(10 + i as u32, &doc(t));
        }
        let mut a: Vec<_> = one
            .score(&q("e d a"))
            .into_iter()
            .map(|(s, v)| (s, v.to_bits()))
            .collect();
        let mut b: Vec<_> = two
            .score(&q("a d e"))
            .into_iter()
            .map(|(s, v)| (s - 10, v.to_bits()))
            .collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
}
