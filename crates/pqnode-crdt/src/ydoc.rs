//! What the engine asks of yrs, each call guarded: decoding input from outside, applying
//! updates in one transaction, merging updates, encoding state, and reading a document as
//! JSON.
//!
//! yrs may panic on hostile input (in debug builds it asserts on client ids over 53 bits), so
//! every call that sees outside bytes runs under `catch_unwind` and a panic becomes an error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;
use serde_json::Value;
use yrs::types::ToJson;
use yrs::updates::decoder::Decode;
use yrs::{Any, Array, Doc, GetString, Map, Out, ReadTxn, StateVector, Transact, Update};

/// One update holding all of `updates` (committed, hence well-formed).
pub(crate) fn merge(updates: &[Bytes]) -> Result<Bytes, String> {
    match updates {
        [one] => Ok(one.clone()),
        _ => guarded(|| {
            yrs::merge_updates_v1(updates)
                .map(Bytes::from)
                .map_err(|error| error.to_string())
        }),
    }
}

/// Runs `f`, turning a panic into an error carrying its message.
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(match payload.downcast_ref::<&str>() {
            Some(message) => format!("yrs panicked: {message}"),
            None => match payload.downcast_ref::<String>() {
                Some(message) => format!("yrs panicked: {message}"),
                None => "yrs panicked".to_owned(),
            },
        }),
    }
}

/// Decodes a Yjs v1 update from outside.
pub(crate) fn decode_update(bytes: &[u8]) -> Result<Update, String> {
    // The first varint claims how many clients follow; each needs at least three bytes. A
    // larger claim is a lie that would only make yrs reserve memory for nothing.
    let mut reader = crate::wire::Reader::new(bytes);
    let clients = reader.var_u64().map_err(|error| error.to_string())?;
    if clients > (bytes.len() / 3) as u64 {
        return Err(format!("claims {clients} clients in {} bytes", bytes.len()));
    }
    guarded(|| Update::decode_v1(bytes).map_err(|error| error.to_string()))
}

/// Applies `updates` to `doc` in one transaction. On an error the document may hold part of
/// them: the caller must rebuild it from its last committed state.
pub(crate) fn apply_all(
    doc: &Doc,
    updates: impl IntoIterator<Item = Update>,
) -> Result<(), String> {
    guarded(|| {
        let mut txn = doc.transact_mut();
        for update in updates {
            txn.apply_update(update)
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    })
}

/// A fresh document holding `updates` (stored, Yjs v1) applied in order in one transaction.
pub(crate) fn replay<'a>(updates: impl IntoIterator<Item = &'a [u8]>) -> Result<Doc, String> {
    let doc = Doc::new();
    let decoded = updates
        .into_iter()
        .map(|bytes| guarded(|| Update::decode_v1(bytes).map_err(|error| error.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    apply_all(&doc, decoded)?;
    Ok(doc)
}

pub(crate) fn encode_full(doc: &Doc) -> Result<Vec<u8>, String> {
    guarded(|| {
        Ok(doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default()))
    })
}

pub(crate) fn encode_diff(doc: &Doc, since: &StateVector) -> Result<Vec<u8>, String> {
    guarded(|| Ok(doc.transact().encode_state_as_update_v1(since)))
}

pub(crate) fn state_vector(doc: &Doc) -> StateVector {
    doc.transact().state_vector()
}

/// Every root type of `doc` as JSON, keyed by its name.
pub(crate) fn to_json(doc: &Doc) -> Result<Value, String> {
    guarded(|| {
        let txn = doc.transact();
        let names: Vec<String> = txn.root_refs().map(|(name, _)| name.to_owned()).collect();
        let mut roots = serde_json::Map::new();
        for name in names {
            roots.insert(name.clone(), root_json(&txn, &name));
        }
        Ok(Value::Object(roots))
    })
}

/// The text of root `name` when it is a text (or XML) type; `None` when absent or not text.
pub(crate) fn root_text(doc: &Doc, name: &str) -> Result<Option<String>, String> {
    guarded(|| {
        let txn = doc.transact();
        Ok(match root_json(&txn, name) {
            Value::String(text) => Some(text),
            _ => None,
        })
    })
}

/// A server never declares root types, so a root arrives untyped: its content tells. Keys
/// make a map; a sequence of strings a text; XML nodes a fragment; anything else an array.
fn root_json<T: ReadTxn>(txn: &T, name: &str) -> Value {
    let typed = match txn.get(name) {
        Some(Out::UndefinedRef(_)) | None => None,
        Some(out) => Some(out.to_json(txn)),
    };
    if let Some(any) = typed {
        return any_json(&any);
    }
    let Some(array) = txn.get_array(name) else {
        return Value::Null;
    };
    // The first element tells the kind. Never walk them all: yrs yields a text's characters
    // one by one, each found by counting from the start of its run (quadratic: a 1 MiB text
    // took minutes).
    let Some(first) = array.iter(txn).next() else {
        return match txn.get_map(name) {
            Some(map) if map.len(txn) > 0 => any_json(&map.to_json(txn)),
            _ => Value::String(String::new()),
        };
    };
    if matches!(first, Out::YXmlElement(_) | Out::YXmlText(_))
        && let Some(fragment) = txn.get_xml_fragment(name)
    {
        return Value::String(fragment.get_string(txn));
    }
    if let Some(text) = txn.get_text(name) {
        let text = text.get_string(txn);
        if !text.is_empty() {
            return Value::String(text);
        }
    }
    any_json(&array.to_json(txn))
}

fn any_json(any: &Any) -> Value {
    serde_json::to_value(any).unwrap_or(Value::Null)
}
