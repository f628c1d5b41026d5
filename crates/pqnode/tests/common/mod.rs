//! Runs real `pqnode` processes for end-to-end tests.
//!
//! Every node binds port 0 and reports the addresses it got in its JSON
//! "pqnode is ready" log line, so tests never race for ports.

#![allow(dead_code)]

pub(crate) mod signaling;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_pqnode");
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `pqnode` process and what it reported.
pub(crate) struct TestNode {
    child: Option<Child>,
    pub(crate) data_dir: PathBuf,
    pub(crate) api: String,
    pub(crate) ready: Value,
    pub(crate) log: Arc<Mutex<Vec<String>>>,
}

/// Extra flags for a node; `--data-dir`, JSON logs and port-0 addresses are added unless given.
pub(crate) struct NodeOptions<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// Address flags the harness must not add (the test sets them another way).
    pub(crate) no_defaults: Vec<&'static str>,
    /// `RLIMIT_NOFILE` (soft and hard) for the node process.
    pub(crate) nofile: Option<u64>,
}

impl<'a> NodeOptions<'a> {
    pub(crate) fn new(data_dir: &'a Path) -> Self {
        Self {
            data_dir,
            args: Vec::new(),
            env: Vec::new(),
            no_defaults: Vec::new(),
            nofile: None,
        }
    }

    pub(crate) fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    pub(crate) fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub(crate) fn without_default(mut self, flag: &'static str) -> Self {
        self.no_defaults.push(flag);
        self
    }

    pub(crate) fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

pub(crate) fn command(opts: &NodeOptions<'_>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(opts.data_dir)
        .arg("--log-format")
        .arg("json");
    let has = |flag: &str| {
        opts.no_defaults.contains(&flag)
            || opts.args.iter().any(|a| a == flag)
            || opts.env.iter().any(|(k, _)| k == &env_name(flag))
    };
    for (flag, value) in [
        ("--api-addr", "127.0.0.1:0"),
        ("--signaling-addr", "127.0.0.1:0"),
        ("--p2p-addr", "127.0.0.1:0"),
    ] {
        if !has(flag) {
            cmd.arg(flag).arg(value);
        }
    }
    cmd.args(&opts.args);
    cmd.env_remove("RUST_LOG");
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(limit) = opts.nofile {
        use std::os::unix::process::CommandExt;
        let rlimit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe
        // and reads nothing but this copied struct.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd
}

fn env_name(flag: &str) -> String {
    format!(
        "PQNODE_{}",
        flag.trim_start_matches("--")
            .replace('-', "_")
            .to_uppercase()
    )
}

impl TestNode {
    pub(crate) fn start(opts: NodeOptions<'_>) -> Self {
        match Self::try_start(opts) {
            Ok(node) => node,
            Err(e) => panic!("node did not start: {e}"),
        }
    }

    /// Starts a node and waits for its ready line, or returns the log if it exits first.
    pub(crate) fn try_start(opts: NodeOptions<'_>) -> Result<Self, String> {
        let mut child = command(&opts)
            .spawn()
            .map_err(|e| format!("cannot spawn {BIN}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "pqnode is ready"
                {
                    let _ = tx.send(v);
                }
                sink.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(ready) => {
                let api = format!("http://{}", ready["api"].as_str().unwrap_or_default());
                Ok(Self {
                    child: Some(child),
                    data_dir: opts.data_dir.to_owned(),
                    api,
                    ready,
                    log,
                })
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                std::thread::sleep(Duration::from_millis(100));
                let lines = log.lock().unwrap().join("\n");
                Err(format!("exit status {status:?}; log:\n{lines}"))
            }
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.api, path)
    }

    pub(crate) fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
        assert!(
            status.map(|s| s.success()).unwrap_or(false),
            "kill -{sig} failed"
        );
    }

    /// Sends SIGTERM and waits for the exit, returning its status and how long it took.
    pub(crate) fn terminate(mut self) -> (ExitStatus, Duration) {
        self.signal("TERM");
        let started = Instant::now();
        let status = self.wait(Duration::from_secs(30));
        (status, started.elapsed())
    }

    pub(crate) fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("node already reaped");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                panic!("node did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

pub(crate) async fn get_json(url: &str) -> (u16, Value) {
    let response = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let body = response
        .json::<Value>()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body is not JSON: {e}"));
    (status, body)
}

/// The body of `GET url` as text (Prometheus metrics, pages).
pub(crate) async fn get_text(url: &str) -> String {
    http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"))
}

/// A port free for TCP and UDP a moment ago, for tests about explicit ports. It is drawn
/// below the kernel's ephemeral range: the nodes of tests running alongside bind port 0 and
/// dial out from ephemeral ports, so none of them can take it before the node binds it.
pub(crate) fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    const LOWEST: u16 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .filter(|&low| low > LOWEST + 1_000)
        .unwrap_or(32_768);
    let span = u64::from(ephemeral - LOWEST);
    loop {
        let draw = RandomState::new().hash_one(std::time::Instant::now());
        let port = LOWEST + (draw % span) as u16;
        if free_for_tcp_and_udp(port) {
            return port;
        }
    }
}

/// Whether `port` on loopback can be bound for both TCP and UDP right now.
pub(crate) fn free_for_tcp_and_udp(port: u16) -> bool {
    use std::net::{Ipv4Addr, TcpListener, UdpSocket};
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// The node's id, from its crypto status.
pub(crate) async fn node_id(node: &TestNode) -> String {
    let (_, status) = get_json(&node.url("/api/crypto/status")).await;
    status["nodeId"]
        .as_str()
        .expect("nodeId in the crypto status")
        .to_owned()
}

/// The QUIC address the node reported in its ready line.
pub(crate) fn p2p_addr(node: &TestNode) -> String {
    node.ready["p2p"]
        .as_str()
        .expect("p2p address in the ready line")
        .to_owned()
}

/// The API token the node generated into its data folder.
pub(crate) fn token(node: &TestNode) -> String {
    std::fs::read_to_string(node.data_dir.join("api.token"))
        .expect("api.token")
        .trim()
        .to_owned()
}
