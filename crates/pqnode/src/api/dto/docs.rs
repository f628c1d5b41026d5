//! CRDT documents: listing, reading, access, tokens, the change feed.

use std::collections::BTreeMap;

use pqnode_crypto::PeerId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// How a document may be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Policy {
    /// Anyone who can reach the port may read and write.
    Open,
    /// Only holders of a capability token and the listed peers.
    Restricted,
}

impl From<pqnode_crdt_ws::Policy> for Policy {
    fn from(policy: pqnode_crdt_ws::Policy) -> Self {
        match policy {
            pqnode_crdt_ws::Policy::Open => Self::Open,
            pqnode_crdt_ws::Policy::Restricted => Self::Restricted,
        }
    }
}

impl From<Policy> for pqnode_crdt_ws::Policy {
    fn from(policy: Policy) -> Self {
        match policy {
            Policy::Open => Self::Open,
            Policy::Restricted => Self::Restricted,
        }
    }
}

/// What a capability token or a listed peer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Rights {
    /// Receive the document and its updates.
    Read,
    /// Read, and send updates.
    Write,
}

impl From<pqnode_crdt_ws::Rights> for Rights {
    fn from(rights: pqnode_crdt_ws::Rights) -> Self {
        match rights {
            pqnode_crdt_ws::Rights::Read => Self::Read,
            pqnode_crdt_ws::Rights::Write => Self::Write,
        }
    }
}

impl From<Rights> for pqnode_crdt_ws::Rights {
    fn from(rights: Rights) -> Self {
        match rights {
            Rights::Read => Self::Read,
            Rights::Write => Self::Write,
        }
    }
}

/// Peers listed for a document, by peer id (hex), with their rights.
pub(crate) type ListedPeers = BTreeMap<PeerId, Rights>;

pub(crate) fn listed_peers(peers: BTreeMap<PeerId, pqnode_crdt_ws::Rights>) -> ListedPeers {
    peers.into_iter().map(|(id, r)| (id, r.into())).collect()
}

/// `/api/docs`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocList {
    pub documents: Vec<DocInfo>,
}

/// What the store knows about one document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DocInfo {
    pub name: String,
    /// When its first update was committed, Unix milliseconds.
    pub created_at_ms: u64,
    /// When its last update was committed, Unix milliseconds.
    pub updated_at_ms: u64,
    /// The newest version: the sequence number of the last update committed.
    pub version: u64,
    /// The oldest version still readable (`/versions/{version}`).
    pub oldest_version: u64,
    /// Bytes a load reads: the newest snapshot plus the updates logged after it.
    pub stored_bytes: u64,
    pub snapshot_bytes: u64,
    pub updates_since_snapshot: u64,
    /// Log entries kept for history (since `oldestVersion`).
    pub history_updates: u64,
    pub history_bytes: u64,
    /// Snapshots written for this document.
    pub compactions: u64,
}

impl From<pqnode_crdt::DocInfo> for DocInfo {
    fn from(info: pqnode_crdt::DocInfo) -> Self {
        let pqnode_crdt::DocInfo {
            name,
            created_at_ms,
            updated_at_ms,
            version,
            oldest_version,
            stored_bytes,
            snapshot_bytes,
            updates_since_snapshot,
            history_updates,
            history_bytes,
            compactions,
        } = info;
        Self {
            name: name.as_str().to_owned(),
            created_at_ms,
            updated_at_ms,
            version,
            oldest_version,
            stored_bytes,
            snapshot_bytes,
            updates_since_snapshot,
            history_updates,
            history_bytes,
            compactions,
        }
    }
}

/// `/api/docs/{doc}`: figures, access and content.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Document {
    pub info: DocInfo,
    pub policy: Policy,
    #[schema(value_type = BTreeMap<String, Rights>)]
    pub peers: ListedPeers,
    /// The document's root types as JSON (Yjs `doc.toJSON()`).
    #[schema(value_type = Object)]
    pub content: Value,
}

/// `/api/docs/{doc}/text`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TextQuery {
    /// The root type to read as text (Yjs `doc.getText(root)`).
    pub root: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct DocText {
    pub root: String,
    pub text: String,
}

/// The versions kept, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocHistory {
    pub versions: Vec<HistoryEntry>,
}

/// One entry of a document's update log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HistoryEntry {
    /// The document's version once this entry was applied.
    pub seq: u64,
    /// When it was committed, Unix milliseconds.
    pub time_ms: u64,
    /// Size of the update.
    pub bytes: u64,
}

impl From<pqnode_crdt::LogEntry> for HistoryEntry {
    fn from(entry: pqnode_crdt::LogEntry) -> Self {
        let pqnode_crdt::LogEntry {
            seq,
            time_ms,
            bytes,
        } = entry;
        Self {
            seq,
            time_ms,
            bytes,
        }
    }
}

/// The content at one version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocVersion {
    pub version: u64,
    #[schema(value_type = Object)]
    pub content: Value,
}

/// An update committed: the document's version now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Applied {
    pub version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocDeleted {
    pub deleted: String,
}

/// `PUT /api/docs/{doc}/access`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetAccess {
    pub policy: Policy,
    /// The peers who may open the document when it is restricted, with their rights;
    /// replaces the list. Absent: the list stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, Rights>>)]
    pub peers: Option<ListedPeers>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessSet {
    pub document: String,
    pub policy: Policy,
    #[schema(value_type = BTreeMap<String, Rights>)]
    pub peers: ListedPeers,
    /// Live sessions closed because they lost their access.
    pub sessions_closed: usize,
}

/// `POST /api/docs/{doc}/tokens`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct IssueToken {
    pub rights: Rights,
    /// Lifetime, seconds.
    #[schema(minimum = 1, maximum = 31536000)]
    pub ttl_secs: u64,
}

/// A capability token: give `token` to a client as `?token=` on `/sync/{doc}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IssuedToken {
    /// 32 hex characters: what `DELETE /api/capabilities/{id}` takes.
    pub id: String,
    pub document: String,
    pub rights: Rights,
    pub expires_at_ms: u64,
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Revoked {
    pub revoked: String,
    /// Sessions it opened on this node, closed now.
    pub sessions_closed: usize,
    /// Whether the revocation list other nodes poll changed.
    pub published: bool,
}

/// `GET /api/changes`, event `updated`: updates were committed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocUpdated {
    pub name: String,
    pub version: u64,
}

/// `GET /api/changes`, event `deleted`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DocRemoved {
    pub name: String,
}

/// `GET /api/changes`, event `lagged`: the listener was too slow and missed events.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Lagged {
    pub missed: u64,
}
