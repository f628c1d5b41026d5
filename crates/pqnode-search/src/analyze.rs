//! Text analysis for BM25: Unicode-aware lowercasing, splitting on anything that is not a
//! letter or digit, a small English stopword list, and an optional plural-only stemmer.
//!
//! The stemmer is Harman's "S" stemmer (1991): `-ies` to `-y`, `-es` to `-e`, `-s` dropped,
//! with the usual exceptions. It merges singular and plural and nothing else, so it rarely
//! conflates unrelated words; `benches/search.rs` measures it against no stemming on the
//! labelled set.

/// Tokens longer than this (in bytes) are dropped: hashes, base64, URLs run together.
const MAX_TOKEN_BYTES: usize = 64;

/// Common English function words. Kept short on purpose: BM25's idf already discounts
/// frequent words, the list only keeps them out of postings and snippets.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "but", "by", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "not",
    "of", "on", "or", "our", "s", "so", "t", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with", "you", "your",
];

/// One token: its normalized term and where it came from in the text (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub term: String,
    pub start: usize,
    pub end: usize,
}

/// How text becomes terms. The same analyzer must index and query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Analyzer {
    pub stem: bool,
}

impl Analyzer {
    /// Every indexable token of `text`, in order, with its byte span.
    pub(crate) fn tokens(&self, text: &str) -> Vec<Token> {
        let mut tokens = Vec::new();
        let mut start = None;
        for (at, c) in text.char_indices() {
            match (c.is_alphanumeric(), start) {
                (true, None) => start = Some(at),
                (false, Some(from)) => {
                    self.push(text, from, at, &mut tokens);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(from) = start {
            self.push(text, from, text.len(), &mut tokens);
        }
        tokens
    }

    /// The terms alone.
    pub(crate) fn terms(&self, text: &str) -> Vec<String> {
        self.tokens(text).into_iter().map(|t| t.term).collect()
    }

    fn push(&self, text: &str, start: usize, end: usize, out: &mut Vec<Token>) {
        let raw = &text[start..end];
        if raw.len() > MAX_TOKEN_BYTES {
            return;
        }
        let lower = raw.to_lowercase();
        if STOPWORDS.binary_search(&lower.as_str()).is_ok() {
            return;
        }
        let term = if self.stem { stem_plural(lower) } else { lower };
        out.push(Token { term, start, end });
    }
}

/// Harman's S stemmer, on lowercase words of more than three characters.
fn stem_plural(word: String) -> String {
    if word.chars().count() <= 3 || !word.chars().all(char::is_alphabetic) {
        return word;
    }
    if word.ends_with("ies") && !word.ends_with("eies") && !word.ends_with("aies") {
        return format!("{}y", &word[..word.len() - 3]);
    }
    if word.ends_with("es") && !["aes", "ees", "oes"].iter().any(|s| word.ends_with(s)) {
        return word[..word.len() - 1].to_owned();
    }
    if word.ends_with('s') && !word.ends_with("us") && !word.ends_with("ss") {
        return word[..word.len() - 1].to_owned();
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn splits_lowercases_and_keeps_offsets() {
        let text = "Über-fast QUIC, naïve café #42";
        let tokens = Analyzer { stem: false }.tokens(text);
        let terms: Vec<_> = tokens.iter().map(|t| t.term.as_str()).collect();
        assert_eq!(terms, ["über", "fast", "quic", "naïve", "café", "42"]);
        assert_eq!(&text[tokens[0].start..tokens[0].end], "Über");
        assert_eq!(&text[tokens[4].start..tokens[4].end], "café");
    }

    #[test]
    fn drops_stopwords_and_overlong_tokens() {
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        let terms = Analyzer { stem: false }.terms(&format!("The cat and {long} the hat"));
        assert_eq!(terms, ["cat", "hat"]);
    }

    #[test]
    fn stems_plurals_only() {
        let a = Analyzer { stem: true };
        assert_eq!(
            a.terms("berries boxes nodes glass status tomatoes bus cats running"),
            [
                "berry", "boxe", "node", "glass", "status", "tomatoe", "bus", "cat", "running"
            ]
        );
        // A known limit of the S stemmer: `-xes`, `-ches` plurals keep their `e`.
        assert_eq!(a.terms("box boxes"), ["box", "boxe"]);
    }
}
