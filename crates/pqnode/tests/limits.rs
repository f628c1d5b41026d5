//! No client can starve the node of descriptors or hold up its shutdown: the
//! real binary under a low `RLIMIT_NOFILE`, flooded with half-open HTTP
//! connections on both TCP ports, and stopped while clients hold unfinished
//! requests. Each case prints its figures.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::signaling::{self, Ws, expect};
use common::{NodeOptions, TestNode, get_json, http};
use futures_util::SinkExt;
use pqnode_crypto::Identity;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// The node's descriptor limit in these tests.
const NOFILE: u64 = 256;

/// Lets this test process hold far more sockets than the node may.
fn raise_own_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn write_config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("pqnode.toml");
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

fn signaling_addr(node: &TestNode) -> SocketAddr {
    node.ready["signaling"].as_str().unwrap().parse().unwrap()
}

fn api_addr(node: &TestNode) -> SocketAddr {
    node.ready["api"].as_str().unwrap().parse().unwrap()
}

/// Opens `per_ip` connections from each of `sources` (loopback addresses other than
/// 127.0.0.1, which the real clients use) and sends each a request line and one header,
/// never the blank line that ends the head. Returns the sockets that connected.
async fn half_open(target: SocketAddr, sources: &[[u8; 4]], per_ip: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for source in sources {
        for _ in 0..per_ip {
            let socket = TcpSocket::new_v4().unwrap();
            socket
                .bind(SocketAddr::from((*source, 0)))
                .expect("bind a loopback source address");
            let Ok(mut stream) = socket.connect(target).await else {
                continue;
            };
            // A refused connection is reset; writing to it may fail, which is the point.
            let _ = stream
                .write_all(b"GET /p2p-signaling HTTP/1.1\r\nHost: flood\r\n")
                .await;
            held.push(stream);
        }
    }
    held
}

/// Sources for a flood from one address and from many.
fn sources(first: u8, count: u8) -> Vec<[u8; 4]> {
    (first..first + count).map(|b| [127, 0, 1, b]).collect()
}

/// Connects and registers an ML-DSA-87 peer (keys made before the clock starts).
async fn register(addr: SocketAddr, key: &Identity) -> (Ws, String) {
    signaling::register(addr, key, &["limits"]).await
}

async fn listener_stats(node: &TestNode, name: &str) -> Value {
    let (_, health) = get_json(&node.url("/api/health")).await;
    health["listeners"][name].clone()
}

