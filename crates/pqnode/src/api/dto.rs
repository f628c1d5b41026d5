//! The API's request and response bodies, one Rust type each: the handlers serialize them,
//! the CLI (`client.rs`) deserializes them, and `utoipa` derives the OpenAPI schemas
//! (`/api/openapi.json`) from them, so the three cannot disagree.
//!
//! Library types (routing-table entries, messages, document figures…) are converted into
//! these at the edge, field by field with exhaustive destructuring: a field added to a
//! library type fails to compile here until the API decides whether to show it. Values that
//! are open by nature (a component's own figures in `/api/health`, a document's content)
//! stay `serde_json::Value`, documented as objects.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use pqnode_crypto::{NodeId, PeerId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

// ---------------------------------------------------------------- errors

/// Every error either HTTP port sends: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code for programs, a sentence for people.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `SCREAMING_SNAKE_CASE`, stable across versions.
    #[schema(examples("NOT_FOUND"))]
    pub code: String,
    pub message: String,
}

// ---------------------------------------------------------------- health

/// `/livez`: the process answers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    pub status: LiveStatus,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LiveStatus {
    Alive,
}

/// `/readyz`: ready once start-up finished, while not shutting down and no component fails.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Readiness {
    pub status: ReadyStatus,
    /// Why not: `starting`, `shutting down`, or `<component> is failing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The failing component, when one is the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The failing component's own reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) enum ReadyStatus {
    #[serde(rename = "ready")]
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
}

/// `/api/health`: every component's health and figures, and the HTTP ports' connection
/// figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    /// `error` when an enabled component fails (then the answer is 503), `degraded` when one
    /// warns.
    pub status: HealthStatus,
    /// Unix time, milliseconds.
    pub timestamp: u64,
    /// Milliseconds since start.
    pub uptime: u64,
    pub version: &'static str,
    #[schema(value_type = String)]
    pub node_id: NodeId,
    pub ready: bool,
    /// By component: crypto, signaling, dht, p2p, storage, crdt, ai, system.
    pub components: BTreeMap<&'static str, ComponentHealth>,
    /// By HTTP port (`api`, `signaling`).
    pub listeners: BTreeMap<&'static str, ListenerFigures>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    Ok,
    Degraded,
    Error,
}

/// One component's entry in `/api/health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ComponentHealth {
    pub status: ComponentStatus,
    /// What is wrong, when it warns or fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The component's own figures (each has its own); absent when it is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub stats: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ComponentStatus {
    Pass,
    Warn,
    Fail,
    Disabled,
}

impl From<pqnode_health::Status> for ComponentStatus {
    fn from(status: pqnode_health::Status) -> Self {
        use pqnode_health::Status;
        match status {
            Status::Pass => Self::Pass,
            Status::Warn => Self::Warn,
            Status::Fail => Self::Fail,
            Status::Disabled => Self::Disabled,
        }
    }
}

impl From<crate::components::Report> for ComponentHealth {
    fn from(report: crate::components::Report) -> Self {
        let crate::components::Report {
            name: _,
            health,
            mut body,
        } = report;
        Self {
            status: health.status.into(),
            reason: health.reason,
            stats: body.as_object_mut().and_then(|b| b.remove("stats")),
        }
    }
}

/// One HTTP port: open TCP connections, the caps in force, and how many were accepted,
/// refused over a cap, evicted, timed out, closed at shutdown, and malformed requests
/// answered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListenerFigures {
    #[schema(value_type = String)]
    pub addr: SocketAddr,
    pub open: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub accepted: u64,
    /// Refused because the port was at `maxConnections`.
    pub refused_full: u64,
    /// Refused because the address was at `maxConnectionsPerIp`.
    pub refused_per_ip: u64,
    pub evicted: u64,
    pub header_timeouts: u64,
    pub idle_timeouts: u64,
    pub closed_at_shutdown: u64,
    pub accept_errors: u64,
    pub malformed_requests: u64,
}

