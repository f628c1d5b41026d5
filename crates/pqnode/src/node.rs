//! A running node: start-up in the spec's order, and graceful shutdown in reverse.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::components::ai::AiService;
use crate::components::crdt::CrdtService;
use crate::components::crypto::CryptoService;
use crate::components::dht::DhtService;
use crate::components::federation::Federation;
use crate::components::p2p::P2pService;
use crate::components::signaling::SignalingService;
use crate::components::storage::StorageService;
use crate::config::Config;
use crate::listen::{HttpServer, bind_tcp};
use crate::monitor::Monitor;
use crate::state::NodeShared;

/// A started node. Dropping it does not stop it: call [`Node::shutdown`].
pub(crate) struct Node {
    shared: Arc<NodeShared>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    api: Arc<HttpServer>,
}

impl Node {
    /// Starts every component in the spec's order, logging each step's duration.
    /// A failing step stops start-up with an error a person can act on.
    pub(crate) async fn start(mut config: Config) -> anyhow::Result<Self> {
        let started = Instant::now();
        info!(version = env!("CARGO_PKG_VERSION"), data_dir = %config.data_dir.display(), mode = ?config.mode, "starting pqnode");
        // First, so components that register metrics at start are recorded.
        let metrics = PrometheusBuilder::new()
            .install_recorder()
            .context("cannot install the metrics recorder")?;
        step(1, "config", async { prepare_data_dir(&config) }).await?;

        let crypto = step(2, "crypto", async {
            CryptoService::start(&config).map(Arc::new)
        })
        .await?;
        let node_id = crypto.node_id();
        info!(node_id = %node_id, "identity ready");

        let storage = step(3, "storage", StorageService::start(&config)).await?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let crdt = match config.crdt.enabled {
            true => {
                let identity = Arc::new(crypto.signing_identity()?);
                let start = CrdtService::start(&config, identity, storage.store().clone());
                Some(step(4, "crdt", start).await?)
            }
            false => {
                skipped(4, "crdt", "switched off (crdt.enabled = false)");
                None
            }
        };
        let network = match config.p2p.enabled {
            true => Some(
                P2pService::bind(&config, crypto.identity())
                    .await
                    .context("start-up: binding the QUIC endpoint failed")?,
            ),
            false => None,
        };
        let dht = match (&network, config.dht.enabled) {
            (Some(network), true) => {
                let identity = Arc::new(crypto.signing_identity()?);
                let start =
                    DhtService::start(&config, identity, network.clone(), storage.store().clone());
                Some(step(5, "dht", start).await?)
            }
            (None, _) => {
                skipped(5, "dht", "needs the QUIC endpoint (p2p.enabled = false)");
                None
            }
            (Some(_), false) => {
                skipped(5, "dht", "switched off (dht.enabled = false)");
                None
            }
        };
        let p2p = match network {
            Some(network) => {
                let start = async { P2pService::start(network, storage.store().clone()) };
                let p2p = step(6, "p2p", start).await?;
                info!(addr = %p2p.addr, "QUIC endpoint listening (ML-KEM-1024 + ML-DSA-87 only)");
                Some(p2p)
            }
            None => {
                skipped(6, "p2p", "switched off (p2p.enabled = false)");
                None
            }
        };
        if let (Some(crdt), Some(dht), Some(p2p)) = (&crdt, &dht, &p2p) {
            crdt.attach_replication(dht.overlay().clone(), p2p.network().clone())?;
            info!("CRDT documents replicate to the nodes that hold them");
        }
        let ai = match config.ai.enabled {
            true => Some(step(7, "ai", AiService::start(&config, storage.store().clone())).await?),
            false => {
                skipped(7, "ai", "switched off (ai.enabled = false)");
                None
            }
        };
        if let (Some(ai), Some(crdt)) = (&ai, &crdt) {
            let follow = ai
                .clone()
                .follow_documents(crdt.docs().clone(), cancel.child_token());
            tracker.spawn(follow);
        }

        let monitor = step(8, "monitor", async {
            Monitor::new(&config.data_dir).map(Arc::new)
        })
        .await?;
        tracker.spawn(monitor.clone().run(cancel.child_token()));

        fit_listeners_to_descriptors(&mut config);
        let api_token =
            crate::token::load_or_create(&config.data_dir, config.api.token.as_deref())?;
        let shared = Arc::new(NodeShared {
            config,
            node_id,
            api_token,
            crypto,
            storage,
            crdt,
            ai,
            p2p,
            dht,
            monitor,
            metrics,
            signaling: OnceLock::new(),
            api_listener: OnceLock::new(),
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            started,
        });

        let api = step(9, "api", serve_api(shared.clone())).await?;
        let api_addr = api.local_addr();
        let _ = shared.api_listener.set(api.clone());
        if shared.config.signaling.enabled {
            let start = start_signaling(&shared);
            let signaling = step(10, "signaling", start).await?;
            let _ = shared.signaling.set(signaling);
        } else {
            skipped(10, "signaling", "switched off (signaling.enabled = false)");
        }

        shared.ready.store(true, Ordering::Release);
        let signaling_addr = shared.signaling.get().map(|s| s.addr.to_string());
        let p2p_addr = shared.p2p.as_ref().map(|p| p.addr.to_string());
        info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            api = %api_addr,
            signaling = signaling_addr.as_deref(),
            p2p = p2p_addr.as_deref(),
            node_id = %node_id,
            "pqnode is ready"
        );
        Ok(Self {
            shared,
            cancel,
            tracker,
            api,
        })
    }

    /// Stops in reverse start-up order within the configured deadline.
    ///
    /// No client can hold it up: after the drain period both HTTP ports stop accepting,
    /// connections that never completed a request are closed, and what is still open when
    /// the request grace runs out is closed by force. Every stop step runs, each bounded
    /// by what is left of the deadline, and a step that fails or overruns does not stop
    /// the ones after it; the store closes last. Any failure is reported (exit 1) only
    /// after all of them ran.
    pub(crate) async fn shutdown(self) -> anyhow::Result<()> {
        let deadline = self.shared.config.shutdown_deadline();
        let started = Instant::now();
        info!(deadline_secs = deadline.as_secs(), "shutting down");
        self.shared.shutting_down.store(true, Ordering::Release);
        self.shared.ready.store(false, Ordering::Release);
        let failed = self.stop_components(started + deadline).await;
        if failed.is_empty() {
            info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "shutdown complete"
            );
            Ok(())
        } else {
            error!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                failed = failed.join(", "),
                "shutdown finished, but some steps failed or overran"
            );
            anyhow::bail!("shutdown steps failed or overran: {}", failed.join(", "))
        }
    }

    /// Runs every stop step; returns the names of those that failed or overran.
    async fn stop_components(self, deadline: Instant) -> Vec<&'static str> {
        let config = &self.shared.config;
        // The store's close (its last commit) gets a share of its own, so steps before it
        // that overrun cannot take all of its time.
        let storage_share = (config.shutdown_deadline() / 4).min(Duration::from_secs(2));
        let before_storage = deadline.checked_sub(storage_share).unwrap_or(deadline);
        let mut failed = Vec::new();

        let drain = Duration::from_millis(config.shutdown.drain_ms);
        if !drain.is_zero() {
            info!(
                drain_ms = drain.as_millis() as u64,
                "readiness is false; draining before stopping"
            );
            tokio::time::sleep(drain.min(before_storage.saturating_duration_since(Instant::now())))
                .await;
        }
        // From here on, no client decides how long this takes.
        let grace_ends = Instant::now() + Duration::from_millis(config.shutdown.request_grace_ms);
        for (_, listener) in self.shared.listeners() {
            listener.begin_shutdown();
        }
        if let Some(crdt) = &self.shared.crdt {
            // Yjs connections close (1001); every acknowledged update is already on disk.
            stop_step("crdt", before_storage, &mut failed, async {
                crdt.shutdown().await;
                Ok(())
            })
            .await;
        }
        if let Some(signaling) = self.shared.signaling.get() {
            let budget = (config.shutdown_deadline() / 2)
                .min(before_storage.saturating_duration_since(Instant::now()));
            stop_step("signaling", before_storage, &mut failed, async {
                signaling.shutdown(budget).await?;
                let grace = grace_ends.saturating_duration_since(Instant::now());
                signaling.listener().finish_shutdown(grace).await;
                Ok(())
            })
            .await;
        }
        if let Some(dht) = &self.shared.dht {
            stop_step("dht", before_storage, &mut failed, dht.shutdown()).await;
        }
        if let Some(p2p) = &self.shared.p2p {
            stop_step("p2p", before_storage, &mut failed, p2p.shutdown()).await;
        }
        // The monitor, the only background task the node runs itself.
        stop_step("background tasks", before_storage, &mut failed, async {
            self.cancel.cancel();
            self.tracker.close();
            self.tracker.wait().await;
            Ok(())
        })
        .await;
        stop_step("api", before_storage, &mut failed, async {
            let grace = grace_ends.saturating_duration_since(Instant::now());
            self.api.finish_shutdown(grace).await;
            Ok(())
        })
        .await;
        stop_step(
            "storage",
            deadline.max(Instant::now() + storage_share),
            &mut failed,
            self.shared.storage.close(),
        )
        .await;
        failed
    }
}

