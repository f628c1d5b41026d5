//! The wire format: what clients may send, what the server sends back, and
//! the error and close codes. `docs/signaling-protocol.md` is the reference;
//! this module is its executable form.
//!
//! Parsing is two-step: a lenient read of `type` and `id` (so even a
//! malformed request gets an error that echoes its `id`), then a strict,
//! `deny_unknown_fields` read of the whole object for that type. Relay
//! payloads stay raw JSON (`RawValue`): SDP is never parsed, only sized.

mod inbound;
mod outbound;

pub(crate) use inbound::{Inbound, PeerRequest, RegisterRequest, Rejection, RelayRequest, parse};
pub(crate) use outbound::{AckStatus, PeerEntry, RelayedMessage, ServerMessage, WireLimits};

use serde::{Deserialize, Serialize};

use crate::config::MAX_TOPIC_LEN;

/// WebSocket close codes the server uses.
pub mod close {
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Too many failed registration attempts.
    pub const POLICY: u16 = 1008;
    /// A frame exceeded the message size limit.
    pub const TOO_BIG: u16 = 1009;
    /// Connection caps reached.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No successful registration in time.
    pub const REGISTER_TIMEOUT: u16 = 4001;
    /// Nothing received for two heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 4008;
    /// Another session of the same key took the peer id over.
    pub const REPLACED: u16 = 4009;
    /// The client kept sending while rate limited.
    pub const RATE_LIMITED: u16 = 4029;
}

/// The `code` of an `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The frame is not a JSON object with a string `type`.
    BadJson,
    /// A binary frame: the protocol is text only.
    BinaryFrame,
    /// `type` is not a request the protocol has.
    UnknownType,
    /// Missing, extra or ill-typed fields, bad hex, a bad topic or peer id.
    Schema,
    /// The request needs a registered session.
    NotRegistered,
    /// `register` on a session that is registered.
    AlreadyRegistered,
    /// The registration's `nonce` is not this connection's.
    NonceMismatch,
    /// The registration's `ts` is too far from the server's clock.
    StaleTimestamp,
    /// The peer id is not derived from the key, or the key has the wrong length.
    BadPeerId,
    /// The registration's signature does not verify.
    BadSignature,
    /// A live session holds the peer id and `takeover` was not set.
    PeerIdTaken,
    /// The addressee is connected neither here nor, as far as the directory knows,
    /// elsewhere.
    PeerNotFound,
    /// The addressee's outbound queue is full; retry later.
    PeerBusy,
    /// The session already joined `max_topics_per_peer` topics.
    TooManyTopics,
    /// The topic already has `max_peers_per_topic` peers on this node.
    TopicFull,
    /// The message was dropped by the session's or the IP's rate limit.
    RateLimited,
    /// The frame is over `max_message_bytes` (the connection closes, 1009).
    TooLarge,
    /// The connection caps are reached (the connection closes, 1013).
    ServerFull,
    /// The server is stopping (the connection closes, 1001).
    ShuttingDown,
    /// A bug or a failing dependency, such as federation.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order (index = `self as usize`).
    pub const ALL: [ErrorCode; 20] = [
        Self::BadJson,
        Self::BinaryFrame,
        Self::UnknownType,
        Self::Schema,
        Self::NotRegistered,
        Self::AlreadyRegistered,
        Self::NonceMismatch,
        Self::StaleTimestamp,
        Self::BadPeerId,
        Self::BadSignature,
        Self::PeerIdTaken,
        Self::PeerNotFound,
        Self::PeerBusy,
        Self::TooManyTopics,
        Self::TopicFull,
        Self::RateLimited,
        Self::TooLarge,
        Self::ServerFull,
        Self::ShuttingDown,
        Self::Internal,
    ];

    /// The code as the wire and the stats spell it (`"PEER_NOT_FOUND"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "BAD_JSON",
            Self::BinaryFrame => "BINARY_FRAME",
            Self::UnknownType => "UNKNOWN_TYPE",
            Self::Schema => "SCHEMA",
            Self::NotRegistered => "NOT_REGISTERED",
            Self::AlreadyRegistered => "ALREADY_REGISTERED",
            Self::NonceMismatch => "NONCE_MISMATCH",
            Self::StaleTimestamp => "STALE_TIMESTAMP",
            Self::BadPeerId => "BAD_PEER_ID",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::PeerIdTaken => "PEER_ID_TAKEN",
            Self::PeerNotFound => "PEER_NOT_FOUND",
            Self::PeerBusy => "PEER_BUSY",
            Self::TooManyTopics => "TOO_MANY_TOPICS",
            Self::TopicFull => "TOPIC_FULL",
            Self::RateLimited => "RATE_LIMITED",
            Self::TooLarge => "TOO_LARGE",
            Self::ServerFull => "SERVER_FULL",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Internal => "INTERNAL",
        }
    }
}

/// A client's request id, echoed in replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum RequestId {
    Number(u64),
    Text(String),
}

/// A topic (room) name: 1..=128 bytes of UTF-8 without control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

impl Topic {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The topic name is empty, too long or contains control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a topic is 1 to {MAX_TOPIC_LEN} bytes of text without control characters")]
pub struct InvalidTopic;

impl TryFrom<String> for Topic {
    type Error = InvalidTopic;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() || value.len() > MAX_TOPIC_LEN || value.chars().any(char::is_control) {
            return Err(InvalidTopic);
        }
        Ok(Self(value))
    }
}

impl From<Topic> for String {
    fn from(topic: Topic) -> Self {
        topic.0
    }
}

/// The four relayed message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayKind {
    /// A WebRTC session description offering a connection.
    Offer,
    /// The description answering an offer.
    Answer,
    /// An ICE candidate.
    Candidate,
    /// The sender ends the session.
    Bye,
}

/// Serialises a server message. Our message types hold only strings,
/// numbers and raw JSON, for which serde_json cannot fail; should that ever
/// change, the client gets an `INTERNAL` error rather than nothing.
pub(crate) fn encode<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).unwrap_or_else(|e| {
        tracing::error!(error = %e, "failed to encode a signaling message");
        r#"{"type":"error","code":"INTERNAL","message":"encoding failed"}"#.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_indexed_in_order() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