impl From<crate::listen::ListenerStats> for ListenerFigures {
    fn from(stats: crate::listen::ListenerStats) -> Self {
        let crate::listen::ListenerStats {
            addr,
            open,
            max_connections,
            max_connections_per_ip,
            header_read_timeout_ms,
            idle_timeout_ms,
            accepted,
            refused_full,
            refused_per_ip,
            evicted,
            header_timeouts,
            idle_timeouts,
            closed_at_shutdown,
            accept_errors,
            malformed_requests,
        } = stats;
        Self {
            addr,
            open,
            max_connections,
            max_connections_per_ip,
            header_read_timeout_ms,
            idle_timeout_ms,
            accepted,
            refused_full,
            refused_per_ip,
            evicted,
            header_timeouts,
            idle_timeouts,
            closed_at_shutdown,
            accept_errors,
            malformed_requests,
        }
    }
}

// ---------------------------------------------------------------- crypto, system

/// `/api/crypto/status`: algorithms, key sizes measured on the keys in use, backend, node id
/// and mode; never secret material.
///
/// The body itself is `components::crypto`'s (also the `crypto` entry's stats in
/// `/api/health`); this type describes it, and a test checks that it deserializes into this
/// type with no field left over.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "describes components::crypto's JSON (a test checks it), never built here"
)]
pub(crate) struct CryptoStatus {
    /// True only if the start-up self-test passed.
    pub initialized: bool,
    #[schema(examples("Kyber1024-Dilithium5"))]
    pub algorithm: String,
    #[schema(examples("ML-KEM-1024"))]
    pub kem: String,
    #[schema(examples("ML-DSA-87"))]
    pub signature: String,
    pub key_pairs: usize,
    /// ML-KEM-1024 encapsulation key, bytes (1568).
    pub kyber_key_size: Option<usize>,
    /// ML-DSA-87 public key, bytes (2592).
    pub dilithium_key_size: Option<usize>,
    /// ML-DSA-87 signature made by the self-test, bytes (4627).
    pub signature_size: Option<usize>,
    #[schema(examples("aws-lc-rs"))]
    pub backend: String,
    /// `null` when the keys could not be loaded.
    pub node_id: Option<String>,
    /// Whether key files and the data folder were checked with production strictness.
    pub production: bool,
    /// Why the component is not initialized; absent when it is.
    #[serde(default)]
    pub error: Option<String>,
    /// SHA-256 of the ML-DSA-87 public key, hex (what `pqnode id` prints).
    pub signature_key_fingerprint: String,
    /// SHA-256 of the ML-KEM-1024 public key, hex.
    pub kem_key_fingerprint: String,
}

/// `/api/system`: the system monitor's latest sample (refreshed every 5 s).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SystemInfo {
    pub pid: u32,
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_percent: f32,
    pub host_cpus: usize,
    pub host_memory_total_bytes: u64,
    pub host_memory_used_bytes: u64,
    pub load_average_1m: f64,
    /// Descriptors this process holds (Linux; `null` elsewhere).
    pub open_fds: Option<u64>,
    /// Its soft descriptor limit (Linux; `null` elsewhere).
    pub fd_limit: Option<u64>,
    /// The disk the data folder is on.
    pub data_disk_total_bytes: Option<u64>,
    pub data_disk_available_bytes: Option<u64>,
}

impl From<crate::monitor::SystemSnapshot> for SystemInfo {
    fn from(snapshot: crate::monitor::SystemSnapshot) -> Self {
        let crate::monitor::SystemSnapshot {
            pid,
            rss_bytes,
            virtual_bytes,
            cpu_percent,
            host_cpus,
            host_memory_total_bytes,
            host_memory_used_bytes,
            load_average_1m,
            open_fds,
            fd_limit,
            data_disk_total_bytes,
            data_disk_available_bytes,
        } = snapshot;
        Self {
            pid,
            rss_bytes,
            virtual_bytes,
            cpu_percent,
            host_cpus,
            host_memory_total_bytes,
            host_memory_used_bytes,
            load_average_1m,
            open_fds,
            fd_limit,
            data_disk_total_bytes,
            data_disk_available_bytes,
        }
    }
}