fn count(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {stats}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_floods_beyond_the_descriptor_limit_do_not_lock_out_real_clients() {
    raise_own_descriptor_limit();
    let dir = tempfile::tempdir().unwrap();
    // Long header timeouts: what keeps real clients in here is the caps, not a timer.
    let config = write_config(
        dir.path(),
        "[api.tcp]\nheader_read_timeout_ms = 60000\n\
         [signaling.tcp]\nheader_read_timeout_ms = 60000\nmax_connections_per_ip = 40\n",
    );
    let node = TestNode::start(
        NodeOptions::new(dir.path())
            .arg("--config")
            .arg(config)
            .nofile(NOFILE),
    );
    let signaling = signaling_addr(&node);
    let before = listener_stats(&node, "signaling").await;
    let cap = count(&before, "maxConnections");
    assert!(
        cap < NOFILE,
        "the cap must fit under the descriptor limit: {before}"
    );

    // One address far over its per-IP share, then many addresses together far over the
    // listener's cap: 1 000 connections against a node allowed 256 descriptors.
    let started = Instant::now();
    let mut held = half_open(signaling, &sources(2, 1), 200).await;
    held.extend(half_open(signaling, &sources(10, 20), 40).await);
    let flood_time = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let flooded = listener_stats(&node, "signaling").await;
    println!(
        "signaling flood: {} connects in {flood_time:?}; cap {cap}, open {}, refused per IP {}, \
         refused full {}, evicted {}, accept errors {}",
        held.len(),
        count(&flooded, "open"),
        count(&flooded, "refusedPerIp"),
        count(&flooded, "refusedFull"),
        count(&flooded, "evicted"),
        count(&flooded, "acceptErrors"),
    );
    assert!(count(&flooded, "refusedPerIp") >= 150, "{flooded}");
    assert!(count(&flooded, "evicted") > 0, "{flooded}");
    assert!(count(&flooded, "open") <= cap, "{flooded}");
    assert_eq!(
        count(&flooded, "acceptErrors"),
        0,
        "the node ran out of descriptors: {flooded}"
    );

    // Real clients, while the flood is held: two peers register and one relays to the other.
    let (kx, ky) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let started = Instant::now();
    let (mut x, x_id) = register(signaling, &kx).await;
    let (mut y, _) = register(signaling, &ky).await;
    let offer = json!({ "type": "offer", "sdp": "v=0\r\n" });
    y.send(Message::text(
        json!({ "type": "offer", "id": 1, "to": x_id, "data": offer }).to_string(),
    ))
    .await
    .unwrap();
    let got = expect(&mut x, "offer").await;
    let relay_time = started.elapsed();
    println!("signaling: two peers registered and relayed in {relay_time:?} under the flood");
    assert_eq!(got["data"], offer);
    assert!(relay_time < Duration::from_secs(1), "{relay_time:?}");

    // The API port: the same flood, then a health check from the operator.
    let api = api_addr(&node);
    let api_cap = count(&listener_stats(&node, "api").await, "maxConnections");
    let mut held_api = half_open(api, &sources(40, 10), 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let response = http()
        .get(node.url("/api/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the API answers under the flood");
    let health_time = started.elapsed();
    assert_eq!(response.status().as_u16(), 200);
    let health: Value = response.json().await.unwrap();
    let api_stats = &health["listeners"]["api"];
    println!(
        "api flood: {} connects; cap {api_cap}, open {}, refused full {}, evicted {}; \
         GET /api/health in {health_time:?}",
        held_api.len(),
        count(api_stats, "open"),
        count(api_stats, "refusedFull"),
        count(api_stats, "evicted"),
    );
    assert!(count(api_stats, "evicted") > 0, "{api_stats}");
    assert!(health_time < Duration::from_secs(1), "{health_time:?}");

    let metrics = common::get_text(&node.url("/metrics")).await;
    assert!(
        metrics.contains("pqnode_tcp_connections_refused_total{"),
        "{metrics}"
    );
    held.clear();
    held_api.clear();
    drop((x, y));
}

#[tokio::test]
async fn malformed_requests_get_json_errors_from_both_ports() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    for (addr, request, status, code) in [
        (
            api_addr(&node),
            b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "BAD_REQUEST",
        ),
        (
            signaling_addr(&node),
            b"GE T / HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "BAD_REQUEST",
        ),
        (
            api_addr(&node),
            [
                &b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "[..],
                &vec![b'a'; 20_000],
                b"\r\n\r\n",
            ]
            .concat(),
            431,
            "HEADERS_TOO_LARGE",
        ),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
        )
        .await
        .expect("an answer")
        .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").expect("a response head");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        assert!(head.contains("content-type: application/json"), "{answer}");
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["error"]["code"], code, "{answer}");
        assert!(body["error"]["message"].is_string(), "{answer}");
    }
}

#[tokio::test]
async fn unfinished_requests_do_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let drain = Duration::from_millis(500);
    let config = write_config(
        dir.path(),
        &format!("[shutdown]\ndrain_ms = {}\n", drain.as_millis()),
    );
    let node = TestNode::start(
        NodeOptions::new(dir.path())
            .arg("--config")
            .arg(config)
            .nofile(NOFILE),
    );
    // Request heads without their final blank line, and a request line cut short, on both
    // ports; an idle keep-alive connection after a finished request as well.
    let mut held = Vec::new();
    for addr in [api_addr(&node), signaling_addr(&node)] {
        for partial in [
            &b"GET /api/health HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET /p2p-signaling HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
            b"GET /",
        ] {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(partial).await.unwrap();
            held.push(stream);
        }
    }
    let (status, _) = get_json(&node.url("/api/health")).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = node.log.clone();
    let (status, took) = node.terminate();
    let log = log.lock().unwrap().join("\n");
    println!(
        "SIGTERM with {} unfinished requests held: exit {status} after {took:?} (drain {drain:?})",
        held.len()
    );
    assert!(status.success(), "exit {status}\n{log}");
    assert!(took < drain + Duration::from_secs(1), "{took:?}\n{log}");
    let stopped: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["message"] == "stopped")
        .map(|v| v["component"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        stopped,
        [
            "crdt",
            "signaling",
            "dht",
            "p2p",
            "background tasks",
            "api",
            "storage"
        ],
        "every stop step ran, storage last\n{log}"
    );
    drop(held);
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[api.tcp]\nheader_read_timeout_ms = 300\n[signaling.tcp]\nheader_read_timeout_ms = 300\n",
    );
    let node = TestNode::start(NodeOptions::new(dir.path()).arg("--config").arg(config));
    for addr in [api_addr(&node), signaling_addr(&node)] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest),
        )
        .await
        .expect("the server closes the connection");
        let took = started.elapsed();
        println!("{addr}: unfinished head closed after {took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    let (_, health) = get_json(&node.url("/api/health")).await;
    for name in ["api", "signaling"] {
        let stats = &health["listeners"][name];
        assert_eq!(count(stats, "headerTimeouts"), 1, "{name}: {stats}");
    }
}
