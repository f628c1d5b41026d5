//! The [`DHT`](crate::DHT) handler: bytes from an authenticated peer in, bytes out.

use bytes::Bytes;
use pqnode_dht::{Contact, codec};
use pqnode_net::{Caller, Handler, HandlerError};
use tokio::sync::{mpsc, oneshot};

use crate::command::Command;
use crate::metrics;
use crate::rate::{PeerLimiter, PeerRate};

pub(crate) struct DhtHandler {
    commands: mpsc::Sender<Command>,
    limiter: PeerLimiter,
}

impl DhtHandler {
    pub(crate) fn new(commands: mpsc::Sender<Command>, rate: PeerRate) -> Self {
        Self {
            commands,
            limiter: PeerLimiter::new(rate),
        }
    }
}

impl Handler for DhtHandler {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        if !self
            .limiter
            .allow(caller.node_id, std::time::Instant::now())
        {
            metrics::record_rate_limited();
            return Err(HandlerError::Unavailable(
                "too many DHT requests; slow down".into(),
            ));
        }
        let request = codec::decode_request(&payload).map_err(|e| {
            metrics::record_bad_request();
            tracing::debug!(peer = %caller.node_id, error = %e, "undecodable DHT request");
            HandlerError::BadRequest(e.to_string())
        })?;
        let (reply, response) = oneshot::channel();
        let command = Command::Inbound {
            // The connection's address: where the peer is now, even if it just moved.
            from: Contact::new(caller.node_id, caller.addr),
            request,
            reply,
        };
        let stopped = || HandlerError::Unavailable("the DHT has stopped".into());
        self.commands.send(command).await.map_err(|_| stopped())?;
        let response = response.await.map_err(|_| stopped())?;
        Ok(Bytes::from(codec::encode_response(&response)))
    }
}
