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
    FindNode {
        /// The id whose neighbourhood is wanted: a node's id or a record key.
        target: NodeId,
    },
    /// The record under `key`, or closer contacts. Answered with [`Response::Value`].
    FindValue {
        /// The record's key.
        key: Key,
    },
    /// Store this record. Answered with [`Response::Stored`] or [`Response::Rejected`].
    Store {
        /// The signed record; the receiver verifies it before storing.
        record: Record,
    },
    /// Store this provider entry. Answered with [`Response::Stored`] or [`Response::Rejected`].
    AddProvider {
        /// The signed entry; the receiver verifies it before storing.
        provider: ProviderRecord,
    },
    /// Provider entries under `key`, and closer contacts. Answered with [`Response::Providers`].
    GetProviders {
        /// The shared key the entries are filed under.
        key: Key,
    },
}

impl Request {
    /// The request's type.
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
    /// The answer to [`Request::Ping`].
    Pong {
        /// The requester's address as the responder saw it (lets a node learn its public
        /// address).
        observed: SocketAddr,
    },
    /// The answer to [`Request::FindNode`].
    Nodes {
        /// Up to K contacts of the responder closest to the target.
        closer: Vec<Contact>,
    },
    /// The answer to [`Request::FindValue`].
    Value {
        /// The record, if the responder holds one under the key.
        record: Option<Record>,
        /// Without a record, the responder's contacts closest to the key, for the lookup to go
        /// on; empty with one.
        closer: Vec<Contact>,
    },
    /// The record or provider entry was verified and stored.
    Stored,
    /// The answer to [`Request::GetProviders`].
    Providers {
        /// The entries the responder holds under the key, at most
        /// [`Config::max_providers_per_response`](crate::Config::max_providers_per_response).
        providers: Vec<ProviderRecord>,
        /// The responder's contacts closest to the key, for the lookup to go on.
        closer: Vec<Contact>,
    },
    /// Understood and refused (invalid signature, stale seq, full store).
    Rejected {
        /// Why, in words, for logs; not meant to be parsed.
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
    /// [`Request::Ping`].
    Ping,
    /// [`Request::FindNode`].
    FindNode,
    /// [`Request::FindValue`].
    FindValue,
    /// [`Request::Store`].
    Store,
    /// [`Request::AddProvider`].
    AddProvider,
    /// [`Request::GetProviders`].
    GetProviders,
}
