//! A reader for the safetensors format (an 8-byte little-endian header length, a JSON header
//! naming each tensor's dtype, shape and byte range, then the raw data), for the few dtypes
//! model2vec files use. Every offset and shape is checked before use.

use std::collections::HashMap;

/// Longest JSON header accepted.
const MAX_HEADER: u64 = 16 * 1024 * 1024;

/// One tensor, decoded to `f32` or integers, row-major.
#[derive(Debug, Clone)]
pub(crate) struct Tensor {
    pub shape: Vec<usize>,
    pub values: Values,
}

#[derive(Debug, Clone)]
pub(crate) enum Values {
    Float(Vec<f32>),
    Int(Vec<i64>),
}

/// Every tensor in `bytes`, by name; `Err` says what is wrong.
pub(crate) fn read(bytes: &[u8]) -> Result<HashMap<String, Tensor>, String> {
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("shorter than a safetensors header")?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER || header_len > (bytes.len() - 8) as u64 {
        return Err(format!("header length {header_len} does not fit the file"));
    }
    let header_end = 8 + header_len as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..header_end]).map_err(|e| format!("header: {e}"))?;
    let data = &bytes[header_end..];
    let mut tensors = HashMap::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info["dtype"].as_str().ok_or(format!("{name}: no dtype"))?;
        let shape = info["shape"]
            .as_array()
            .ok_or(format!("{name}: no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<Vec<usize>>>()
            .ok_or(format!("{name}: bad shape"))?;
        let offsets = info["data_offsets"]
            .as_array()
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()? as usize, o[1].as_u64()? as usize)))
            .ok_or(format!("{name}: bad data_offsets"))?;
        let (start, end) = offsets;
        if start > end || end > data.len() {
            return Err(format!(
                "{name}: data_offsets {start}..{end} outside the data"
            ));
        }
        let raw = &data[start..end];
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or(format!("{name}: shape overflows"))?;
        let width = match dtype {
            "F64" | "I64" => 8,
            "F32" | "I32" => 4,
            "F16" => 2,
            "I8" => 1,
            other => return Err(format!("{name}: unsupported dtype {other}")),
        };
        if count.checked_mul(width) != Some(raw.len()) {
            return Err(format!(
                "{name}: {} bytes for shape {shape:?} of {dtype}",
                raw.len()
            ));
        }
        let values = match dtype {
            "F64" => Values::Float(
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(arr(c)) as f32)
                    .collect(),
            ),
            "F32" => Values::Float(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(arr(c)))
                    .collect(),
            ),
            "F16" => Values::Float(
                raw.chunks_exact(2)
                    .map(|c| f16_to_f32(u16::from_le_bytes(arr(c))))
                    .collect(),
            ),
            "I8" => Values::Float(raw.iter().map(|&b| f32::from(b as i8)).collect()),
            "I64" => Values::Int(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes(arr(c)))
                    .collect(),
            ),
            _ => Values::Int(
                raw.chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes(arr(c))))
                    .collect(),
            ),
        };
        tensors.insert(name, Tensor { shape, values });
    }
    Ok(tensors)
}

fn arr<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(chunk);
    out
}

/// IEEE 754 half to single precision (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = m as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Writes tensors in the same format: for tests, benches and fixture models.
pub fn write_f32(tensors: &[(&str, Vec<usize>, &[f32])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values.iter() {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let bytes = write_f32(&[("embeddings", vec![2, 2], &[1.0, -2.0, 0.5, 0.0])]);
        let t = read(&bytes).unwrap();
        let Values::Float(v) = &t["embeddings"].values else {
            panic!()
        };
        assert_eq!(
            (t["embeddings"].shape.clone(), v.clone()),
            (vec![2, 2], vec![1.0, -2.0, 0.5, 0.0])
        );
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        assert!(read(&bytes[..4]).is_err());
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&huge).is_err());
    }

    #[test]
    fn half_precision() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
