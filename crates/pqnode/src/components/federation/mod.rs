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
//! [`Federation`] is the one place the pieces meet: [`directory`] keeps this node's
//! entries in the DHT and reads the others'; [`quic`] carries envelopes and withdrawals
//! between nodes and answers them.

mod directory;
mod quic;

use std::sync::Arc;

use anyhow::Context;
use pqnode_net::Network;
use pqnode_overlay::Overlay;
use pqnode_signaling::SignalingServer;
use pqnode_signaling::federation::{Directory, Forwarder};

use directory::DhtDirectory;
pub(crate) use directory::PresenceEntries;
use quic::{QuicForwarder, RelayHandler, SIGNALING_RELAY, SIGNALING_WITHDRAW, WithdrawHandler};

/// Signaling federated over the DHT and QUIC: what the signaling server is built with
/// ([`Federation::directory`], [`Federation::forwarder`]), and, once it runs, the protocols
/// through which other nodes reach its peers ([`Federation::attach`]).
pub(crate) struct Federation {
    /// Where presence is published and looked up: signed provider entries in the DHT.
    pub directory: Arc<dyn Directory>,
    /// How envelopes and withdrawals reach other nodes: one QUIC request each.
    pub forwarder: Arc<dyn Forwarder>,
    /// The DHT, for the figures shown with signaling's stats.
    pub overlay: Overlay,
    network: Network,
}

impl Federation {
    pub(crate) fn new(overlay: &Overlay, network: &Network) -> Self {
        Self {
            directory: Arc::new(DhtDirectory::new(overlay.clone())),
            forwarder: Arc::new(QuicForwarder {
                network: network.clone(),
            }),
            overlay: overlay.clone(),
            network: network.clone(),
        }
    }

    /// Registers [`SIGNALING_RELAY`] and [`SIGNALING_WITHDRAW`], answered by `signaling`:
    /// from here on, other nodes' envelopes reach its peers.
    pub(crate) fn attach(&self, signaling: &SignalingServer) -> anyhow::Result<()> {
        let relay = RelayHandler {
            signaling: signaling.clone(),
        };
        self.network
            .register(SIGNALING_RELAY, relay)
            .context("cannot register the signaling relay protocol")?;
        let withdraw = WithdrawHandler {
            signaling: signaling.clone(),
        };
        self.network
            .register(SIGNALING_WITHDRAW, withdraw)
            .context("cannot register the signaling withdrawal protocol")?;
        Ok(())
    }
}
