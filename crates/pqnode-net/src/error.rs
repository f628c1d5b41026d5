//! Errors returned to callers of [`crate::Network`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pqnode_crypto::NodeId;

use crate::wire::{FrameError, Protocol};

/// The error beneath a dial or request failure (an I/O, TLS or QUIC error), shared
/// because one failed dial answers every request that waited for it.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

pub(crate) fn cause(error: impl std::error::Error + Send + Sync + 'static) -> Cause {
    Arc::new(error)
}

/// Starting the endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// This node's identity could not be made into a TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The UDP socket could not be bound (address in use, no permission).
    #[error("could not bind UDP {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// A limit in [`Limits`](crate::Limits) that QUIC cannot take; says which.
    #[error("invalid transport setting: {0}")]
    Config(String),
}

/// Connecting to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// A dial by node id alone, and neither the table nor the
    /// [`AddressLookup`](crate::AddressLookup) knows an address.
    #[error("no known address for {0}")]
    NoAddress(NodeId),
    /// The peer's host name did not resolve, or resolved to no address.
    #[error("could not resolve {host}: {source}")]
    Resolve {
        /// The name as configured.
        host: String,
        /// What the resolver reported.
        #[source]
        source: Cause,
    },
    /// The node id dialed is this node's own.
    #[error("that is this node's own id")]
    SelfDial,
    /// This node is at its connection cap. Load: try later.
    #[error("connection limit reached")]
    TooManyConnections,
    /// The node is stopping and dials no more.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The handshake failed: the peer proved another key than the one for the node id
    /// dialed, offered no post-quantum algorithm, or refused us.
    #[error("handshake with {addr} refused: {reason}")]
    Refused {
        /// The address dialed.
        addr: SocketAddr,
        /// A stable label (`wrong_node_id`, `no_common_algorithms`, ...), a colon, and the
        /// detail.
        reason: String,
    },
    /// The peer refused the connection before any handshake: it is at one of
    /// its connection caps (or closing). Load, not a fault: try later.
    #[error("{addr} refused the connection: it is at its connection limits")]
    Busy {
        /// The address dialed.
        addr: SocketAddr,
    },
    /// No handshake within [`Limits::handshake_timeout`](crate::Limits::handshake_timeout).
    #[error("handshake with {addr} timed out")]
    Timeout {
        /// The address dialed.
        addr: SocketAddr,
    },
    /// The connection could not even be started (a TLS configuration or QUIC endpoint
    /// error).
    #[error("could not start a connection to {addr}: {source}")]
    Connect {
        /// The address dialed.
        addr: SocketAddr,
        /// What TLS or quinn reported.
        #[source]
        source: Cause,
    },
    /// Dials to this peer failed recently; requests fail fast until the backoff ends.
    #[error("recent dials failed; next attempt allowed in {retry_in:?}")]
    Backoff {
        /// Until the next dial is allowed.
        retry_in: std::time::Duration,
    },
}

impl DialError {
    /// True when the peer (or the path to it) failed, as opposed to a local
    /// condition: these start or extend the dial backoff.
    pub fn is_peer_failure(&self) -> bool {
        matches!(
            self,
            DialError::Refused { .. }
                | DialError::Busy { .. }
                | DialError::Timeout { .. }
                | DialError::Connect { .. }
        )
    }

    /// `Some` when the dial failed for load rather than a fault (our caps,
    /// the peer's caps, the backoff after recent failures): how long a caller
    /// should wait before the same request may work. APIs turn this into
    /// 503 + `Retry-After` instead of a gateway error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DialError::TooManyConnections => Some(BUSY_RETRY_AFTER),
            DialError::Busy { .. } => Some(BUSY_RETRY_AFTER),
            DialError::Backoff { retry_in } => Some(*retry_in),
            _ => None,
        }
    }
}

/// What [`DialError::retry_after`] and [`RequestError::retry_after`] suggest
/// when nothing more precise is known: connection slots free up within
/// seconds (idle connections close, handshakes finish or time out).
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(2);

/// A request to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No connection to the peer could be made: nothing was sent.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// No answer within the request timeout: the peer may or may not have acted on it.
    #[error("request timed out")]
    Timeout,
    /// The connection or the stream failed mid-request.
    #[error("connection lost: {0}")]
    ConnectionLost(#[source] Cause),
    /// The peer reset the stream with this QUIC application error code (see
    /// `StreamErrorCode` in `proto/wire.proto`).
    #[error("stream reset by the peer (code {0})")]
    Reset(u64),
    /// The request was too large to send, or the answer's header was not acceptable.
    #[error("invalid frame: {0}")]
    Frame(#[from] FrameError),
    /// The answer was cut short or its body did not decode.
    #[error("malformed {protocol} response: {reason}")]
    Malformed {
        /// The protocol of the request.
        protocol: Protocol,
        /// What was wrong with it.
        reason: String,
    },
    /// The peer answered with a failure.
    #[error("peer refused the request ({code:?}): {detail}")]
    Remote {
        /// Why, as the protocol classifies it.
        code: crate::wire::pb::FailureCode,
        /// The peer's explanation, at most 512 bytes.
        detail: String,
    },
    /// This node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl RequestError {
    /// `Some` when the request failed for load, on either side, rather than
    /// a fault: see [`DialError::retry_after`]. A peer that answered
    /// `UNAVAILABLE` (its store cannot take the write, or it rate-limits us)
    /// counts as load too.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RequestError::Dial(e) => e.retry_after(),
            RequestError::Remote {
                code: crate::wire::pb::FailureCode::Unavailable,
                ..
            } => Some(BUSY_RETRY_AFTER),
            _ => None,
        }
    }
}
