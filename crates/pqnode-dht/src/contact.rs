//! Who a node is and where it listens.

use std::net::{IpAddr, SocketAddr};

use pqnode_crypto::NodeId;
use serde::Serialize;

/// A node that is known by id: what routing tables hold and responses carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Contact {
    pub id: NodeId,
    pub addr: SocketAddr,
}

impl Contact {
    pub const fn new(id: NodeId, addr: SocketAddr) -> Self {
        Self { id, addr }
    }
}

/// Where a request goes. `id` is `None` for an unpinned bootstrap seed, known only by address:
/// the driver then accepts whichever key answers and reports the id it authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub id: Option<NodeId>,
    pub addr: SocketAddr,
}

impl Peer {
    pub const fn pinned(id: NodeId, addr: SocketAddr) -> Self {
        Self { id: Some(id), addr }
    }

    pub const fn unpinned(addr: SocketAddr) -> Self {
        Self { id: None, addr }
    }
}

impl From<Contact> for Peer {
    fn from(contact: Contact) -> Self {
        Self::pinned(contact.id, contact.addr)
    }
}

/// Why a contact was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("that is this node's own id")]
    OwnId,
    #[error(
        "{0} is not an address a node can listen on (unspecified, multicast, broadcast or port 0)"
    )]
    Unroutable(SocketAddr),
}

/// Checks that `peer` could be a contact of node `local`: not ourselves, and at an address
/// one can send to.
pub(crate) fn validate(local: &NodeId, peer: &Peer) -> Result<(), ContactError> {
    if peer.id.as_ref() == Some(local) {
        return Err(ContactError::OwnId);
    }
    let ip = peer.addr.ip();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if peer.addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(ContactError::Unroutable(peer.addr));
    }
    Ok(())
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
    fn contacts_must_be_someone_else_somewhere_reachable() {
        let local = NodeId::from_bytes([1; 20]);
        let other = NodeId::from_bytes([2; 20]);
        let at = |s: &str| {
            s.parse::<SocketAddr>()
                .unwrap_or(SocketAddr::from(([0; 4], 0)))
        };
        assert_eq!(
            validate(&local, &Peer::pinned(other, at("192.0.2.1:4001"))),
            Ok(())
        );
        assert_eq!(
            validate(&local, &Peer::unpinned(at("[2001:db8::1]:4001"))),
            Ok(())
        );
        assert_eq!(
            validate(&local, &Peer::pinned(local, at("192.0.2.1:4001"))),
            Err(ContactError::OwnId)
        );
        for bad in [
            "0.0.0.0:4001",
            "192.0.2.1:0",
            "224.0.0.1:4001",
            "255.255.255.255:4001",
            "[::]:4001",
            "[ff02::1]:4001",
        ] {
            assert_eq!(
                validate(&local, &Peer::unpinned(at(bad))),
                Err(ContactError::Unroutable(at(bad))),
                "{bad}"
            );
        }
    }

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
