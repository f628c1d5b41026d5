//! Configuration of the node-to-node transport, and peer addresses.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use pqnode_crypto::NodeId;
use serde::{Deserialize, Serialize};

/// Default UDP port for QUIC between nodes.
pub const DEFAULT_PORT: u16 = 4001;

/// Everything the transport is started with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetConfig {
    /// UDP address to bind. `[::]:port` binds one dual-stack socket (IPv4 and IPv6).
    pub listen: SocketAddr,
    /// Caps and timeouts.
    pub limits: Limits,
    /// Peers to connect to at start and keep connected (reconnecting with backoff).
    pub peers: Vec<PeerAddr>,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
            limits: Limits::default(),
            peers: Vec::new(),
        }
    }
}

/// The transport's caps (what one peer, or all of them, may make this node hold) and
/// timeouts; durations are milliseconds in configuration files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Limits {
    /// Open connections (both directions, including handshakes) before new ones are refused.
    pub max_connections: usize,
    /// Inbound handshakes in progress before new ones are refused. Above half
    /// of it, clients whose address is not yet validated get a QUIC Retry.
    pub max_half_open: usize,
    /// Inbound connections from one IP address.
    pub max_per_ip: usize,
    /// Concurrent request streams a peer may open on one connection.
    pub max_streams_per_connection: u32,
    /// Malformed frames a connection may send before it is closed.
    pub max_protocol_violations: u32,
    /// Request-body bytes one peer may have us buffer at once (at least the
    /// largest protocol cap, 8 MiB for SYNC).
    pub max_request_bytes_per_connection: usize,
    /// Request-body bytes all peers together may have us buffer at once.
    pub max_request_bytes_total: usize,
    /// A connection with no traffic for this long is closed (keep-alives prevent it while
    /// both ends live).
    #[serde(with = "millis")]
    pub idle_timeout: Duration,
    /// QUIC PING interval on every connection: keeps live connections and NAT bindings open.
    #[serde(with = "millis")]
    pub keep_alive: Duration,
    /// A dial whose handshake has not completed by then fails
    /// ([`DialError::Timeout`](crate::DialError::Timeout)).
    #[serde(with = "millis")]
    pub handshake_timeout: Duration,
    /// A request not answered by then fails
    /// ([`RequestError::Timeout`](crate::RequestError::Timeout)).
    #[serde(with = "millis")]
    pub request_timeout: Duration,
    /// Bound on `shutdown()` waiting for connections to close.
    #[serde(with = "millis")]
    pub shutdown_timeout: Duration,
    /// First delay before a peer whose dial failed is dialed again (by the
    /// reconnect loop of configured peers, or by a request); doubles up to
    /// `reconnect_max`. Requests meanwhile fail fast with `DialError::Backoff`.
    #[serde(with = "millis")]
    pub reconnect_min: Duration,
    /// Longest delay between redials of a failing peer.
    #[serde(with = "millis")]
    pub reconnect_max: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_half_open: 64,
            max_per_ip: 16,
            max_streams_per_connection: 128,
            max_protocol_violations: 8,
            max_request_bytes_per_connection: 16 * 1024 * 1024,
            max_request_bytes_total: 256 * 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(3),
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Where to reach a peer: `<node-id>@<host>:<port>` (pinned: the peer must
/// prove that id) or `<host>:<port>` (unpinned: any valid ML-DSA-87 key is
/// accepted and its id learned; for a first bootstrap only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The id the peer must prove; `None` accepts any key (unpinned).
    pub node_id: Option<NodeId>,
    /// An IP literal or a DNS name.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

/// Text that is not `[<node-id>@]<host>:<port>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParsePeerAddrError {
    /// What precedes `@` is not a node id.
    #[error("invalid node id before '@': {0}")]
    NodeId(#[from] pqnode_crypto::ParseNodeIdError),
    /// No `:<port>` at the end.
    #[error("expected <host>:<port>")]
    MissingPort,
    /// The port is not a number from 0 to 65535.
    #[error("invalid port")]
    BadPort,
    /// Nothing before `:<port>`.
    #[error("empty host")]
    EmptyHost,
}

impl PeerAddr {
    /// A peer at a socket address, pinned to `node_id` if given.
    pub fn new(node_id: Option<NodeId>, addr: SocketAddr) -> Self {
        Self {
            node_id,
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// Resolves the host (an IP literal or a DNS name) to socket addresses.
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect())
    }
}

impl FromStr for PeerAddr {
    type Err = ParsePeerAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (node_id, host_port) = match s.split_once('@') {
            Some((id, rest)) => (Some(id.parse()?), rest),
            None => (None, s),
        };
        let (host, port) = host_port
            .rsplit_once(':')
            .ok_or(ParsePeerAddrError::MissingPort)?;
        let port = port.parse().map_err(|_| ParsePeerAddrError::BadPort)?;
        // "[::1]:4001": the brackets belong to the URL syntax, not the address.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(ParsePeerAddrError::EmptyHost);
        }
        Ok(Self {
            node_id,
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(id) = self.node_id {
            write!(f, "{id}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Serialize for PeerAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pinned_and_unpinned() {
        let id = NodeId::from_public_key(b"k");
        let p: PeerAddr = format!("{id}@127.0.0.1:4001").parse().unwrap();
        assert_eq!(p.node_id, Some(id));
        assert_eq!(p.host, "127.0.0.1");
        assert_eq!(p.port, 4001);
        let p: PeerAddr = "example.org:5".parse().unwrap();
        assert_eq!(p.node_id, None);
        assert_eq!(p.host, "example.org");
        let p: PeerAddr = "[::1]:7".parse().unwrap();
        assert_eq!(p.host, "::1");
        assert_eq!(p.to_string(), "[::1]:7");
        assert_eq!(p.to_string().parse::<PeerAddr>().unwrap(), p);
    }

    #[test]
    fn rejects_malformed() {
        assert!("nohost".parse::<PeerAddr>().is_err());
        assert!("h:99999".parse::<PeerAddr>().is_err());
        assert!(":1".parse::<PeerAddr>().is_err());
        assert!("zz@h:1".parse::<PeerAddr>().is_err());
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = NetConfig::default();
        let json = serde_json::to_string(&c).unwrap();
        let back: NetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.limits.idle_timeout, c.limits.idle_timeout);
        assert_eq!(back.listen, c.listen);
    }
}
