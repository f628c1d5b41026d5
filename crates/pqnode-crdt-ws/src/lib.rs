//! The Yjs WebSocket endpoint of pqnode: `GET /sync/{doc}`, compatible with npm
//! `y-websocket`'s provider, over [`pqnode_crdt`] sessions, with per-document access.
//!
//! What it is for. A stock Yjs client (`new WebsocketProvider("ws://node:3001/sync", "doc",
//! ydoc)`) connects, syncs (step 1 / step 2), sends and receives updates and awareness; an
//! update is passed on only once the node has committed it. Access is per document
//! ([`Policy`]): open to anyone who reaches the port, or restricted to holders of a
//! capability token ([`capability`]) the node issued through its API (read-only or
//! read-write, with an expiry, signed with the node's ML-DSA-87 key, carried in the URL as
//! `?token=`) and to the peers listed for the document, who prove they hold their key with
//! a proof they sign themselves (`?peer=`, [`peer_proof`]). Revoking a token, or removing a
//! peer from the list, closes the sessions it opened, at once; the issuer's published
//! revocation list carries a revocation to the other nodes that trust the issuer.
//!
//! What it is not: the document engine (that is `pqnode-crdt`), replication between nodes,
//! or the REST API; the binary mounts [`router`] on its public port and serves the rest.

pub mod capability;
pub mod peer_proof;

mod access;
mod admission;
mod endpoint;
mod revocations;

pub use access::{
    AccessControl, AccessError, Denied, Grant, Holder, Policy, parse_token_id, token_id_hex,
};
pub use admission::{Admission, AdmissionLimits};
pub use capability::{Capability, Rights, TokenError, TokenId};
pub use endpoint::{
    CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_REVOKED, CLOSE_TOO_LARGE, CLOSE_TRY_LATER, OnOpen,
    PATH_PREFIX, SyncEndpoint, router,
};
pub use revocations::{
    MAX_SHARED_REVOCATIONS, REVOCATIONS_RECORD, decode_revocations, encode_revocations,
};
