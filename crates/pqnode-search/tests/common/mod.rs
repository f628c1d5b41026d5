//! A tiny generated model2vec-format model for tests. It is not a pretrained model: its rows
//! are chosen by hand so that words of one topic share a direction, which lets the tests
//! check the loading, pooling and fusion mechanics, not semantic quality.

use std::path::Path;

/// Topic clusters; each word gets its topic's axis plus a small word-specific component.
pub(crate) const TOPICS: &[&[&str]] = &[
    &["car", "automobile", "vehicle", "engine", "garage"],
    &["bread", "loaf", "baking", "dough", "flour"],
    &["ocean", "sea", "beach", "wave", "coast"],
];

/// Writes the model (`tokenizer.json`, `config.json`, `model.safetensors`) into `dir`.
pub(crate) fn write_fixture_model(dir: &Path) {
    let mut vocab = vec!["[UNK]".to_owned(), "[PAD]".to_owned()];
    for topic in TOPICS {
        vocab.extend(topic.iter().map(|w| w.to_string()));
    }
    vocab.push("##s".to_owned());
    let dims = 8;
    let mut table = vec![0.0_f32; vocab.len() * dims];
    for (row, word) in vocab.iter().enumerate() {
        if let Some(topic) = TOPICS.iter().position(|t| t.contains(&word.as_str())) {
            table[row * dims + topic] = 1.0;
            table[row * dims + 3 + row % 5] = 0.2;
        }
    }
    let vocab_json: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), i.into()))
        .collect();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "normalizer": {"type": "BertNormalizer", "lowercase": true, "strip_accents": null,
                        "clean_text": true, "handle_chinese_chars": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                   "max_input_chars_per_word": 100, "vocab": vocab_json}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"normalize": true}"#).unwrap();
    let bytes =
        pqnode_search::write_safetensors_f32(&[("embeddings", vec![vocab.len(), dims], &table)]);
    std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
}
