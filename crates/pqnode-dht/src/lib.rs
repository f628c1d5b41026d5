//! pqnode's Kademlia DHT.
//!
//! What it is for: finding nodes and storing small signed records in a network of pqnode
//! nodes. Ids are 160-bit [`NodeId`]s bound to ML-DSA-87 keys; the
//! routing table has 160 buckets of K = 20 with BEP 5 liveness (good / questionable / bad), a
//! replacement cache and a per-subnet Sybil limit; lookups are iterative with α = 3; records and
//! provider entries are signed by their publisher and verified by every node.
//!
//! What it is not: a network stack. [`Node`] is a sans-IO state machine in the shape of
//! `quinn-proto`: the caller feeds it requests, responses and the time, and takes requests to
//! send and events out. It owns no socket, no clock and no task, so the same code runs under
//! the QUIC driver in `pqnode-net` and inside [`sim`], the deterministic many-node simulator.
//! [`codec`] turns messages into the bytes of `proto/dht.proto`.
//!
//! # Driving a node
//!
//! A driver owns one [`Node`] and moves bytes; everything else happens inside. Here two nodes
//! are wired back to back in memory, with every message passing through the wire codec as it
//! would over a QUIC stream:
//!
//! ```
//! use std::net::SocketAddr;
//! use pqnode_dht::{codec, Config, Contact, Event, Instant, Node, NodeId, Peer, QueryResult};
//!
//! /// Delivers everything `from` wants to send to `to`; false if there was nothing.
//! fn exchange(from: &mut Node, from_addr: SocketAddr, to: &mut Node, now: Instant) -> Result<bool, codec::CodecError> {
//!     let mut sent = false;
//!     while let Some(transmit) = from.poll_transmit() {
//!         sent = true;
//!         let request = codec::decode_request(&codec::encode_request(&transmit.request))?;
//!         let response = to.handle_request(now, Contact::new(*from.local_id(), from_addr), request);
//!         let response = codec::decode_response(&codec::encode_response(&response))?;
//!         // The transport says who answered (TLS authenticated the key behind this id) and
//!         // from where; in memory, that is where the request went.
//!         let responder = Contact::new(*to.local_id(), transmit.to.addr);
//!         from.handle_response(now, transmit.id, responder, response);
//!     }
//!     Ok(sent)
//! }
//!
//! let (a_addr, b_addr) = (SocketAddr::from(([127, 0, 0, 1], 4001)), SocketAddr::from(([127, 0, 0, 1], 4002)));
//! let (a_id, b_id) = (NodeId::from_bytes([1; 20]), NodeId::from_bytes([2; 20]));
//! let now = Instant::ZERO;
//! let mut a = Node::new(a_id, Config::default(), 1, now);
//! let mut b = Node::new(b_id, Config::default(), 2, now);
//!
//! a.bootstrap(now, [Peer::pinned(b_id, b_addr)]);
//! while exchange(&mut a, a_addr, &mut b, now)? | exchange(&mut b, b_addr, &mut a, now)? {}
//!
//! let Some(Event::QueryFinished { result: QueryResult::Bootstrap { closest }, .. }) = a.poll_event() else {
//!     panic!("bootstrap did not finish");
//! };
//! assert_eq!(closest, vec![Contact::new(b_id, b_addr)]);
//! // b pinged a back when it first heard from it, so each is in the other's table.
//! assert!(a.table().contains(&b_id) && b.table().contains(&a_id));
//! # Ok::<(), codec::CodecError>(())
//! ```
//!
//! A real driver also sleeps until [`Node::poll_timeout`] and then calls
//! [`Node::handle_timeout`], and reports failed connections with [`Node::handle_failure`].

mod config;
mod contact;
mod distance;
mod lookup;
mod message;
mod node;
mod peers;
mod record;
mod rtt;
mod stats;
mod store;
mod table;
mod time;
mod validate;

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
    Key, MAX_NAME_LEN, MAX_PROVIDER_VALUE_LEN, MAX_TTL, MAX_VALIDATED_PROVIDER_VALUE_LEN,
    MAX_VALUE_LEN, PROVIDER_DOMAIN, ProviderRecord, RECORD_DOMAIN, Record, RecordError, record_key,
};
pub use stats::{BucketInfo, Counters, DhtStats, NodeInfo, RpcCounts};
pub use store::{RecordStore, StoreError, StoreLimits};
pub use table::{BucketView, EntryView, Failure, Insert, NodeState, RoutingTable, TableConfig};
pub use time::Instant;
pub use validate::{ProviderValidator, Typing, Validators, Verdict};
