//! The system monitor (start-up step 8): this process's memory and CPU, and
//! the host's, sampled on a timer so API calls never pay for a refresh.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio_util::sync::CancellationToken;

/// How often the sample is refreshed. CPU usage needs two samples at least
/// 200 ms apart, so the first snapshot reports 0 % until the second refresh.
const INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSnapshot {
    pub pid: u32,
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_percent: f32,
    pub host_cpus: usize,
    pub host_memory_total_bytes: u64,
    pub host_memory_used_bytes: u64,
    pub load_average_1m: f64,
}

pub struct Monitor {
    system: Mutex<System>,
    pid: Pid,
    latest: Mutex<SystemSnapshot>,
}

impl Monitor {
    pub fn new() -> anyhow::Result<Self> {
        let system =
            System::new().map_err(|e| anyhow::anyhow!("system monitor unavailable: {e}"))?;
        let pid =
            sysinfo::get_current_pid().map_err(|e| anyhow::anyhow!("cannot find own pid: {e}"))?;
        let monitor = Self {
            system: Mutex::new(system),
            pid,
            latest: Mutex::new(SystemSnapshot::default()),
        };
        monitor.refresh();
        Ok(monitor)
    }

    pub fn snapshot(&self) -> SystemSnapshot {
        self.latest.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Samples now. Cheap (one process and the memory counters), but it does
    /// read /proc, so it runs on a blocking thread from `run`.
    pub fn refresh(&self) {
        let Ok(mut system) = self.system.lock() else {
            return;
        };
        system.refresh_memory();
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing().with_memory().with_cpu(),
        );
        let mut snap = SystemSnapshot {
            pid: self.pid.as_u32(),
            host_cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            host_memory_total_bytes: system.total_memory(),
            host_memory_used_bytes: system.used_memory(),
            load_average_1m: System::load_average().map(|l| l.one).unwrap_or(0.0),
            ..SystemSnapshot::default()
        };
        if let Some(process) = system.process(self.pid) {
            snap.rss_bytes = process.memory();
            snap.virtual_bytes = process.virtual_memory();
            snap.cpu_percent = process.cpu_usage();
        }
        if let Ok(mut latest) = self.latest.lock() {
            *latest = snap;
        }
    }

    /// Refreshes every few seconds until cancelled.
    pub async fn run(self: std::sync::Arc<Self>, cancel: CancellationToken) {
        let mut ticker = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {
                    let monitor = self.clone();
                    let _ = tokio::task::spawn_blocking(move || monitor.refresh()).await;
                }
            }
        }
    }
}
