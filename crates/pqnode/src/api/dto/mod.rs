//! The API's request and response bodies, one Rust type each: the handlers serialize them,
//! the CLI (`client.rs`) deserializes them, and `utoipa` derives the OpenAPI schemas
//! (`/api/openapi.json`) from them, so the three cannot disagree.
//!
//! Library types (routing-table entries, messages, document figures…) are converted into
//! these at the edge, field by field with exhaustive destructuring: a field added to a
//! library type fails to compile here until the API decides whether to show it. Values that
//! are open by nature (a component's own figures in `/api/health`, a document's content)
//! stay `serde_json::Value`, documented as objects.

mod dht;
mod docs;
mod error;
mod health;
mod p2p;
mod search;
mod system;

pub(crate) use dht::*;
pub(crate) use docs::*;
pub(crate) use error::*;
pub(crate) use health::*;
pub(crate) use p2p::*;
pub(crate) use search::*;
pub(crate) use system::*;
