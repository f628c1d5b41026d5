//! pqnode's Kademlia DHT.
//!
//! What it is for: finding nodes and storing small signed records in a network of pqnode
//! nodes. Ids are 160-bit [`NodeId`](pqnode_crypto::NodeId)s bound to ML-DSA-87 keys; the
//! routing table has 160 buckets of K = 20 with BEP 5 liveness (good / questionable / bad), a
//! replacement cache and a per-subnet Sybil limit; lookups are iterative with α = 3; records and
//! provider entries are signed by their publisher and verified by every node.
//!
//! What it is not: a network stack. [`Node`] is a sans-IO state machine in the shape of
//! `quinn-proto`: the caller feeds it requests, responses and the time, and takes requests to
//! send and events out. It owns no socket, no clock and no task, so the same code runs under
//! the QUIC driver in `pqnode-net` and inside [`sim`], the deterministic many-node simulator.
//! [`codec`] turns messages into the bytes of `proto/dht.proto`.

mod config;
mod contact;
mod distance;
mod lookup;
mod message;
mod node;
mod record;
mod stats;
mod store;
mod table;
mod time;

pub mod codec;
pub mod sim;

#[allow(clippy::all, missing_docs, unreachable_pub)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/pqnode.dht.v1.rs"));
}

pub use config::Config;
pub use contact::{Contact, Peer};
pub use distance::{Distance, ID_BITS, random_id_in_bucket};
pub use lookup::LookupStats;
pub use message::{Request, Response, RpcKind};
pub use node::{Event, Node, QueryId, QueryResult, RequestId, Transmit};
pub use pqnode_crypto::NodeId;
pub use record::{
    Key, MAX_NAME_LEN, MAX_PROVIDER_VALUE_LEN, MAX_TTL, MAX_VALUE_LEN, PROVIDER_DOMAIN,
    ProviderRecord, RECORD_DOMAIN, Record, RecordError, record_key,
};
pub use stats::{BucketInfo, Counters, DhtStats, NodeInfo, RpcCounts};
pub use store::{RecordStore, StoreError, StoreLimits};
pub use table::{BucketView, EntryView, Failure, Insert, NodeState, RoutingTable, TableConfig};
pub use time::Instant;