/// Least time a stop step gets even when the deadline has passed, so it still runs.
const MIN_STOP_STEP: Duration = Duration::from_millis(200);

/// Runs one stop step until `until` (at least [`MIN_STOP_STEP`]), logging how it went;
/// a failure or an overrun is recorded in `failed`, never propagated.
async fn stop_step(
    name: &'static str,
    until: Instant,
    failed: &mut Vec<&'static str>,
    fut: impl Future<Output = anyhow::Result<()>>,
) {
    let budget = until
        .saturating_duration_since(Instant::now())
        .max(MIN_STOP_STEP);
    match tokio::time::timeout(budget, timed(name, fut)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => failed.push(name),
        Err(_) => {
            error!(
                component = name,
                budget_ms = budget.as_millis() as u64,
                "stop step overran its share of the shutdown deadline; going on"
            );
            failed.push(name);
        }
    }
}

/// The Yjs endpoint the public port serves at `/sync/{doc}`, when documents are on.
fn sync_endpoint(shared: &NodeShared) -> Option<pqnode_crdt_ws::SyncEndpoint> {
    shared.crdt.as_ref().map(|crdt| crdt.endpoint())
}

/// The signaling server; federated through the DHT and QUIC when both run.
async fn start_signaling(shared: &NodeShared) -> anyhow::Result<Arc<SignalingService>> {
    let (Some(dht), Some(p2p)) = (&shared.dht, &shared.p2p) else {
        return SignalingService::start(
            &shared.config,
            shared.node_id,
            None,
            sync_endpoint(shared),
        )
        .await;
    };
    let federation = Federation::new(dht.overlay(), p2p.network());
    let signaling = SignalingService::start(
        &shared.config,
        shared.node_id,
        Some(&federation),
        sync_endpoint(shared),
    )
    .await?;
    federation.attach(signaling.native())?;
    Ok(signaling)
}

