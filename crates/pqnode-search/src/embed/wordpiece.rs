//! The BERT-style WordPiece pipeline of a `tokenizer.json` (Hugging Face `tokenizers`
//! format): BertNormalizer, BertPreTokenizer, WordPiece. It is the pipeline of the
//! model2vec models distilled from BERT-family teachers; other pipelines (Unigram,
//! SentencePiece `Precompiled` normalizers, BPE) are refused by name rather than
//! approximated. Differences from `tokenizers`, stated: punctuation is every character that
//! is neither alphanumeric nor whitespace (BERT splits Unicode punctuation and ASCII
//! symbols, and keeps non-ASCII symbols such as `€` inside words).

use std::collections::HashMap;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

#[derive(Debug, Clone)]
pub(crate) struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: Option<u32>,
    prefix: String,
    max_chars: usize,
    lowercase: bool,
    strip_accents: bool,
    chinese_chars: bool,
}

impl WordPiece {
    /// Reads a `tokenizer.json`; `Err((unsupported, what))`.
    pub(crate) fn from_json(json: &Value) -> Result<WordPiece, (bool, String)> {
        let model = &json["model"];
        match model["type"].as_str() {
            Some("WordPiece") => {}
            other => {
                return Err((
                    true,
                    format!("model type {other:?} (only WordPiece is implemented)"),
                ));
            }
        }
        let (lowercase, strip_accents, chinese_chars) = match &json["normalizer"] {
            Value::Null => (false, false, false),
            n if n["type"] == "BertNormalizer" => {
                let lowercase = n["lowercase"].as_bool().unwrap_or(true);
                let strip = n["strip_accents"].as_bool().unwrap_or(lowercase);
                (
                    lowercase,
                    strip,
                    n["handle_chinese_chars"].as_bool().unwrap_or(true),
                )
            }
            n => return Err((true, format!("normalizer {}", n["type"]))),
        };
        match &json["pre_tokenizer"] {
            Value::Null => {}
            p if p["type"] == "BertPreTokenizer" => {}
            p => return Err((true, format!("pre-tokenizer {}", p["type"]))),
        }
        let vocab: HashMap<String, u32> = model["vocab"]
            .as_object()
            .ok_or((false, "model.vocab is not an object".to_owned()))?
            .iter()
            .map(|(k, v)| Some((k.clone(), u32::try_from(v.as_u64()?).ok()?)))
            .collect::<Option<_>>()
            .ok_or((false, "model.vocab has a non-integer id".to_owned()))?;
        let unk = model["unk_token"]
            .as_str()
            .and_then(|t| vocab.get(t).copied());
        Ok(WordPiece {
            vocab,
            unk,
            prefix: model["continuing_subword_prefix"]
                .as_str()
                .unwrap_or("##")
                .to_owned(),
            max_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            lowercase,
            strip_accents,
            chinese_chars,
        })
    }

    /// The largest token id plus one.
    pub(crate) fn vocab_size(&self) -> usize {
        self.vocab.values().max().map_or(0, |&m| m as usize + 1)
    }

    /// Token ids of `text`, unknown pieces left out, at most `max_tokens`.
    pub(crate) fn encode(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let normalized = self.normalize(text);
        let mut ids = Vec::new();
        for word in pre_tokenize(&normalized) {
            if ids.len() >= max_tokens {
                break;
            }
            self.word(word, &mut ids);
        }
        ids.truncate(max_tokens);
        ids
    }

    fn normalize(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
                continue;
            }
            if c.is_whitespace() {
                out.push(' ');
            } else if self.chinese_chars && is_cjk(c) {
                out.extend([' ', c, ' ']);
            } else {
                out.push(c);
            }
        }
        if self.strip_accents {
            out = out.nfd().filter(|&c| !is_combining_mark(c)).collect();
        }
        if self.lowercase {
            out = out.to_lowercase();
        }
        out
    }

    fn word(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_chars {
            ids.extend(self.unk);
            return;
        }
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while end > start {
                let piece = &word[start..end];
                let id = if start > 0 {
                    self.vocab.get(&format!("{}{piece}", self.prefix))
                } else {
                    self.vocab.get(piece)
                };
                if let Some(&id) = id {
                    found = Some(id);
                    break;
                }
                end = word[..end]
                    .char_indices()
                    .next_back()
                    .map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    pieces.push(id);
                    start = end;
                }
                None => {
                    // WordPiece: a word with an unmatchable piece is one unknown token.
                    ids.extend(self.unk);
                    return;
                }
            }
        }
        ids.extend(pieces);
    }

    pub(crate) fn is_unk(&self, id: u32) -> bool {
        self.unk == Some(id)
    }
}

/// Whitespace splits; every punctuation character is a word of its own.
fn pre_tokenize(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ').flat_map(|chunk| {
        let mut words = Vec::new();
        let mut start = 0;
        for (i, c) in chunk.char_indices() {
            if !c.is_alphanumeric() {
                if start < i {
                    words.push(&chunk[start..i]);
                }
                words.push(&chunk[i..i + c.len_utf8()]);
                start = i + c.len_utf8();
            }
        }
        if start < chunk.len() {
            words.push(&chunk[start..]);
        }
        words
    })
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> WordPiece {
        let json = serde_json::json!({
            "normalizer": {"type": "BertNormalizer", "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {
                "[UNK]": 0, "cafe": 1, "un": 2, "##aff": 3, "##able": 4, "!": 5, "中": 6
            }}
        });
        WordPiece::from_json(&json).unwrap()
    }

    #[test]
    fn bert_pipeline() {
        let t = tokenizer();
        assert_eq!(t.encode("Café unaffable! 中", 100), [1, 2, 3, 4, 5, 6]);
        // An unmatchable word is one [UNK] (pooling later skips it).
        assert_eq!(t.encode("xyz cafe", 100), [0, 1]);
        assert_eq!(t.encode("cafe cafe cafe", 2), [1, 1]);
        assert_eq!(t.vocab_size(), 7);
    }

    #[test]
    fn refuses_other_pipelines_by_name() {
        let json = serde_json::json!({"model": {"type": "Unigram", "vocab": []}});
        let (unsupported, what) = WordPiece::from_json(&json).unwrap_err();
        assert!(unsupported && what.contains("Unigram"), "{what}");
        let json = serde_json::json!({"normalizer": {"type": "Precompiled"}, "model": {"type": "WordPiece", "vocab": {}}});
        assert!(
            WordPiece::from_json(&json)
                .unwrap_err()
                .1
                .contains("Precompiled")
        );
    }
}
