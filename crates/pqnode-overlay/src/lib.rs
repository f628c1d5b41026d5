//! pqnode's DHT on the wire: the network driver of the sans-IO Kademlia core.
//!
//! What it is for: an [`Overlay`] runs one [`pqnode_dht::Node`] over the node's post-quantum
//! QUIC [`Network`](pqnode_net::Network). It answers [`DHT`] requests from other
//! nodes, sends the requests the core asks for, fires the core's timers (request timeouts,
//! bucket refresh every 60 s, pings every 30 s, republishing), bootstraps from configured
//! seeds, keeps the routing table in the node's [`Store`](pqnode_store::Store) across restarts,
//! and offers an async API (lookups, signed records, provider entries, stats, health) that is
//! cheap to clone and share. It is also the network's [`AddressLookup`](pqnode_net::AddressLookup):
//! a request to a node whose address the network does not know finds it through the DHT.
//!
//! What it is not: the Kademlia logic (that is `pqnode-dht`, which this crate only drives),
//! nor a transport (that is `pqnode-net`). It does not parse the DHT wire format itself
//! either: the core's codec does.
//!
//! One task owns the core; nothing it runs waits on I/O. Each outbound request is a task of
//! its own, and inbound requests reach the core through a bounded queue.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use pqnode_crypto::Identity;
//! use pqnode_net::{NetConfig, Network};
//! use pqnode_overlay::{Overlay, OverlayConfig};
//! use pqnode_store::Store;
//!
//! let identity = Arc::new(Identity::generate()?);
//! let network = Network::start(&identity, NetConfig::default()).await?;
//! let store = Store::open("/var/lib/pqnode/pqnode.redb").await?;
//! let config = OverlayConfig::new(identity.clone())
//!     .with_seeds(["seed.example.org:4001".parse()?]);
//! let dht = Overlay::start(network.clone(), Some(store.clone()), config).await?;
//!
//! let published = dht.publish(b"presence", b"ws://198.51.100.7:3001", Duration::from_secs(3600)).await?;
//! let record = dht.get_record(published.key).await?;
//! let neighbours = dht.lookup(identity.node_id()).await?.closest;
//! println!("{} nodes, {:?}, {record:?}", neighbours.len(), dht.stats().await?.total_nodes);
//!
//! dht.shutdown().await; // saves the table and the records held
//! network.shutdown().await;
//! store.close().await?;
//! # Ok(()) }
//! ```

mod actor;
mod address;
mod command;
mod config;
mod error;
mod handler;
mod metrics;
mod outcome;
mod overlay;
mod persist;
mod rate;

pub use command::DhtSnapshot;
pub use config::OverlayConfig;
pub use error::OverlayError;
pub use outcome::{LookupOutcome, PutOutcome};
pub use overlay::Overlay;
pub use rate::PeerRate;

/// The DHT's protocol on the node's QUIC network: a body is one message of the core's codec,
/// capped where the codec caps it.
pub const DHT: pqnode_net::Protocol =
    pqnode_net::Protocol::new(1, "DHT", pqnode_dht::codec::MAX_MESSAGE_LEN);

pub use pqnode_dht::{
    BucketInfo, Contact, DhtStats, Key, NodeInfo, ProviderRecord, Record, record_key,
};
