//! Who a node is and where it listens.

use std::net::{IpAddr, SocketAddr};

use pqnode_crypto::NodeId;
use serde::Serialize;

/// A node that is known by id: what routing tables hold and responses carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Contact {
    /// The node's id: the hash of its ML-DSA-87 public key, which TLS authenticates.
    pub id: NodeId,
    /// The UDP address its QUIC endpoint listens on.
    pub addr: SocketAddr,
}

impl Contact {
    /// The contact with this id at this address.
    pub const fn new(id: NodeId, addr: SocketAddr) -> Self {
        Self { id, addr }
    }
}

/// Where a request goes. `id` is `None` for an unpinned bootstrap seed, known only by address:
/// the driver then accepts whichever key answers and reports the id it authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The id the answering node must prove, or `None` to accept whichever node answers.
    pub id: Option<NodeId>,
    /// The address to send the request to.
    pub addr: SocketAddr,
}

impl Peer {
    /// A peer that must answer as `id`: a known contact or a seed pinned to its key.
    pub const fn pinned(id: NodeId, addr: SocketAddr) -> Self {
        Self { id: Some(id), addr }
    }

    /// A bootstrap seed known only by its address: any key that answers is accepted.
    pub const fn unpinned(addr: SocketAddr) -> Self {
        Self { id: None, addr }
    }
}

impl From<Contact> for Peer {
    fn from(contact: Contact) -> Self {
        Self::pinned(contact.id, contact.addr)
    }
}

/// The network an address belongs to for the Sybil limit: an IPv4 /24 or an IPv6 /48.
/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
pub(crate) fn subnet_of(ip: IpAddr) -> [u8; 6] {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            [4, a, b, c, 0, 0]
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => subnet_of(IpAddr::V4(v4)),
            None => {
                let o = v6.octets();
                [o[0], o[1], o[2], o[3], o[4], o[5]]
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_slash_24_and_slash_48() {
        let a: IpAddr = "10.1.2.3".parse().unwrap_or(IpAddr::V4([0; 4].into()));
        let b: IpAddr = "10.1.2.200".parse().unwrap_or(IpAddr::V4([0; 4].into()));
        let c: IpAddr = "10.1.3.3".parse().unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(subnet_of(a), subnet_of(b));
        assert_ne!(subnet_of(a), subnet_of(c));
        let mapped: IpAddr = "::ffff:10.1.2.9".parse().unwrap_or(a);
        assert_eq!(subnet_of(mapped), subnet_of(a));
        let x: IpAddr = "2001:db8:1::1".parse().unwrap_or(a);
        let y: IpAddr = "2001:db8:1:ffff::2".parse().unwrap_or(a);
        let z: IpAddr = "2001:db8:2::1".parse().unwrap_or(a);
        assert_eq!(subnet_of(x), subnet_of(y));
        assert_ne!(subnet_of(x), subnet_of(z));
    }
}
