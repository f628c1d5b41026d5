//! Errors returned to callers of [`crate::Network`].

use std::net::SocketAddr;
use std::time::Duration;

use pqnode_crypto::NodeId;

use crate::wire::{FrameError, Protocol};

/// Starting the endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("TLS configuration: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("could not bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid transport setting: {0}")]
    Config(String),
}

/// Connecting to a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialError {
    #[error("no known address for {0}")]
    NoAddress(NodeId),
    #[error("could not resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("that is this node's own id")]
    SelfDial,
    #[error("connection limit reached")]
    TooManyConnections,
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("handshake with {addr} refused: {reason}")]
    Refused { addr: SocketAddr, reason: String },
    /// The peer refused the connection before any handshake: it is at one of
    /// its connection caps (or closing). Load, not a fault: try later.
    #[error("{addr} refused the connection: it is at its connection limits")]
    Busy { addr: SocketAddr },
    #[error("handshake with {addr} timed out")]
    Timeout { addr: SocketAddr },
    #[error("could not start a connection to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("recent dials failed; next attempt allowed in {retry_in:?}")]
    Backoff { retry_in: std::time::Duration },
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
pub enum RequestError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("request timed out")]
    Timeout,
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    #[error("stream reset by the peer (code {0})")]
    Reset(u64),
    #[error("invalid frame: {0}")]
    Frame(#[from] FrameError),
    #[error("malformed {protocol} response: {reason}")]
    Malformed { protocol: Protocol, reason: String },
    #[error("peer refused the request ({code:?}): {detail}")]
    Remote {
        code: crate::wire::pb::FailureCode,
        detail: String,
    },
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
