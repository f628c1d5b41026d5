//! The DHT as the network's address book: a dial to a node id the transport has no address
//! for becomes a lookup of that id.

use std::net::SocketAddr;
use std::sync::Weak;

use pqnode_crypto::NodeId;
use pqnode_net::{AddressLookup, BoxFuture};

use crate::overlay::{Inner, Overlay};

/// Holds the overlay weakly: the network outlives neither it nor its shutdown, and a strong
/// reference would keep the DHT alive through the network that the DHT itself holds.
pub(crate) struct DhtAddressLookup {
    pub(crate) overlay: Weak<Inner>,
}

impl AddressLookup for DhtAddressLookup {
    fn find(&self, node: NodeId) -> BoxFuture<'_, Option<SocketAddr>> {
        Box::pin(async move {
            let overlay = Overlay::from_inner(self.overlay.upgrade()?);
            match overlay.lookup(node).await {
                Ok(outcome) => outcome
                    .closest
                    .iter()
                    .find(|contact| contact.id == node)
                    .map(|contact| contact.addr),
                Err(e) => {
                    tracing::debug!(%node, error = %e, "no DHT lookup for an address");
                    None
                }
            }
        })
    }
}