async fn step<T>(
    n: u8,
    name: &'static str,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let started = Instant::now();
    match fut.await {
        Ok(value) => {
            info!(
                step = n,
                component = name,
                elapsed_ms = elapsed_ms(started),
                "start-up step done"
            );
            Ok(value)
        }
        Err(e) => {
            error!(
                step = n,
                component = name,
                error = format!("{e:#}"),
                "start-up step failed"
            );
            Err(e.context(format!("start-up step {n} ({name}) failed")))
        }
    }
}

fn skipped(n: u8, name: &'static str, why: &'static str) {
    info!(step = n, component = name, why, "start-up step skipped");
}

async fn timed(
    name: &'static str,
    fut: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = fut.await;
    match &result {
        Ok(()) => info!(
            component = name,
            elapsed_ms = elapsed_ms(started),
            "stopped"
        ),
        Err(e) => warn!(
            component = name,
            error = format!("{e:#}"),
            "stopped with an error"
        ),
    }
    result
}

fn elapsed_ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })
}

async fn serve_api(shared: Arc<NodeShared>) -> anyhow::Result<Arc<HttpServer>> {
    let addr = shared.config.api.addr;
    let listener = bind_tcp(addr, "api.addr / --api-addr / PQNODE_API_ADDR").await?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        warn!(addr = %local, "the HTTP API listens beyond loopback; reads are not authenticated");
    }
    let limits = shared.config.api.tcp.to_listen();
    let router = crate::api::router(shared.clone());
    HttpServer::start("api", listener, router, limits)
        .with_context(|| format!("cannot serve the API on {local}"))
}

/// Lowers the HTTP listeners' connection caps so that, together, they fit the process's
/// descriptor limit: a flood must meet our cap, not `EMFILE`, or nothing else can connect.
fn fit_listeners_to_descriptors(config: &mut Config) {
    let budget = crate::listen::descriptor_budget();
    let wanted = (config.api.tcp.caps(), config.signaling.tcp.caps());
    let (api, signaling) = crate::listen::fit_to_budget(wanted.0, wanted.1, budget);
    if (api, signaling) != wanted {
        warn!(
            descriptors_for_connections = budget,
            api_max_connections = api.max_connections,
            signaling_max_connections = signaling.max_connections,
            "connection caps lowered to fit the descriptor limit (RLIMIT_NOFILE); raise the limit for more"
        );
    }
    config.api.tcp.set_caps(api);
    config.signaling.tcp.set_caps(signaling);
}

/// SIGINT and SIGTERM, listened for from before start-up, so a signal that
/// arrives at any moment after launch is a graceful shutdown, never the
/// default (immediate) termination.
pub(crate) struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub(crate) fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    /// Waits for the first of them; returns its name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
