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

/// The first request on a new connection can arrive before the transport lists it: it
/// registers the connection after starting to serve it, and when the peer already had one
/// it first pings the old one (up to half a second). The handler looks again with doubling
/// pauses (2 ms to 512 ms, about a second in all) before it gives up.
const ADDRESS_ATTEMPTS: u32 = 10;
const ADDRESS_FIRST_PAUSE: Duration = Duration::from_millis(2);

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
        let mut pause = ADDRESS_FIRST_PAUSE;
        for attempt in 1..=ADDRESS_ATTEMPTS {
            let network = self
                .network
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()?;
            if let Some(info) = network.peers().into_iter().find(|p| p.node_id == peer) {
                return Some(info.address);
            }
            if attempt == ADDRESS_ATTEMPTS {
                break;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
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
