//! The DHT's requests and responses, as typed values. [`crate::codec`] turns them into bytes.

use std::net::SocketAddr;

use pqnode_crypto::NodeId;

use crate::contact::Contact;
use crate::record::{Key, ProviderRecord, Record};

/// A request one node sends another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Are you alive? Answered with [`Response::Pong`].
    Ping,
    /// The contacts you know closest to `target`. Answered with [`Response::Nodes`].
    FindNode { target: NodeId },
    /// The record under `key`, or closer contacts. Answered with [`Response::Value`].
    FindValue { key: Key },
    /// Store this record. Answered with [`Response::Stored`] or [`Response::Rejected`].
    Store { record: Record },
    /// Store this provider entry. Answered with [`Response::Stored`] or [`Response::Rejected`].
    AddProvider { provider: ProviderRecord },
    /// Provider entries under `key`, and closer contacts. Answered with [`Response::Providers`].
    GetProviders { key: Key },
}

impl Request {
    pub fn kind(&self) -> RpcKind {
        match self {
            Self::Ping => RpcKind::Ping,
            Self::FindNode { .. } => RpcKind::FindNode,
            Self::FindValue { .. } => RpcKind::FindValue,
            Self::Store { .. } => RpcKind::Store,
            Self::AddProvider { .. } => RpcKind::AddProvider,
            Self::GetProviders { .. } => RpcKind::GetProviders,
        }
    }
}

/// A response to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `observed` is the requester's address as the responder saw it.
    Pong {
        observed: SocketAddr,
    },
    Nodes {
        closer: Vec<Contact>,
    },
    Value {
        record: Option<Record>,
        closer: Vec<Contact>,
    },
    Stored,
    Providers {
        providers: Vec<ProviderRecord>,
        closer: Vec<Contact>,
    },
    /// Understood and refused (invalid signature, stale seq, full store).
    Rejected {
        reason: String,
    },
}

impl Response {
    /// Whether this is a well-formed answer to a request of kind `kind`.
    pub fn answers(&self, kind: RpcKind) -> bool {
        matches!(
            (self, kind),
            (Self::Pong { .. }, RpcKind::Ping)
                | (Self::Nodes { .. }, RpcKind::FindNode)
                | (Self::Value { .. }, RpcKind::FindValue)
                | (
                    Self::Stored | Self::Rejected { .. },
                    RpcKind::Store | RpcKind::AddProvider
                )
                | (Self::Providers { .. }, RpcKind::GetProviders)
        )
    }
}

/// The request types, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcKind {
    Ping,
    FindNode,
    FindValue,
    Store,
    AddProvider,
    GetProviders,
}
