//! Start-up step 5: the Kademlia DHT, run over the node's QUIC endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pqnode_crypto::Identity;
use pqnode_health::Health;
use pqnode_net::{Network, PeerAddr};
use pqnode_overlay::{Overlay, OverlayConfig};
use pqnode_store::Store;

use super::federation::PresenceEntries;
use super::replication::ReplicaEntries;
use super::{Component, StatsFuture};
use crate::config::Config;

pub(crate) struct DhtService {
    overlay: Overlay,
}

impl DhtService {
    pub(crate) async fn start(
        config: &Config,
        identity: Arc<Identity>,
        network: Network,
        store: Store,
    ) -> anyhow::Result<Arc<Self>> {
        let seeds = config
            .dht
            .bootstrap
            .iter()
            .map(|s| {
                s.parse::<PeerAddr>()
                    .with_context(|| format!("dht.bootstrap / --bootstrap: invalid node {s:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut overlay_config = OverlayConfig::new(identity).with_seeds(seeds);
        // Every node checks signaling presence entries, whether or not it runs signaling.
        overlay_config.dht.validators.push(PresenceEntries);
        overlay_config.dht.validators.push(ReplicaEntries);
        overlay_config.dht.refresh_interval = Duration::from_secs(config.dht.refresh_interval_secs);
        overlay_config.dht.ping_interval = Duration::from_secs(config.dht.ping_interval_secs);
        overlay_config.dht.standalone = config.dht.standalone;
        let overlay = Overlay::start(network, Some(store), overlay_config).await?;
        Ok(Arc::new(Self { overlay }))
    }

    pub(crate) fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// Saves the routing table and stops the DHT task.
    pub(crate) async fn shutdown(&self) -> anyhow::Result<()> {
        self.overlay.shutdown().await;
        Ok(())
    }
}

impl Component for DhtService {
    fn health(&self) -> Health {
        self.overlay.health()
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async {
            match self.overlay.stats().await {
                Ok(stats) => serde_json::to_value(stats).unwrap_or_default(),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            }
        })
    }
}
