//! Start-up and idle-memory figures of the real binary (prints; never fails on time).
//!
//! - time from process start to `/readyz` 200, on first start (keys are
//!   generated, the store is created) and on restart (keys and store loaded);
//! - resident memory of an idle node, and of a node with 4 connected peers;
//! - the anchor: the same binary's `pqnode --version` (process start + exit).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pqnode");
const RUNS: usize = 10;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

struct Node {
    child: Child,
    api: u16,
    p2p: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Starts a node and returns it with the time until `/readyz` answered 200.
fn start(dir: &Path, extra: &[String]) -> (Node, Duration) {
    let (api, p2p) = (free_port(), free_port());
    let started = Instant::now();
    let child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["--api-addr", &format!("127.0.0.1:{api}")])
        .args(["--signaling-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--p2p-addr", &format!("127.0.0.1:{p2p}")])
        .args(["--log-filter", "warn"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pqnode");
    // Owned by `Node` from here, so its Drop reaps the process on every path.
    let node = Node { child, api, p2p };
    loop {
        if let Some((200, _)) = http_get(api, "/readyz") {
            return (node, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node did not become ready"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mut version = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let ok = Command::new(BIN)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(ok);
        version.push(t.elapsed());
    }
    let anchor = median(version);

    let mut first = Vec::new();
    let mut again = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let (node, t) = start(dir.path(), &[]);
        first.push(t);
        drop(node);
        let (node, t) = start(dir.path(), &[]);
        again.push(t);
        drop(node);
    }
    let (first, again) = (median(first), median(again));
    println!("process start -> /readyz 200 (median of {RUNS}):");
    println!(
        "  first start (keys generated, store created): {:8.1} ms  ({:.1}x `pqnode --version`)",
        ms(first),
        ms(first) / ms(anchor)
    );
    println!(
        "  restart (keys and store loaded):             {:8.1} ms  ({:.1}x)",
        ms(again),
        ms(again) / ms(anchor)
    );
    println!(
        "  anchor `pqnode --version`:                   {:8.1} ms",
        ms(anchor)
    );

    let dir = tempfile::tempdir().unwrap();
    let (hub, _) = start(dir.path(), &[]);
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss_kib(hub.child.id());
    let (_, status) = http_get(hub.api, "/api/crypto/status").unwrap();
    let hub_id = status
        .split("\"nodeId\":\"")
        .nth(1)
        .and_then(|s| s.get(..40))
        .unwrap()
        .to_owned();
    let mut spokes = Vec::new();
    for _ in 0..4 {
        let d = tempfile::tempdir().unwrap();
        let peer = format!("{hub_id}@127.0.0.1:{}", hub.p2p);
        let (node, _) = start(d.path(), &["--bootstrap".into(), peer]);
        spokes.push((node, d));
    }
    std::thread::sleep(Duration::from_secs(3));
    let busy = rss_kib(hub.child.id());
    let spoke_rss: Vec<u64> = spokes.iter().map(|(n, _)| rss_kib(n.child.id())).collect();
    println!("resident memory:");
    println!("  idle standalone node:           {:8} KiB", idle);
    println!("  same node with 4 DHT peers:     {:8} KiB", busy);
    println!("  its peers (each 1-4 peers):     {:?} KiB", spoke_rss);
}
