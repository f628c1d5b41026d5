//! Shared helpers for the integration tests: in-process nodes on 127.0.0.1.

#![allow(dead_code)]

pub(crate) mod classical;
pub(crate) mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use pqnode_crypto::{Identity, NodeId};
use pqnode_net::{Caller, Handler, HandlerError, Limits, NetConfig, Network, PeerAddr, Protocol};

/// The protocol every test node serves with [`Echo`].
pub(crate) const DHT: Protocol = Protocol::new(1, "DHT", 256 * 1024);
/// A protocol no test node registers unless a test does.
pub(crate) const SYNC: Protocol = Protocol::new(3, "SYNC", 8 << 20);

pub(crate) fn limits() -> Limits {
    Limits {
        request_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(1),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        ..Limits::default()
    }
}

pub(crate) fn config_on(listen: SocketAddr, limits: Limits, peers: Vec<PeerAddr>) -> NetConfig {
    NetConfig {
        listen,
        limits,
        peers,
    }
}

pub(crate) fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A node with an echo handler on [`DHT`].
pub(crate) struct TestNode {
    pub identity: Identity,
    pub net: Network,
}

impl TestNode {
    pub(crate) async fn start() -> Self {
        Self::start_with(
            Identity::generate().unwrap(),
            config_on(localhost(), limits(), vec![]),
        )
        .await
    }

    /// Starts a node; when `config.listen` names a port that a node just shut
    /// down in this process, waits for the old socket to be released.
    pub(crate) async fn start_with(identity: Identity, config: NetConfig) -> Self {
        let mut attempts = 0;
        let net = loop {
            match Network::start(&identity, config.clone()).await {
                Ok(net) => break net,
                Err(pqnode_net::StartError::Bind { .. }) if attempts < 100 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("start failed: {e}"),
            }
        };
        net.register(DHT, Echo(net.node_id())).unwrap();
        Self { identity, net }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.net.node_id()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.net.local_addr().unwrap()
    }

    pub(crate) fn peer_addr(&self) -> PeerAddr {
        PeerAddr::new(Some(self.id()), self.addr())
    }
}

/// Answers with `<own id>|<caller id>|<payload>`, so tests see who handled
/// a request and whom the handshake said it came from.
pub(crate) struct Echo(pub NodeId);

impl Handler for Echo {
    async fn handle(&self, caller: Caller, payload: Bytes) -> Result<Bytes, HandlerError> {
        if payload.as_ref() == b"fail" {
            return Err(HandlerError::BadRequest("asked to fail".into()));
        }
        let mut out = format!("{}|{}|", self.0, caller.node_id).into_bytes();
        out.extend_from_slice(&payload);
        Ok(out.into())
    }
}

pub(crate) fn echo_reply(server: NodeId, caller: NodeId, payload: &[u8]) -> Bytes {
    let mut out = format!("{server}|{caller}|").into_bytes();
    out.extend_from_slice(payload);
    out.into()
}
