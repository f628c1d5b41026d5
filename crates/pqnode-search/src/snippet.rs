//! Snippets: a short window of the original text around the best-matching query terms.

use std::collections::HashMap;

use crate::analyze::{Analyzer, Token};

/// Tokens in a snippet window.
const WINDOW_TOKENS: usize = 24;
/// Longest snippet, in bytes (before the ellipses).
const MAX_SNIPPET_BYTES: usize = 240;

/// The window of `text` whose query terms weigh most (each distinct term counted once, by
/// its `weight`), the earliest such window on a tie; the start of the text when nothing
/// matches. Whitespace runs become one space; `…` marks a cut.
pub(crate) fn snippet(analyzer: &Analyzer, text: &str, weights: &HashMap<String, f32>) -> String {
    let tokens = analyzer.tokens(text);
    if tokens.is_empty() {
        return clip(text, 0, text.len());
    }
    let (mut best, mut best_score) = (0, 0.0_f32);
    for start in 0..tokens.len() {
        let score = window_score(
            &tokens[start..(start + WINDOW_TOKENS).min(tokens.len())],
            weights,
        );
        if score > best_score {
            (best, best_score) = (start, score);
        }
        if start + WINDOW_TOKENS >= tokens.len() {
            break;
        }
    }
    // Centre the window on its matches, so they come with context on both sides.
    let window = &tokens[best..(best + WINDOW_TOKENS).min(tokens.len())];
    let matched: Vec<usize> = (0..window.len())
        .filter(|&i| weights.contains_key(&window[i].term))
        .map(|i| best + i)
        .collect();
    let from = match (matched.first(), matched.last()) {
        (Some(&first), Some(&last)) => {
            let mid = (first + last) / 2;
            mid.saturating_sub(WINDOW_TOKENS / 2)
                .min(tokens.len().saturating_sub(WINDOW_TOKENS))
                .min(first)
        }
        _ => 0,
    };
    let last = (from + WINDOW_TOKENS).min(tokens.len()) - 1;
    let start = if from == 0 { 0 } else { tokens[from].start };
    let end = if last + 1 == tokens.len() {
        text.len()
    } else {
        tokens[last].end
    };
    clip(text, start, end)
}

fn window_score(window: &[Token], weights: &HashMap<String, f32>) -> f32 {
    let mut seen: Vec<&str> = Vec::new();
    let mut score = 0.0;
    for token in window {
        if let Some(weight) = weights.get(&token.term)
            && !seen.contains(&token.term.as_str())
        {
            seen.push(&token.term);
            score += weight.max(f32::MIN_POSITIVE);
        }
    }
    score
}

/// `text[start..end]` with whitespace collapsed, cut to [`MAX_SNIPPET_BYTES`] at a char
/// boundary, with `…` where text was left out.
fn clip(text: &str, start: usize, end: usize) -> String {
    let mut out = String::new();
    if text[..start].chars().any(|c| !c.is_whitespace()) {
        out.push('…');
    }
    let mut cut = false;
    let mut space = false;
    for c in text[start..end].trim().chars() {
        if out.len() + c.len_utf8() > MAX_SNIPPET_BYTES {
            cut = true;
            break;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() && !out.ends_with('…') {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    if cut || text[end..].chars().any(|c| !c.is_whitespace()) {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(terms: &[&str]) -> HashMap<String, f32> {
        terms.iter().map(|t| (t.to_string(), 1.0)).collect()
    }

    #[test]
    fn short_text_is_whole_and_whitespace_collapses() {
        let a = Analyzer { stem: false };
        assert_eq!(
            snippet(&a, "  Hello\n\n  world  ", &weights(&["world"])),
            "Hello world"
        );
    }

    #[test]
    fn window_moves_to_the_matches() {
        let a = Analyzer { stem: false };
        let filler = "lorem ipsum dolor sit amet ".repeat(20);
        let text = format!("{filler}the sourdough starter needs flour and water daily. {filler}");
        let s = snippet(&a, &text, &weights(&["sourdough", "flour"]));
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("sourdough starter needs flour"), "{s}");
        assert!(s.len() <= MAX_SNIPPET_BYTES + 2 * '…'.len_utf8());
    }

    #[test]
    fn no_match_gives_the_start_and_long_words_are_cut_on_char_boundaries() {
        let a = Analyzer { stem: false };
        let text = "é".repeat(300);
        let s = snippet(&a, &text, &weights(&["x"]));
        assert!(s.ends_with('…'));
        let s = snippet(&a, "alpha beta", &weights(&["x"]));
        assert_eq!(s, "alpha beta");
    }
}
