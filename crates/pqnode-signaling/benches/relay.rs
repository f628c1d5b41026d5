//! Relay throughput, latency and memory per connected client.
//!
//! Run: `ulimit -n 20000; cargo bench -p pqnode-signaling --bench relay -- [CLIENTS] [MESSAGES]`
//! (defaults 1000 clients, 20 messages per sender).
//!
//! The server runs in a child process (this binary with `--serve`), so its
//! memory is measured alone: RSS after all clients registered minus RSS
//! before the first connected. Clients are paired; every sender blasts
//! offers carrying a ~460-byte SDP-like payload and a send timestamp to its
//! partner, and the receiver records the one-way latency.
//!
//! Anchor, measured in the same run with the same clients: a bare axum
//! WebSocket echo server (no registration, no JSON, no routing). The ratios
//! say what signaling costs on top of the WebSocket stack itself. Figures
//! only: a benchmark never fails on time.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use pqnode_crypto::NodeId;
use pqnode_signaling::{
    Algorithm, PeerId, RateLimit, SignalingConfig, SignalingServer, registration_message, router,
};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Signaling,
    Echo,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(pos) = args.iter().position(|a| a == "--serve") {
        let mode = match args.get(pos + 1).map(String::as_str) {
            Some("echo") => Mode::Echo,
            _ => Mode::Signaling,
        };
        serve(mode);
        return;
    }
    // cargo bench passes `--bench`; numbers are positional.
    let numbers: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let clients = numbers.first().copied().unwrap_or(1000).max(2) / 2 * 2;
    let messages = numbers.get(1).copied().unwrap_or(20).max(1);

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    println!("signaling relay benchmark: {clients} clients, {messages} messages per sender");
    let echo = runtime.block_on(run(Mode::Echo, clients, messages));
    let signaling = runtime.block_on(run(Mode::Signaling, clients, messages));
    println!();
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "", "echo anchor", "signaling", "ratio"
    );
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!(
            "{name:<28} {:>11.3} {unit:<2} {:>11.3} {unit:<2} {:>8.2}",
            a,
            b,
            b / a
        );
    };
    row(
        "throughput (msg/s)",
        echo.throughput,
        signaling.throughput,
        "",
    );
    row(
        "latency p50 under load (ms)",
        echo.p50_ms,
        signaling.p50_ms,
        "",
    );
    row(
        "latency p99 under load (ms)",
        echo.p99_ms,
        signaling.p99_ms,
        "",
    );
    row(
        "latency p50 idle (ms)",
        echo.idle_p50_ms,
        signaling.idle_p50_ms,
        "",
    );
    row(
        "latency p99 idle (ms)",
        echo.idle_p99_ms,
        signaling.idle_p99_ms,
        "",
    );
    row(
        "server RSS per client (KiB)",
        echo.rss_per_client_kib,
        signaling.rss_per_client_kib,
        "",
    );
    println!(
        "connect+register time: echo {:.2} s, signaling {:.2} s",
        echo.setup_s, signaling.setup_s
    );
}

struct Figures {
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    idle_p50_ms: f64,
    idle_p99_ms: f64,
    rss_per_client_kib: f64,
    setup_s: f64,
}

// ---- the server child --------------------------------------------------------

fn serve(mode: Mode) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let app = match mode {
            Mode::Signaling => {
                let unlimited = RateLimit {
                    per_second: 1_000_000,
                    burst: 1_000_000,
                };
                let config = SignalingConfig {
                    max_connections: 100_000,
                    max_connections_per_ip: 100_000,
                    session_rate: unlimited,
                    ip_rate: unlimited,
                    outbound_queue: 1024,
                    ..SignalingConfig::default()
                };
                router(SignalingServer::new(NodeId::from_bytes([1; 20]), config))
            }
            Mode::Echo => axum::Router::new().route(
                pqnode_signaling::PATH,
                axum::routing::get(|ws: WebSocketUpgrade| async move {
                    // The same WebSocket settings as the signaling endpoint.
                    ws.max_message_size(64 * 1024)
                        .max_frame_size(64 * 1024)
                        .read_buffer_size(4 * 1024)
                        .write_buffer_size(4 * 1024)
                        .on_upgrade(|mut socket| async move {
                            while let Some(Ok(msg)) = socket.next().await {
                                if let AxumMessage::Text(_) = msg
                                    && socket.send(msg).await.is_err()
                                {
                                    break;
                                }
                            }
                        })
                }),
            ),
        };
        println!("PORT {}", addr.port());
        std::io::stdout().flush().expect("stdout");
        // Exit when the parent closes our stdin.
        tokio::spawn(async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
            })
            .await;
            std::process::exit(0);
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
}