// ---------------------------------------------------------------- peers and messages

/// `/api/peers`: P2P connections merged with signaling and DHT figures.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Peers {
    /// Live QUIC connections.
    pub connected: usize,
    /// Distinct nodes known: connections and the DHT routing table.
    pub total: usize,
    pub list: Vec<Peer>,
    pub signaling: SignalingFigures,
    pub dht: DhtFigures,
}

/// One connected peer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Peer {
    /// The peer's node id, proven in the handshake.
    #[schema(value_type = String)]
    pub node_id: NodeId,
    #[schema(value_type = String)]
    pub address: SocketAddr,
    pub direction: Direction,
    /// When the connection was established, Unix milliseconds.
    pub since_unix_ms: u64,
    /// QUIC's current round-trip estimate, milliseconds.
    pub rtt_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    #[schema(examples("MLKEM1024"))]
    pub key_exchange: &'static str,
    #[schema(examples("ML-DSA-87"))]
    pub signature: &'static str,
    /// False when we dialed by address alone and learned the id from the handshake.
    pub pinned: bool,
}

/// Who dialed a connection.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

impl From<pqnode_net::PeerInfo> for Peer {
    fn from(peer: pqnode_net::PeerInfo) -> Self {
        let pqnode_net::PeerInfo {
            node_id,
            address,
            direction,
            since_unix_ms,
            rtt_ms,
            bytes_in,
            bytes_out,
            key_exchange,
            signature,
            pinned,
        } = peer;
        Self {
            node_id,
            address,
            direction: match direction {
                pqnode_net::Direction::Inbound => Direction::Inbound,
                pqnode_net::Direction::Outbound => Direction::Outbound,
            },
            since_unix_ms,
            rtt_ms,
            bytes_in,
            bytes_out,
            key_exchange,
            signature,
            pinned,
        }
    }
}

/// The signaling server's figures, as `/api/peers` shows them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignalingFigures {
    /// Open WebSocket connections, registered or not.
    pub connections: usize,
    pub peers: usize,
    pub connected_peers: usize,
    pub dht_nodes: usize,
    pub dht_buckets: usize,
}

/// The DHT's three headline figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtFigures {
    pub total_nodes: usize,
    pub buckets_used: usize,
    pub bootstrap_nodes: usize,
}

/// `POST /api/messages`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMessage {
    /// The receiving node's id, 40 hex characters.
    pub to: String,
    /// UTF-8 text.
    #[schema(max_length = 65536)]
    pub body: String,
}

/// The receiving node committed the message to its store.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Delivered {
    #[schema(value_type = String)]
    pub to: NodeId,
    /// The receiver's clock when it stored the message, Unix milliseconds.
    pub delivered_at: u64,
    /// Always true: an answer is only given once the message is on the receiver's disk.
    pub stored: bool,
}

/// `GET /api/messages`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListMessages {
    /// Messages per page.
    #[param(default = 100, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next` of an earlier page: lists the messages received before that one.
    pub before: Option<String>,
}

/// One page of received messages, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MessagePage {
    pub messages: Vec<Message>,
    /// Messages in the whole log.
    pub total: u64,
    /// Pass as `before` for the next (older) page; `null` on the last page.
    pub next: Option<String>,
}

/// A received message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Message {
    /// Its position in the log: a cursor for `before`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The sender's node id, authenticated by the post-quantum TLS handshake.
    #[schema(value_type = String)]
    pub from: NodeId,
    pub body: String,
    /// The sender's clock (informative), Unix milliseconds.
    pub sent_at: u64,
    /// This node's clock, Unix milliseconds.
    pub received_at: u64,
}

impl From<pqnode_messaging::MessagePage> for MessagePage {
    fn from(page: pqnode_messaging::MessagePage) -> Self {
        let pqnode_messaging::MessagePage {
            messages,
            total,
            next,
        } = page;
        let messages = messages
            .into_iter()
            .map(|m| {
                let pqnode_messaging::StoredMessage {
                    id,
                    from,
                    body,
                    sent_at,
                    received_at,
                } = m;
                Message {
                    id,
                    from,
                    body,
                    sent_at,
                    received_at,
                }
            })
            .collect();
        Self {
            messages,
            total,
            next,
        }
    }
}

