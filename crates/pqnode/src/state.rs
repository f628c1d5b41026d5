//! What the running node's parts share: the components, the readiness flags and the
//! figures the API serves. The API reads it; `node` builds it and tears it down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::PrometheusHandle;
use pqnode_crypto::NodeId;
use pqnode_health::Status;

use crate::components::ai::AiService;
use crate::components::crdt::CrdtService;
use crate::components::crypto::CryptoService;
use crate::components::dht::DhtService;
use crate::components::p2p::P2pService;
use crate::components::signaling::SignalingService;
use crate::components::storage::StorageService;
use crate::components::{Component, Components};
use crate::config::Config;
use crate::listen::HttpServer;
use crate::monitor::Monitor;

/// Everything the API and the background tasks share.
pub(crate) struct NodeShared {
    pub config: Config,
    pub node_id: NodeId,
    #[allow(dead_code)] // read by the mutating endpoints of the P2P and DHT APIs
    pub api_token: String,
    pub crypto: Arc<CryptoService>,
    pub storage: Arc<StorageService>,
    pub crdt: Option<Arc<CrdtService>>,
    pub ai: Option<Arc<AiService>>,
    pub p2p: Option<Arc<P2pService>>,
    pub dht: Option<Arc<DhtService>>,
    pub monitor: Arc<Monitor>,
    pub metrics: PrometheusHandle,
    /// Start-up finished and not shutting down (`/readyz`).
    /// Started last (step 10), after the API is up.
    pub signaling: OnceLock<Arc<SignalingService>>,
    /// The API's TCP listener (step 9), for its figures.
    pub api_listener: OnceLock<Arc<HttpServer>>,
    pub ready: AtomicBool,
    pub shutting_down: AtomicBool,
    pub(crate) started: Instant,
}

impl NodeShared {
    pub(crate) fn components(&self) -> Components {
        Components {
            crypto: Some(self.crypto.clone() as Arc<dyn Component>),
            storage: Some(self.storage.clone() as Arc<dyn Component>),
            signaling: self
                .signaling
                .get()
                .map(|s| s.clone() as Arc<dyn Component>),
            p2p: self.p2p.clone().map(|p| p as Arc<dyn Component>),
            dht: self.dht.clone().map(|d| d as Arc<dyn Component>),
            crdt: self.crdt.clone().map(|c| c as Arc<dyn Component>),
            ai: self.ai.clone().map(|a| a as Arc<dyn Component>),
            system: Some(self.monitor.clone() as Arc<dyn Component>),
        }
    }

    /// The HTTP listeners that are up: the API's, then the signaling port's.
    pub(crate) fn listeners(&self) -> Vec<(&'static str, &HttpServer)> {
        let mut listeners = Vec::new();
        if let Some(api) = self.api_listener.get() {
            listeners.push(("api", api.as_ref()));
        }
        if let Some(signaling) = self.signaling.get() {
            listeners.push(("signaling", signaling.listener()));
        }
        listeners
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// DHT figures for `/api/peers` and signaling stats; zeros while the node runs no DHT.
    pub(crate) async fn dht_summary(&self) -> DhtSummary {
        let Some(dht) = &self.dht else {
            return DhtSummary::default();
        };
        match dht.overlay().stats().await {
            Ok(s) => DhtSummary {
                total_nodes: s.total_nodes,
                buckets_used: s.buckets_used,
                bootstrap_nodes: s.bootstrap_nodes,
            },
            Err(_) => DhtSummary::default(),
        }
    }

    /// Brings gauges up to date just before a scrape.
    pub(crate) async fn record_metrics(&self) {
        let system = self.monitor.snapshot();
        metrics::gauge!("pqnode_process_resident_memory_bytes").set(system.rss_bytes as f64);
        metrics::gauge!("pqnode_process_cpu_percent").set(f64::from(system.cpu_percent));
        let optional = [
            ("pqnode_process_open_fds", system.open_fds),
            ("pqnode_process_max_fds", system.fd_limit),
            ("pqnode_data_disk_total_bytes", system.data_disk_total_bytes),
            (
                "pqnode_data_disk_available_bytes",
                system.data_disk_available_bytes,
            ),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                metrics::gauge!(name).set(value as f64);
            }
        }
        metrics::gauge!("pqnode_host_memory_used_bytes").set(system.host_memory_used_bytes as f64);
        metrics::gauge!("pqnode_uptime_seconds").set(self.uptime().as_secs_f64());
        metrics::gauge!("pqnode_ready").set(if self.is_ready() { 1.0 } else { 0.0 });
        for (_, listener) in self.listeners() {
            listener.record_metrics();
        }
        if let Some(crdt) = &self.crdt {
            crdt.record_metrics();
        }
        for report in self.components().reports().await {
            let value = match report.health.status {
                Status::Pass => 0.0,
                Status::Warn => 1.0,
                Status::Fail => 2.0,
                Status::Disabled => -1.0,
            };
            metrics::gauge!("pqnode_component_health", "component" => report.name).set(value);
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DhtSummary {
    pub total_nodes: usize,
    pub buckets_used: usize,
    pub bootstrap_nodes: usize,
}