struct ServerChild {
    child: Child,
    addr: SocketAddr,
}

impl ServerChild {
    fn spawn(mode: Mode) -> Self {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("--serve")
            .arg(if mode == Mode::Echo {
                "echo"
            } else {
                "signaling"
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn server child");
        let stdout = child.stdout.take().expect("child stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read port");
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .expect("PORT line");
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

// ---- clients -----------------------------------------------------------------

async fn connect(addr: SocketAddr, mode: Mode) -> (Ws, Option<PeerId>) {
    let (mut ws, _) = connect_async(format!("ws://{addr}{}", pqnode_signaling::PATH))
        .await
        .expect("connect");
    if mode == Mode::Echo {
        return (ws, None);
    }
    let hello = next_json(&mut ws).await;
    let node: NodeId = hello["node_id"]
        .as_str()
        .expect("node_id")
        .parse()
        .expect("node id");
    let nonce = hello["nonce"].as_str().expect("nonce").to_owned();
    let key = Ed25519KeyPair::generate().expect("ed25519 key");
    let public_key = key.public_key().as_ref().to_vec();
    let peer = PeerId::derive(Algorithm::Ed25519, &public_key);
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let sig = key.sign(&registration_message(&node, &nonce, &peer, ts));
    let register = json!({
        "type": "register", "algorithm": "Ed25519", "public_key": hex::encode(&public_key),
        "peer_id": peer.to_hex(), "nonce": nonce, "ts": ts, "signature": hex::encode(sig.as_ref()),
    });
    ws.send(Message::Text(register.to_string().into()))
        .await
        .expect("send register");
    let reply = next_json(&mut ws).await;
    assert_eq!(reply["type"], "registered", "{reply}");
    (ws, Some(peer))
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).expect("server JSON");
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// The message a sender sends: what a browser offer looks like, plus a timestamp.
fn offer(mode: Mode, to: Option<PeerId>, sdp: &str, sent_ns: u64) -> String {
    let data = json!({"type": "offer", "sdp": sdp, "t": sent_ns});
    match (mode, to) {
        (Mode::Signaling, Some(to)) => {
            json!({"type": "offer", "to": to.to_hex(), "data": data}).to_string()
        }
        _ => json!({"type": "offer", "data": data}).to_string(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run(mode: Mode, clients: usize, messages: usize) -> Figures {
    let server = ServerChild::spawn(mode);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = server.rss_kib();

    let setup = Instant::now();
    let mut sockets = Vec::with_capacity(clients);
    // Connect in batches: a burst of thousands of SYNs overflows the accept backlog.
    for batch in (0..clients).collect::<Vec<_>>().chunks(100) {
        let handles: Vec<_> = batch
            .iter()
            .map(|_| tokio::spawn(connect(server.addr, mode)))
            .collect();
        for handle in handles {
            sockets.push(handle.await.expect("connect task"));
        }
    }
    let setup_s = setup.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after = server.rss_kib();
    let rss_per_client_kib = (rss_after - rss_before) / clients as f64;

    // SDP of a data-channel-only offer from Chromium is about 460 bytes.
    let sdp: Arc<str> = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:6Zbx\r\na=ice-pwd:mZ3PDiFWsHhS8nX6Va3pTcR7\r\na=ice-options:trickle\r\n\
        a=fingerprint:sha-256 4C:3B:2A:19:08:F7:E6:D5:C4:B3:A2:91:80:7F:6E:5D:4C:3B:2A:19:08:F7:E6:D5:C4:B3:A2:91:80:7F:6E:5D\r\n\
        a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
        .into();

    let base = Instant::now();
    let half = clients / 2;
    let peers: Vec<Option<PeerId>> = sockets.iter().map(|(_, p)| *p).collect();
    let mut senders = Vec::with_capacity(half);
    let mut receivers = Vec::with_capacity(half);
    for (i, (ws, _)) in sockets.into_iter().enumerate() {
        let (sink, stream) = ws.split();
        if i < half {
            senders.push((sink, stream, peers[i + half]));
        } else {
            receivers.push((sink, stream));
        }
    }

    // In echo mode the echo comes back to the sender, so the sender's stream is the receiver.
    let expected = messages;
    let start = Arc::new(Barrier::new(half + 1));
    let mut receive_tasks = Vec::new();
    let mut send_tasks = Vec::new();
    for ((mut sink, mut stream, to), (_rsink, mut rstream)) in senders.into_iter().zip(receivers) {
        let sdp = Arc::clone(&sdp);
        let start = Arc::clone(&start);
        // The receiving side: the partner (signaling) or the sender itself (echo).
        let receive = async move |stream: &mut futures_util::stream::SplitStream<Ws>| {
            let mut latencies = Vec::with_capacity(expected);
            while latencies.len() < expected {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                            continue;
                        };
                        if let Some(t) = v["data"]["t"].as_u64() {
                            let now = base.elapsed().as_nanos() as u64;
                            latencies.push((now.saturating_sub(t)) as f64 / 1e6);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            latencies
        };
        if mode == Mode::Echo {
            receive_tasks.push(tokio::spawn(async move { receive(&mut stream).await }));
            drop(rstream);
        } else {
            receive_tasks.push(tokio::spawn(async move { receive(&mut rstream).await }));
            // Drain acks so the sender's queue never fills.
            tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
        }
        send_tasks.push(tokio::spawn(async move {
            start.wait().await;
            for _ in 0..expected {
                let text = offer(mode, to, &sdp, base.elapsed().as_nanos() as u64);
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            sink
        }));
    }

    start.wait().await;
    let blast = Instant::now();
    let mut latencies = Vec::with_capacity(half * expected);
    for task in receive_tasks {
        latencies.extend(task.await.expect("receiver"));
    }
    let elapsed = blast.elapsed().as_secs_f64();
    let delivered = latencies.len();
    latencies.sort_by(f64::total_cmp);
    let throughput = delivered as f64 / elapsed;
    let (p50_ms, p99_ms) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    if delivered < half * expected {
        println!(
            "  warning: {delivered} of {} messages arrived",
            half * expected
        );
    }

    // Idle latency: one pair, one message in flight at a time.
    let mut sinks = Vec::new();
    for task in send_tasks {
        sinks.push(task.await.expect("sender"));
    }
    drop(sinks);
    let (mut a, _) = connect(server.addr, mode).await;
    let (mut b, b_id) = connect(server.addr, mode).await;
    let mut idle = Vec::with_capacity(200);
    for _ in 0..200 {
        let text = offer(mode, b_id, &sdp, base.elapsed().as_nanos() as u64);
        a.send(Message::Text(text.into())).await.expect("send");
        let receiver = if mode == Mode::Echo { &mut a } else { &mut b };
        loop {
            let v = next_json(receiver).await;
            if let Some(t) = v["data"]["t"].as_u64() {
                idle.push((base.elapsed().as_nanos() as u64 - t) as f64 / 1e6);
                break;
            }
        }
    }
    idle.sort_by(f64::total_cmp);

    let name = if mode == Mode::Echo {
        "echo anchor"
    } else {
        "signaling"
    };
    println!(
        "{name}: {delivered} messages in {elapsed:.2} s = {throughput:.0} msg/s; \
         p50 {p50_ms:.2} ms, p99 {p99_ms:.2} ms under load; idle p50 {:.3} ms, p99 {:.3} ms; \
         server RSS {rss_before:.0} -> {rss_after:.0} KiB ({rss_per_client_kib:.1} KiB per client)",
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
    );
    Figures {
        throughput,
        p50_ms,
        p99_ms,
        idle_p50_ms: percentile(&idle, 0.5),
        idle_p99_ms: percentile(&idle, 0.99),
        rss_per_client_kib,
        setup_s,
    }
}