// ---------------------------------------------------------------- DHT

/// `/api/dht/nodes`: the routing table and the spec's `stats`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DhtNodes {
    pub nodes: Vec<DhtNode>,
    pub stats: DhtNodeStats,
}

/// One routing-table entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtNode {
    #[schema(value_type = String)]
    pub id: NodeId,
    #[schema(value_type = String)]
    pub addr: SocketAddr,
    pub bucket: u8,
    pub state: NodeState,
    /// Milliseconds since it last answered (or sent us a request).
    pub last_seen_ms_ago: u64,
    /// Smoothed round-trip time.
    pub rtt_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NodeState {
    Good,
    Questionable,
    Bad,
}

impl From<pqnode_dht::NodeInfo> for DhtNode {
    fn from(node: pqnode_dht::NodeInfo) -> Self {
        let pqnode_dht::NodeInfo {
            id,
            addr,
            bucket,
            state,
            last_seen_ms_ago,
            rtt_ms,
        } = node;
        Self {
            id,
            addr,
            bucket,
            state: match state {
                pqnode_dht::NodeState::Good => NodeState::Good,
                pqnode_dht::NodeState::Questionable => NodeState::Questionable,
                pqnode_dht::NodeState::Bad => NodeState::Bad,
            },
            last_seen_ms_ago,
            rtt_ms,
        }
    }
}

/// The spec's `{totalNodes, bucketsUsed, bootstrapNodes}` and a few more.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtNodeStats {
    pub total_nodes: usize,
    pub buckets_used: usize,
    pub bootstrap_nodes: usize,
    pub good_nodes: usize,
    pub questionable_nodes: usize,
    pub bad_nodes: usize,
    pub records_stored: usize,
    /// Mean rounds per finished lookup.
    pub mean_lookup_rounds: f64,
}

impl From<&pqnode_dht::DhtStats> for DhtNodeStats {
    fn from(stats: &pqnode_dht::DhtStats) -> Self {
        Self {
            total_nodes: stats.total_nodes,
            buckets_used: stats.buckets_used,
            bootstrap_nodes: stats.bootstrap_nodes,
            good_nodes: stats.good_nodes,
            questionable_nodes: stats.questionable_nodes,
            bad_nodes: stats.bad_nodes,
            records_stored: stats.records_stored,
            mean_lookup_rounds: stats.mean_lookup_rounds,
        }
    }
}

/// `/api/dht/buckets`: the buckets that hold something.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DhtBuckets {
    pub buckets: Vec<DhtBucket>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtBucket {
    pub index: u8,
    pub entries: usize,
    pub replacements: usize,
    pub last_refresh_ms_ago: u64,
}

impl From<pqnode_dht::BucketInfo> for DhtBucket {
    fn from(bucket: pqnode_dht::BucketInfo) -> Self {
        let pqnode_dht::BucketInfo {
            index,
            entries,
            replacements,
            last_refresh_ms_ago,
        } = bucket;
        Self {
            index,
            entries,
            replacements,
            last_refresh_ms_ago,
        }
    }
}

/// How a lookup ended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Lookup {
    /// The id looked up.
    #[schema(value_type = String)]
    pub target: NodeId,
    /// The closest nodes that answered, closest first (at most K).
    pub closest: Vec<Contact>,
    /// Deepest hop that answered (1 = a node from our own table).
    pub rounds: u32,
    pub requests: u32,
    /// Requests that timed out or failed.
    pub failures: u32,
    /// Milliseconds.
    pub elapsed: u64,
}

/// A node by id and address.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Contact {
    #[schema(value_type = String)]
    pub id: NodeId,
    #[schema(value_type = String)]
    pub addr: SocketAddr,
}

