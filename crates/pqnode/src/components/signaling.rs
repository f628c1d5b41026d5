//! Start-up step 10: the public WebSocket endpoints on the signaling port —
//! native signaling at `/p2p-signaling`, PeerJS compatibility at
//! `/p2p-signaling/peerjs`, Yjs documents at `/sync/{doc}` (when CRDT
//! documents are on), and the demo page at `/`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use pqnode_crypto::NodeId;
use pqnode_health::Health;
use pqnode_overlay::Overlay;
use pqnode_peerjs::{PeerJsConfig, PeerJsServer, ShutdownOutcome};
use pqnode_signaling::{IceServer, SignalingConfig, SignalingServer};
use serde_json::json;
use tracing::warn;

use super::federation::Federation;
use super::{Component, StatsFuture};
use crate::config::Config;
use crate::listen::HttpServer;

pub(crate) struct SignalingService {
    native: SignalingServer,
    /// The DHT federating this server, for the figures shown with its stats.
    overlay: Option<Overlay>,
    peerjs: PeerJsServer,
    /// The port's TCP listener; the node stops it after [`SignalingService::shutdown`].
    listener: Arc<HttpServer>,
    pub addr: SocketAddr,
}

impl SignalingService {
    pub(crate) async fn start(
        config: &Config,
        node_id: NodeId,
        federation: Option<&Federation>,
        sync: Option<pqnode_crdt_ws::SyncEndpoint>,
    ) -> anyhow::Result<Arc<Self>> {
        let settings = SignalingConfig {
            ice_servers: config
                .signaling
                .ice_servers
                .iter()
                .map(|url| IceServer {
                    urls: vec![url.clone()],
                    username: None,
                    credential: None,
                })
                .collect(),
            max_connections: config.signaling.max_connections,
            max_connections_per_ip: config.signaling.max_connections_per_ip,
            heartbeat_interval: Duration::from_secs(config.signaling.heartbeat_secs),
            ..SignalingConfig::default()
        };
        let (native, overlay) = match federation {
            Some(f) => (
                SignalingServer::with_federation(
                    node_id,
                    settings,
                    f.directory.clone(),
                    f.forwarder.clone(),
                ),
                Some(f.overlay.clone()),
            ),
            None => (SignalingServer::new(node_id, settings), None),
        };
        let peerjs = PeerJsServer::new(PeerJsConfig {
            concurrent_limit: config.signaling.max_connections,
            max_connections_per_ip: config.signaling.max_connections_per_ip,
            ..PeerJsConfig::default()
        });
        let listener = crate::listen::bind_tcp(
            config.signaling.addr,
            "signaling.addr / --signaling-addr / PQNODE_SIGNALING_ADDR",
        )
        .await?;
        let addr = listener.local_addr()?;
        let mut app = Router::new()
            .merge(pqnode_signaling::router(native.clone()))
            .merge(pqnode_peerjs::router(peerjs.clone()))
            .merge(crate::web::router());
        if let Some(sync) = sync {
            app = app.merge(pqnode_crdt_ws::router(sync));
        }
        let app = app.fallback(crate::http_error::not_found);
        let limits = config.signaling.tcp.to_listen();
        let listener = HttpServer::start("signaling", listener, app, limits)?;
        Ok(Arc::new(Self {
            native,
            overlay,
            peerjs,
            listener,
            addr,
        }))
    }

    pub(crate) fn native(&self) -> &SignalingServer {
        &self.native
    }

    pub(crate) fn native_stats(&self) -> pqnode_signaling::SignalingStats {
        self.native.stats()
    }

    pub(crate) fn listener(&self) -> &HttpServer {
        &self.listener
    }

    /// Tells every client, closes them with 1001 and withdraws presence. The listener
    /// itself is stopped by the node (`listener().finish_shutdown`).
    pub(crate) async fn shutdown(&self, deadline: Duration) -> anyhow::Result<()> {
        let (native_done, peerjs_done) = tokio::join!(
            self.native.shutdown(deadline),
            self.peerjs.shutdown(deadline)
        );
        if !native_done {
            warn!("some signaling sessions were still closing at the deadline");
        }
        if let ShutdownOutcome::TimedOut { remaining } = peerjs_done {
            warn!(
                remaining,
                "some PeerJS connections were still closing at the deadline"
            );
        }
        Ok(())
    }
}

impl Component for SignalingService {
    fn health(&self) -> Health {
        let (native, peerjs) = (self.native.health(), self.peerjs.health());
        if native.status >= peerjs.status {
            native
        } else {
            peerjs
        }
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async {
            let mut stats = serde_json::to_value(self.native.stats()).unwrap_or_default();
            // Asked when the stats are read, from the DHT task itself: no poller, no stale copy.
            let dht = match &self.overlay {
                Some(overlay) => overlay.stats().await.ok(),
                None => None,
            };
            stats["dhtNodes"] = json!(dht.as_ref().map_or(0, |d| d.total_nodes));
            stats["dhtBuckets"] = json!(dht.as_ref().map_or(0, |d| d.buckets_used));
            stats["peerjs"] = serde_json::to_value(self.peerjs.stats()).unwrap_or_default();
            stats["addr"] = json!(self.addr);
            stats
        })
    }
}
