//! What other crates plug in: request handlers per protocol, and the sink
//! that receives direct messages.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use pqnode_crypto::NodeId;

use crate::wire::pb::FailureCode;

/// Who sent a request, as the connection it arrived on proves it — never a
/// claim made inside the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The peer's node id, proven in the TLS handshake.
    pub node_id: NodeId,
    /// The connection's remote address, IPv4 peers shown as plain IPv4. With
    /// one QUIC socket per node this is also where the peer can be dialed.
    pub addr: SocketAddr,
}

/// Answers requests of one protocol from an authenticated [`Caller`].
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        caller: Caller,
        payload: Bytes,
    ) -> impl Future<Output = Result<Bytes, HandlerError>> + Send;
}

/// Why a handler did not answer; sent to the requester as a `Failure`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl HandlerError {
    pub(crate) fn code(&self) -> FailureCode {
        match self {
            HandlerError::BadRequest(_) => FailureCode::BadRequest,
            HandlerError::Unavailable(_) => FailureCode::Unavailable,
            HandlerError::Internal(_) => FailureCode::Internal,
        }
    }

    pub(crate) fn detail(&self) -> &str {
        match self {
            HandlerError::BadRequest(d)
            | HandlerError::Unavailable(d)
            | HandlerError::Internal(d) => d,
        }
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`Handler`], so handlers of different types share one registry.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn handle_dyn(
        &self,
        caller: Caller,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>>;
}

impl<H: Handler> DynHandler for H {
    fn handle_dyn(
        &self,
        caller: Caller,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<Bytes, HandlerError>> {
        Box::pin(self.handle(caller, payload))
    }
}

/// A direct message as it arrives: the sender is the authenticated peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub from: NodeId,
    pub body: Bytes,
    /// The sender's clock; informative only.
    pub sent_at: SystemTime,
    /// Our clock when the message arrived.
    pub received_at: SystemTime,
}

/// Where received direct messages go (the binary stores them). `deliver`
/// runs on the connection's task: keep it quick (push to a channel, or hand
/// the write to a store thread).
pub trait MessageSink: Send + Sync + 'static {
    fn deliver(&self, message: InboundMessage) -> Result<(), HandlerError>;
}
