//! The system monitor (start-up step 8): this process's memory, CPU and descriptors, the
//! host's memory and load, and the disk under the data folder, sampled on a timer so API
//! calls never pay for a refresh. Its health warns before the node runs out: low disk
//! (acknowledged writes would start failing), descriptors near the limit.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use pqnode_health::Health;
use serde::Serialize;
use sysinfo::{DiskRefreshKind, Disks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio_util::sync::CancellationToken;

use crate::components::{Component, StatsFuture};

/// Warn when the data folder's disk has less than this fraction free...
const DISK_WARN_FREE_RATIO: f64 = 0.05;
/// ...or less than this many bytes.
const DISK_WARN_FREE_BYTES: u64 = 1 << 30;
/// Warn when this share of the descriptor limit is in use.
const FD_WARN_RATIO: f64 = 0.8;

/// How often the sample is refreshed. CPU usage needs two samples at least
/// 200 ms apart, so the first snapshot reports 0 % until the second refresh.
const INTERVAL: Duration = Duration::from_secs(5);

/// `/api/system`: the system monitor's latest sample (refreshed every 5 s).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SystemInfo)]
pub(crate) struct SystemSnapshot {
    pub pid: u32,
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_percent: f32,
    pub host_cpus: usize,
    pub host_memory_total_bytes: u64,
    pub host_memory_used_bytes: u64,
    pub load_average_1m: f64,
    /// Descriptors this process holds (Linux; `null` elsewhere).
    pub open_fds: Option<u64>,
    /// Its soft descriptor limit (Linux; `null` elsewhere).
    pub fd_limit: Option<u64>,
    /// The disk the data folder is on.
    pub data_disk_total_bytes: Option<u64>,
    pub data_disk_available_bytes: Option<u64>,
}

pub(crate) struct Monitor {
    system: Mutex<System>,
    disks: Mutex<Option<Disks>>,
    data_dir: PathBuf,
    pid: Pid,
    latest: Mutex<SystemSnapshot>,
}

impl Monitor {
    pub(crate) fn new(data_dir: &Path) -> anyhow::Result<Self> {
        let system =
            System::new().map_err(|e| anyhow::anyhow!("system monitor unavailable: {e}"))?;
        let pid =
            sysinfo::get_current_pid().map_err(|e| anyhow::anyhow!("cannot find own pid: {e}"))?;
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_owned());
        let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing()).ok();
        let monitor = Self {
            system: Mutex::new(system),
            disks: Mutex::new(disks),
            data_dir,
            pid,
            latest: Mutex::new(SystemSnapshot::default()),
        };
        monitor.refresh();
        Ok(monitor)
    }

    pub(crate) fn snapshot(&self) -> SystemSnapshot {
        self.latest.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Samples now. Cheap (one process and the memory counters), but it does
    /// read /proc, so it runs on a blocking thread from `run`.
    pub(crate) fn refresh(&self) {
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
        drop(system);
        snap.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        snap.fd_limit = soft_fd_limit();
        if let Some((total, available)) = self.data_disk() {
            snap.data_disk_total_bytes = Some(total);
            snap.data_disk_available_bytes = Some(available);
        }
        if let Ok(mut latest) = self.latest.lock() {
            *latest = snap;
        }
    }

    /// The disk whose mount point is the longest prefix of the data folder: (total, available).
    fn data_disk(&self) -> Option<(u64, u64)> {
        let mut disks = self.disks.lock().ok()?;
        let disks = disks.as_mut()?;
        disks.refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        disks
            .iter()
            .filter(|d| self.data_dir.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len())
            .map(|d| (d.total_space(), d.available_space()))
    }

    /// Refreshes every few seconds until cancelled.
    pub(crate) async fn run(self: std::sync::Arc<Self>, cancel: CancellationToken) {
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

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux).
fn soft_fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

impl SystemSnapshot {
    /// `warn` with the reason when the data disk is nearly full or descriptors are nearly
    /// used up; `pass` otherwise.
    pub(crate) fn health(&self) -> Health {
        let mut problems = Vec::new();
        if let (Some(total), Some(free)) =
            (self.data_disk_total_bytes, self.data_disk_available_bytes)
            && total > 0
            && (free < DISK_WARN_FREE_BYTES || (free as f64) < total as f64 * DISK_WARN_FREE_RATIO)
        {
            problems.push(format!(
                "the data folder's disk has {} MiB free of {} MiB",
                free >> 20,
                total >> 20
            ));
        }
        if let (Some(open), Some(limit)) = (self.open_fds, self.fd_limit)
            && limit > 0
            && open as f64 >= limit as f64 * FD_WARN_RATIO
        {
            problems.push(format!("{open} of {limit} file descriptors in use"));
        }
        match problems.is_empty() {
            true => Health::pass(),
            false => Health::warn(problems.join("; ")),
        }
    }
}

impl Component for Monitor {
    fn health(&self) -> Health {
        self.snapshot().health()
    }

    fn stats(&self) -> StatsFuture<'_> {
        Box::pin(async { serde_json::to_value(self.snapshot()).unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use pqnode_health::Status;

    use super::*;

    #[test]
    fn low_disk_and_descriptors_near_the_limit_warn() {
        let healthy = SystemSnapshot {
            data_disk_total_bytes: Some(100 << 30),
            data_disk_available_bytes: Some(50 << 30),
            open_fds: Some(100),
            fd_limit: Some(1024),
            ..SystemSnapshot::default()
        };
        assert_eq!(healthy.health().status, Status::Pass);
        let full = SystemSnapshot {
            data_disk_available_bytes: Some(512 << 20),
            ..healthy.clone()
        };
        let health = full.health();
        assert_eq!(health.status, Status::Warn);
        assert!(health.reason.unwrap().contains("512 MiB free"));
        let busy = SystemSnapshot {
            open_fds: Some(900),
            ..healthy.clone()
        };
        assert!(busy.health().reason.unwrap().contains("900 of 1024"));
        // Unknown figures are not a problem.
        assert_eq!(SystemSnapshot::default().health().status, Status::Pass);
    }

    #[test]
    fn a_sample_reads_this_process_and_its_disk() {
        let dir = tempfile::tempdir().unwrap();
        let monitor = Monitor::new(dir.path()).unwrap();
        let snap = monitor.snapshot();
        assert!(snap.rss_bytes > 0);
        assert!(snap.open_fds.unwrap() > 0);
        assert!(snap.fd_limit.unwrap() > 0);
        assert!(snap.data_disk_total_bytes.unwrap() > 0, "{snap:?}");
    }
}
