//! Signaling across nodes: presence and topic membership as signed DHT
//! provider entries, relay envelopes and withdrawals carried one hop over QUIC.
//!
//! Presence of peer `p` is this node's provider entry under `p`'s
//! [`presence_key`], signed by this node's ML-DSA-87 key, whose value is `p`'s
//! own proof that it registered here. Every DHT node checks that proof before
//! it stores the entry ([`PresenceEntries`]), and the signaling server checks
//! it again before it routes. When `p` leaves, the entry is replaced by a
//! withdrawal, and the nodes that relayed to `p` through us are told over
//! [`SIGNALING_WITHDRAW`]. A topic is one provider entry per node under
//! `H("pqnode/signaling-topic/v1" || topic)` whose value lists that node's
//! peers in the topic (20 bytes each): a claim only, from which no route is
//! learned.
//!
//! [`directory`] keeps this node's entries in the DHT and reads the others'; [`quic`]
//! carries envelopes and withdrawals between nodes and answers them.

mod directory;
mod quic;

pub use directory::{DhtDirectory, PresenceEntries};
pub use quic::{QuicForwarder, RelayHandler, SIGNALING_RELAY, SIGNALING_WITHDRAW, WithdrawHandler};

use pqnode_signaling::federation::FederationError;

fn fed(e: impl std::fmt::Display) -> FederationError {
    FederationError::new(e)
}
