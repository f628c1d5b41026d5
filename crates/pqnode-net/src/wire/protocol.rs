//! [`Protocol`]: a protocol that runs over the node's connections, defined by
//! the crate that speaks it and registered with the transport at start-up.

use serde::{Serialize, Serializer};

/// One request/response protocol carried by the transport: its one-byte id
/// on the wire, its name (logs and stats) and the largest frame body it may
/// carry in either direction.
///
/// The transport interprets none of it beyond the cap: each feature crate
/// declares its own constant and registers a handler for it
/// ([`Network::register`](crate::Network::register)). Ids are assigned in
/// `proto/wire.proto`, so two crates never claim the same one. Two values
/// with the same id are the same protocol.
///
/// ```
/// use pqnode_net::Protocol;
///
/// const CHAT: Protocol = Protocol::new(42, "CHAT", 16 * 1024);
/// assert_eq!(CHAT.id(), 42);
/// assert_eq!(CHAT.to_string(), "CHAT");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    id: u8,
    name: &'static str,
    max_body_len: usize,
}

impl Protocol {
    /// Liveness probes, answered by the transport itself: empty body, empty reply.
    pub const PING: Protocol = Protocol {
        id: 15,
        name: "PING",
        max_body_len: 64,
    };

    /// Stands for a protocol id nobody registered, when such a request is
    /// answered with a failure: the cap fits any `Failure`.
    pub(crate) const UNSERVED: Protocol = Protocol {
        id: 0,
        name: "UNSERVED",
        max_body_len: super::MAX_FAILURE_BODY_LEN,
    };

    /// A protocol with wire id `id`. Id 0 means "unspecified" on the wire and
    /// 15 is [`Protocol::PING`]: using either fails at compile time in a
    /// `const`, or panics at run time, since it is a programming error.
    pub const fn new(id: u8, name: &'static str, max_body_len: usize) -> Self {
        assert!(
            id != 0 && id != Self::PING.id,
            "protocol ids 0 and 15 are reserved"
        );
        Self {
            id,
            name,
            max_body_len,
        }
    }

    /// The same cap as [`Protocol::UNSERVED`], under `name` (for errors).
    pub(crate) const fn named(self, name: &'static str) -> Self {
        Self { name, ..self }
    }

    /// The byte that names this protocol in a request frame.
    pub const fn id(self) -> u8 {
        self.id
    }

    /// The name logs and stats show.
    pub const fn name(self) -> &'static str {
        self.name
    }

    /// Largest body a frame of this protocol may carry, in either direction.
    pub const fn max_body_len(self) -> usize {
        self.max_body_len
    }
}

impl PartialEq for Protocol {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Protocol {}

impl std::hash::Hash for Protocol {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}
