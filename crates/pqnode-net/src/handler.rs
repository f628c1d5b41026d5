//! What other crates plug in: a request handler per registered protocol, and
//! the address lookup the transport asks when it must dial a node it has no
//! address for.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

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
    /// Answers one request of `caller`: the reply body, or why not (sent back as a
    /// `Failure`). The transport has already checked the frame and the protocol's cap.
    fn handle(
        &self,
        caller: Caller,
        payload: Bytes,
    ) -> impl Future<Output = Result<Bytes, HandlerError>> + Send;
}

/// Why a handler did not answer; sent to the requester as a `Failure`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The request is malformed or not allowed; retrying it will not help.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// This node cannot serve it now (its store failed, or it rate-limits the caller):
    /// the requester may retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault on this node.
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

/// The boxed future [`AddressLookup`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// Finds where a node can be dialed when the transport knows no address for
/// it: the seam through which discovery (the DHT) serves every dial by node
/// id, so no caller writes its own "look up, then retry".
pub trait AddressLookup: Send + Sync + 'static {
    /// Where `node` can be reached now, or `None` if it cannot be found.
    fn find(&self, node: NodeId) -> BoxFuture<'_, Option<SocketAddr>>;
}