fn millis(elapsed: std::time::Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl From<pqnode_overlay::LookupOutcome> for Lookup {
    fn from(outcome: pqnode_overlay::LookupOutcome) -> Self {
        let pqnode_overlay::LookupOutcome {
            target,
            closest,
            rounds,
            requests,
            failures,
            elapsed,
        } = outcome;
        Self {
            target,
            closest: closest
                .into_iter()
                .map(|c| Contact {
                    id: c.id,
                    addr: c.addr,
                })
                .collect(),
            rounds,
            requests,
            failures,
            elapsed: millis(elapsed),
        }
    }
}

/// `POST /api/dht/records`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PublishRecord {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(max_length = 16384)]
    pub value: String,
    /// Seconds the record lives.
    #[schema(default = 3600, minimum = 1, maximum = 172800)]
    pub ttl_secs: Option<u64>,
}

/// A record published: its key, derived from (this node's id, name).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Published {
    #[schema(value_type = String)]
    pub key: NodeId,
    /// How many of the K nodes closest to the key accepted it (this node keeps its own copy
    /// in any case).
    pub stored: usize,
    /// Milliseconds.
    pub elapsed: u64,
}

impl From<pqnode_overlay::PutOutcome> for Published {
    fn from(outcome: pqnode_overlay::PutOutcome) -> Self {
        let pqnode_overlay::PutOutcome {
            key,
            stored,
            elapsed,
        } = outcome;
        Self {
            key,
            stored,
            elapsed: millis(elapsed),
        }
    }
}

/// A verified record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DhtRecord {
    #[schema(value_type = String)]
    pub key: NodeId,
    pub name: String,
    /// Node id of the ML-DSA-87 key that signed it.
    #[schema(value_type = String)]
    pub publisher: NodeId,
    pub seq: u64,
    pub ttl_secs: u64,
    /// The value, when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value in hex, when it is not UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_hex: Option<String>,
}

impl From<&pqnode_dht::Record> for DhtRecord {
    fn from(record: &pqnode_dht::Record) -> Self {
        let (value, value_hex) = match std::str::from_utf8(record.value()) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(hex::encode(record.value()))),
        };
        Self {
            key: *record.key(),
            name: String::from_utf8_lossy(record.name()).into_owned(),
            publisher: record.publisher().node_id(),
            seq: record.seq(),
            ttl_secs: record.ttl().as_secs(),
            value,
            value_hex,
        }
    }
}

/// `POST /api/dht/contacts`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddContact {
    /// `<node-id>@<host>:<port>`
    pub contact: String,
}

/// The contact answered and entered the routing table.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactAdded {
    pub added: String,
    /// The lookup of our own id through it.
    pub lookup: Lookup,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContactRemoved {
    #[schema(value_type = String)]
    pub removed: NodeId,
}

// ---------------------------------------------------------------- documents

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

// ---------------------------------------------------------------- search

/// `/api/ai/search`'s query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// The query text.
    pub q: String,
    /// Results wanted.
    #[serde(default = "default_k")]
    #[param(default = 10, minimum = 1)]
    pub k: usize,
}

fn default_k() -> usize {
    10
}

/// Best first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SearchResults {
    pub results: Vec<SearchHit>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchHit {
    /// `doc:<name>` for a CRDT document, `api:<id>` for text indexed through the API.
    pub doc_id: String,
    /// BM25 score, or the reciprocal-rank-fusion score when embeddings are on.
    pub score: f32,
    /// A short extract around the query's terms.
    pub snippet: String,
}

impl From<pqnode_search::Hit> for SearchHit {
    fn from(hit: pqnode_search::Hit) -> Self {
        let pqnode_search::Hit {
            doc_id,
            score,
            snippet,
        } = hit;
        Self {
            doc_id,
            score,
            snippet,
        }
    }
}

/// `POST /api/ai/index`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IndexText {
    /// Indexed as `api:<id>`, replacing what was there.
    pub id: String,
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Indexed {
    /// `api:<id>`.
    pub doc_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IndexRemoved {
    /// `api:<id>`.
    pub removed: String,
}
