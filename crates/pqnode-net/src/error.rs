//! Errors returned to callers of [`crate::Network`].

use std::net::SocketAddr;

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
            DialError::Refused { .. } | DialError::Timeout { .. } | DialError::Connect { .. }
        )
    }
}

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
