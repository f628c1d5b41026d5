//! Static embeddings in the model2vec format, loaded from a folder with nothing fetched:
//! `config.json` (`normalize`), `tokenizer.json` (a BERT-style WordPiece pipeline, see
//! [`wordpiece`]) and `model.safetensors` (`embeddings` [vocab x dims] in F32, F16 or I8,
//! with the optional `mapping` token -> row and per-token `weights` of vocabulary-quantized
//! models). A text's vector is the (weighted) mean of its tokens' rows, unknown tokens left
//! out, L2-normalized when the config says so: what model2vec computes.

mod safetensors;
mod wordpiece;

use std::path::{Path, PathBuf};

use safetensors::Values;
pub use safetensors::write_f32 as write_safetensors_f32;
use wordpiece::WordPiece;

use crate::ModelError;

/// Tokens of a text that count toward its vector (model2vec's default is 512; documents are
/// longer than queries, so more of them is kept).
const MAX_TOKENS: usize = 2048;
const MAX_TENSOR_FILE: u64 = 1 << 30;
const MAX_JSON_FILE: u64 = 64 << 20;
/// The name [`StaticModel::bundled`] reports (its folder's).
#[cfg(feature = "bundled-model")]
const BUNDLED_NAME: &str = "minilm-l6-static";

/// A loaded static embedding model.
#[derive(Debug, Clone)]
pub struct StaticModel {
    name: String,
    tokenizer: WordPiece,
    table: Vec<f32>,
    dims: usize,
    mapping: Option<Vec<usize>>,
    weights: Option<Vec<f32>>,
    normalize: bool,
}

impl StaticModel {
    /// Loads the model in `folder`.
    pub fn load(folder: &Path) -> Result<StaticModel, ModelError> {
        let config_path = folder.join("config.json");
        let config = match config_path.exists() {
            true => Some(read(&config_path, MAX_JSON_FILE)?),
            false => None,
        };
        let tokenizer = read(&folder.join("tokenizer.json"), MAX_JSON_FILE)?;
        let tensors = read(&folder.join("model.safetensors"), MAX_TENSOR_FILE)?;
        let name = folder.file_name().map_or_else(
            || folder.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        StaticModel::from_files(name, folder, config.as_deref(), &tokenizer, &tensors)
    }

    /// The model shipped in this crate's `model/minilm-l6-static/` folder, compiled into
    /// the program (about 8 MB; see that folder's `NOTICE` for its licence and origin).
    #[cfg(feature = "bundled-model")]
    pub fn bundled() -> Result<StaticModel, ModelError> {
        macro_rules! file {
            ($name:literal) => {
                include_bytes!(concat!("../../model/minilm-l6-static/", $name))
            };
        }
        StaticModel::from_files(
            BUNDLED_NAME.to_owned(),
            Path::new("(bundled) minilm-l6-static"),
            Some(file!("config.json")),
            file!("tokenizer.json"),
            file!("model.safetensors"),
        )
    }

    /// A model from the contents of its three files; `folder` names them in errors.
    fn from_files(
        name: String,
        folder: &Path,
        config: Option<&[u8]>,
        tokenizer: &[u8],
        tensors: &[u8],
    ) -> Result<StaticModel, ModelError> {
        let config: serde_json::Value = match config {
            Some(bytes) => parse_json(&folder.join("config.json"), bytes)?,
            None => serde_json::Value::Null,
        };
        let tok_path = folder.join("tokenizer.json");
        let tok_json = parse_json(&tok_path, tokenizer)?;
        let tokenizer =
            WordPiece::from_json(&tok_json).map_err(|(unsupported, what)| match unsupported {
                true => ModelError::UnsupportedTokenizer {
                    path: tok_path.clone(),
                    what,
                },
                false => format_error(&tok_path, what),
            })?;
        let st_path = folder.join("model.safetensors");
        let mut tensors =
            safetensors::read(tensors).map_err(|reason| format_error(&st_path, reason))?;
        let bad = |reason: String| format_error(&st_path, reason);
        let embeddings = tensors
            .remove("embeddings")
            .ok_or_else(|| bad("no `embeddings` tensor".into()))?;
        let (rows, dims, table) = match (embeddings.shape.as_slice(), embeddings.values) {
            (&[rows, dims], Values::Float(table)) if rows > 0 && dims > 0 => (rows, dims, table),
            (shape, _) => {
                return Err(bad(format!(
                    "`embeddings` has shape {shape:?}, not [rows, dims] floats"
                )));
            }
        };
        let vocab = tokenizer.vocab_size();
        let mapping = match tensors.get("mapping").map(|t| &t.values) {
            None => None,
            Some(Values::Int(ids)) => {
                let ids: Option<Vec<usize>> = ids
                    .iter()
                    .map(|&r| usize::try_from(r).ok().filter(|&r| r < rows))
                    .collect();
                Some(ids.ok_or_else(|| bad("`mapping` points outside `embeddings`".into()))?)
            }
            Some(Values::Float(_)) => return Err(bad("`mapping` is not an integer tensor".into())),
        };
        let lookups = mapping.as_ref().map_or(rows, Vec::len);
        if lookups < vocab {
            return Err(bad(format!(
                "{lookups} rows for a vocabulary of {vocab} tokens"
            )));
        }
        let weights = match tensors.get("weights").map(|t| &t.values) {
            None => None,
            Some(Values::Float(w)) if w.len() >= vocab => Some(w.clone()),
            Some(_) => return Err(bad("`weights` is not one float per token".into())),
        };
        Ok(StaticModel {
            name,
            tokenizer,
            table,
            dims,
            mapping,
            weights,
            normalize: config["normalize"].as_bool().unwrap_or(true),
        })
    }

    /// The folder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Length of the vectors.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The text's vector; all zeros when no token of it is known.
    pub fn encode(&self, text: &str) -> Vec<f32> {
        let mut sum = vec![0.0_f32; self.dims];
        let mut count = 0usize;
        for id in self.tokenizer.encode(text, MAX_TOKENS) {
            if self.tokenizer.is_unk(id) {
                continue;
            }
            let id = id as usize;
            let row = self.mapping.as_ref().map_or(id, |m| m[id]);
            let weight = self.weights.as_ref().map_or(1.0, |w| w[id]);
            let values = &self.table[row * self.dims..(row + 1) * self.dims];
            for (s, v) in sum.iter_mut().zip(values) {
                *s += weight * v;
            }
            count += 1;
        }
        let count = count.max(1) as f32;
        sum.iter_mut().for_each(|s| *s /= count);
        if self.normalize {
            let norm = sum.iter().map(|s| s * s).sum::<f32>().sqrt().max(1e-12);
            sum.iter_mut().for_each(|s| *s /= norm);
        }
        sum
    }
}

fn read(path: &Path, max: u64) -> Result<Vec<u8>, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > max {
        return Err(ModelError::TooLarge {
            path: path.to_owned(),
            len,
            max,
        });
    }
    std::fs::read(path).map_err(io)
}

fn parse_json(path: &Path, bytes: &[u8]) -> Result<serde_json::Value, ModelError> {
    serde_json::from_slice(bytes).map_err(|e| format_error(path, e.to_string()))
}

fn format_error(path: &Path, reason: String) -> ModelError {
    ModelError::Format {
        path: PathBuf::from(path),
        reason,
    }
}
