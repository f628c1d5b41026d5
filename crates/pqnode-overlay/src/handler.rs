//! The `Protocol::Dht` handler: bytes from an authenticated peer in, bytes out.

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use pqnode_crypto::NodeId;
use pqnode_dht::{Contact, codec};
use pqnode_net::{Handler, HandlerError, Network};
use tokio::sync::{mpsc, oneshot};

use crate::command::Command;
use crate::metrics;

/// How often, and how long apart, the handler looks for the address of a peer whose first
/// request can arrive a moment before the transport lists its new connection.
const ADDRESS_ATTEMPTS: u32 = 5;
const ADDRESS_RETRY: Duration = Duration::from_millis(2);

/// The network as seen from the handler. The network owns the handler, so holding a plain
/// `Network` here would be a reference cycle that keeps the endpoint (and its UDP port) alive
/// forever; the overlay empties this slot when it shuts down.
pub(crate) type NetworkSlot = Arc<RwLock<Option<Network>>>;

pub(crate) struct DhtHandler {
    commands: mpsc::Sender<Command>,
    network: NetworkSlot,
}

impl DhtHandler {
    pub(crate) fn new(commands: mpsc::Sender<Command>, network: NetworkSlot) -> Self {
        Self { commands, network }
    }

    /// Where `peer` is connected from. The transport hands handlers only the node id, so
    /// the address comes from its peer list.
    async fn address_of(&self, peer: NodeId) -> Option<SocketAddr> {
        for attempt in 0..ADDRESS_ATTEMPTS {
            let network = self
                .network
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()?;
            if let Some(info) = network.peers().into_iter().find(|p| p.node_id == peer) {
                return Some(info.address);
            }
            tokio::time::sleep(ADDRESS_RETRY * (attempt + 1)).await;
        }
        None
    }
}

impl Handler for DhtHandler {
    async fn handle(&self, from: NodeId, payload: Bytes) -> Result<Bytes, HandlerError> {
        let request = codec::decode_request(&payload).map_err(|e| {
            metrics::record_bad_request();
            tracing::debug!(peer = %from, error = %e, "undecodable DHT request");
            HandlerError::BadRequest(e.to_string())
        })?;
        let addr = self
            .address_of(from)
            .await
            .ok_or_else(|| HandlerError::Unavailable("peer connection not found".into()))?;
        let (reply, response) = oneshot::channel();
        let command = Command::Inbound {
            from: Contact::new(from, addr),
            request,
            reply,
        };
        let stopped = || HandlerError::Unavailable("the DHT has stopped".into());
        self.commands.send(command).await.map_err(|_| stopped())?;
        let response = response.await.map_err(|_| stopped())?;
        Ok(Bytes::from(codec::encode_response(&response)))
    }
}
