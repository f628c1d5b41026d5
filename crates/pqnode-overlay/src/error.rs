//! Errors returned by [`Overlay`](crate::Overlay).

use pqnode_dht::RecordError;
use pqnode_net::RegisterError;
use pqnode_store::StoreError;

/// Why the overlay did not start, or an operation on it did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OverlayError {
    /// The network refused the DHT handler.
    #[error("could not register the DHT protocol handler: {0}")]
    Register(#[from] RegisterError),
    /// The identity in the configuration is not the one the network authenticates with.
    #[error("the overlay identity {overlay} is not the network's identity {network}")]
    IdentityMismatch {
        /// The node id of the identity in [`OverlayConfig`](crate::OverlayConfig).
        overlay: pqnode_crypto::NodeId,
        /// The node id the network proves in its TLS handshakes.
        network: pqnode_crypto::NodeId,
    },
    /// A setting that would make the DHT spin or never act.
    #[error("invalid DHT setting: {0}")]
    Config(&'static str),
    /// The record or provider entry could not be signed or did not verify.
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    /// Reading or writing the saved routing table failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The DHT task has stopped (after [`Overlay::shutdown`](crate::Overlay::shutdown)).
    #[error("the DHT has stopped")]
    Stopped,
    /// A contact named without its node id: the handshake could not check who answers.
    #[error("a contact must be given as <node-id>@<host>:<port>")]
    Unpinned,
    /// The contact's host did not resolve to an address.
    #[error("the contact's address does not resolve")]
    Unresolved,
    /// The DHT task finished an operation with the result of another kind of operation.
    #[error("the DHT returned a result of the wrong kind")]
    WrongResult,
}
