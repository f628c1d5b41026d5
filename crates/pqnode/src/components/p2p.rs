//! Start-up step 6: the QUIC endpoint (post-quantum TLS 1.3 only) and the
//! direct messages it carries.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use pqnode_crypto::Identity;
use pqnode_health::Health;
use pqnode_messaging::{MessageLog, Messenger};
use pqnode_net::{NetConfig, Network, PeerAddr};
use pqnode_store::Store;
use serde_json::json;

use super::{Component, StatsFuture};
use crate::config::Config;

pub(crate) struct P2pService {
    network: Network,
    pub addr: SocketAddr,
    pub messenger: Messenger,
}

impl P2pService {
    /// Binds the QUIC endpoint and dials the configured peers. The DHT runs
    /// on this endpoint, so it comes up before the DHT (inside step 5 when
    /// the DHT is on).
    pub(crate) async fn bind(config: &Config, identity: &Identity) -> anyhow::Result<Network> {
        let peers = config
            .p2p
            .peers
            .iter()
            .map(|p| {
                p.parse::<PeerAddr>()
                    .with_context(|| format!("p2p.peers / --peer: invalid peer {p:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let net_config = NetConfig {
            listen: config.p2p.addr,
            peers,
            limits: config.p2p.limits.to_net(),
        };
        Network::start(identity, net_config).await.map_err(|e| {
            anyhow::anyhow!(
                "{e} (choose another UDP address with p2p.addr / --p2p-addr / PQNODE_P2P_ADDR)"
            )
        })
    }

    /// Step 6: direct messages between nodes on the bound endpoint, kept in `store`.
    pub(crate) fn start(network: Network, store: Store) -> anyhow::Result<Arc<Self>> {
        let addr = network.local_addr()?;
        let messenger = Messenger::start(network.clone(), MessageLog::new(store))
            .context("cannot register the direct-message protocol")?;
        Ok(Arc::new(Self {
            network,
            addr,
            messenger,
        }))
    }

    pub(crate) fn network(&self) -> &Network {
        &self.network
    }

    pub(crate) async fn shutdown(&self) -> anyhow::Result<()> {
        self.network.shutdown().await;
        Ok(())
    }
}

impl Component for P2pService {
    fn health(&self) -> Health {
        self.network.health()
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async {
            let mut stats = serde_json::to_value(self.network.stats()).unwrap_or_default();
            stats["addr"] = json!(self.addr);
            stats["messages"] = serde_json::to_value(self.messenger.stats()).unwrap_or_default();
            stats
        })
    }
}
