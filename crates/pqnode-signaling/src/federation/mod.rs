//! The seam between this node's signaling server and the rest of the network.
//!
//! The server only knows its own WebSocket sessions. Two traits connect it to
//! other nodes, and the binary implements them over the DHT and QUIC:
//!
//! - [`Directory`]: where peers are. The server publishes each local peer's
//!   own [`PresenceProof`] (and refreshes it while the peer stays connected),
//!   withdraws it on disconnect, and asks for the proofs of a non-local peer.
//! - [`Forwarder`]: talks to another node, one hop: hands it one
//!   [`RelayEnvelope`] (the receiving node calls
//!   [`crate::SignalingServer::deliver_remote`]), or tells it that a peer left
//!   this node ([`Withdrawal`], handled by [`crate::SignalingServer::withdrawn`]).
//!
//! Nothing a directory returns is believed as such: the server routes to a
//! node only on the peer's own signature that it registered there (a
//! [`PresenceProof`]), every envelope carries its sender's proof, and a
//! withdrawal ends only routes through the node that sends it. So no node can
//! speak for a peer it does not serve. In the DHT, storers check presence
//! entries too ([`check_presence_entry`]), so unprovable claims cannot crowd
//! out real ones.
//!
//! [`LocalOnly`] implements both for a standalone node: nothing is published,
//! nothing is found elsewhere.

mod entry;
pub mod wire;

pub use entry::{EntryError, check_presence_entry, presence_key};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pqnode_crypto::NodeId;
use serde::{Deserialize, Serialize};

use crate::presence::PresenceProof;
use crate::protocol::RelayKind;
use pqnode_crypto::PeerId;

/// A boxed, sendable future: keeps both traits object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A directory or forwarding failure. The implementation's error types stay on its side of
/// the seam: this carries the error value itself, boxed, and reads as it does.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct FederationError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl FederationError {
    /// A failure known only as text. Prefer [`from_error`](Self::from_error) when there is
    /// an error value: it stays reachable for downcasting.
    pub fn new(reason: impl fmt::Display) -> Self {
        Self(reason.to_string().into())
    }

    /// Wraps the implementation's own error (a DHT or QUIC failure, a decoding error).
    pub fn from_error(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }

    /// The wrapped error, to downcast; for a failure made with [`new`](Self::new), an
    /// opaque error whose message is the text.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// A peer attached to another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RemotePeer {
    /// The peer.
    pub peer_id: PeerId,
    /// The node it is attached to.
    pub node_id: NodeId,
}

/// A registration that ended: `peer`, registered at the announcing node with the proof
/// made at `ts_ms`, left it. Speaks for the announcing node only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The peer that left.
    pub peer: PeerId,
    /// The `ts` of the registration that ended, Unix milliseconds: routes proven by a newer
    /// registration are not affected.
    pub ts_ms: u64,
}

/// Where peers are: presence entries in the DHT, in the real node.
pub trait Directory: Send + Sync + 'static {
    /// Announces that the peer of `proof` is attached to this node and in
    /// `topics`. Called at registration, whenever its topics change or it
    /// registers again, and every `presence_refresh` while it stays connected.
    fn publish_presence(
        &self,
        proof: Arc<PresenceProof>,
        topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>>;

    /// The registration of `withdrawal.peer` at this node ended.
    fn withdraw(&self, withdrawal: Withdrawal) -> BoxFuture<'_, Result<(), FederationError>>;

    /// The proofs other nodes published for `peer` (at most a few, unverified:
    /// the server checks each before it routes).
    fn locate(&self, peer: PeerId) -> BoxFuture<'_, Result<Vec<PresenceProof>, FederationError>>;

    /// Peers in `topic` on any node (entries for this node are ignored).
    fn discover(&self, topic: String) -> BoxFuture<'_, Result<Vec<RemotePeer>, FederationError>>;
}

/// Carries messages to other nodes (one hop, no retries across nodes).
pub trait Forwarder: Send + Sync + 'static {
    /// Hands `envelope` to `node`, which answers with its
    /// [`crate::SignalingServer::deliver_remote`] outcome.
    fn forward(
        &self,
        node: NodeId,
        envelope: RelayEnvelope,
    ) -> BoxFuture<'_, Result<DeliveryOutcome, FederationError>>;

    /// Tells `node`, which relayed to a local peer through this node, that the
    /// peer left: `node` stops routing to it through us at once.
    fn withdrawn(
        &self,
        node: NodeId,
        withdrawal: Withdrawal,
    ) -> BoxFuture<'_, Result<(), FederationError>>;
}

/// A relay message on its way between two nodes (on the wire: [`wire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayEnvelope {
    /// Unique per message: receivers drop repeats.
    pub msg_id: MessageId,
    /// The node the sender is attached to; replies go back there.
    pub origin: NodeId,
    /// The sending peer.
    pub from: PeerId,
    /// `from`'s registration at `origin`, signed by `from`: the receiver
    /// refuses an envelope without a valid one.
    pub from_proof: PresenceProof,
    /// The addressee.
    pub to: PeerId,
    /// Offer, answer, candidate or bye.
    pub kind: RelayKind,
    /// The sender's connection id, relayed as given.
    pub sid: Option<String>,
    /// The sender's `data` as JSON text, relayed byte for byte.
    pub data: String,
}

/// A random 128-bit message id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    pub(crate) fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes)?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", hex::encode(self.0))
    }
}

/// What became of an envelope at the receiving node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Queued to the addressee's WebSocket.
    Delivered,
    /// Already seen (same `msg_id`); not delivered again.
    Duplicate,
    /// The addressee is not attached to the receiving node.
    NotFound,
    /// The addressee's queue is full.
    Busy,
}

/// A standalone node: no directory, no other nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalOnly;

impl Directory for LocalOnly {
    fn publish_presence(
        &self,
        _proof: Arc<PresenceProof>,
        _topics: Vec<String>,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Ok(()) })
    }

    fn withdraw(&self, _withdrawal: Withdrawal) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Ok(()) })
    }

    fn locate(&self, _peer: PeerId) -> BoxFuture<'_, Result<Vec<PresenceProof>, FederationError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn discover(&self, _topic: String) -> BoxFuture<'_, Result<Vec<RemotePeer>, FederationError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

impl Forwarder for LocalOnly {
    fn forward(
        &self,
        _node: NodeId,
        _envelope: RelayEnvelope,
    ) -> BoxFuture<'_, Result<DeliveryOutcome, FederationError>> {
        // Unreachable in practice (LocalOnly::locate never names a node), and
        // the honest answer if it were reached.
        Box::pin(async { Ok(DeliveryOutcome::NotFound) })
    }

    fn withdrawn(
        &self,
        _node: NodeId,
        _withdrawal: Withdrawal,
    ) -> BoxFuture<'_, Result<(), FederationError>> {
        Box::pin(async { Ok(()) })
    }
}
