//! Relay cost of the PeerJS endpoint against a bare WebSocket echo on the same
//! stack (axum + tungstenite), measured in one run: the ratio is what the
//! realm, JSON parsing and `src` stamping add. Prints figures; never fails on
//! time.
//!
//! `cargo bench -p pqnode-peerjs --bench relay`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use pqnode_peerjs::{PeerJsConfig, PeerJsServer, router};
use tokio_tungstenite::tungstenite::Message;

const PAIRS: usize = 250;
const FLOOD_PER_SENDER: usize = 400;
const PACED_PER_SECOND: usize = 10_000;
const PACED_FOR: Duration = Duration::from_secs(3);

#[derive(Clone, Copy)]
enum Target {
    /// The server sends each frame back to its sender.
    Echo,
    /// Client 2i sends to client 2i+1 through the PeerJS endpoint.
    Relay,
}

struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let echo = serve(Router::new().route("/echo", get(echo_upgrade))).await?;
        let config = PeerJsConfig {
            rate_per_second: 1_000_000,
            rate_burst: 1_000_000,
            max_connections_per_ip: 10_000,
            ..PeerJsConfig::default()
        };
        let peerjs = serve(router(PeerJsServer::new(config))).await?;

        println!("{PAIRS} client pairs, one process, loopback");
        for (phase, paced) in [("flood", false), ("paced", true)] {
            let anchor = measure(Target::Echo, echo, paced).await?;
            let ours = measure(Target::Relay, peerjs, paced).await?;
            println!(
                "{phase:>5}: echo anchor {:>8.0} msg/s p50 {:>6.2} ms p99 {:>6.2} ms | \
                 peerjs relay {:>8.0} msg/s p50 {:>6.2} ms p99 {:>6.2} ms | \
                 throughput ratio {:.2}, p99 ratio {:.2}",
                anchor.per_second,
                anchor.p50_ms,
                anchor.p99_ms,
                ours.per_second,
                ours.p50_ms,
                ours.p99_ms,
                ours.per_second / anchor.per_second,
                ours.p99_ms / anchor.p99_ms,
            );
        }
        Ok(())
    })
}

async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpSocket::new_v4()?;
    listener.bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
    let listener = listener.listen(1024)?;
    let addr = listener.local_addr()?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn echo_upgrade(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            if let AxumMessage::Text(_) = message
                && socket.send(message).await.is_err()
            {
                break;
            }
        }
    })
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(target: Target, addr: SocketAddr, id: &str) -> Result<Client, String> {
    let url = match target {
        Target::Echo => format!("ws://{addr}/echo"),
        Target::Relay => {
            format!("ws://{addr}/p2p-signaling/peerjs?key=peerjs&id={id}&token=t{id}")
        }
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| e.to_string())?;
    if let Target::Relay = target {
        // Wait for OPEN.
        ws.next()
            .await
            .ok_or("closed before OPEN")?
            .map_err(|e| e.to_string())?;
    }
    Ok(ws)
}

fn frame(dst: &str, start: Instant) -> String {
    let nanos = start.elapsed().as_nanos();
    format!(
        r#"{{"type":"CANDIDATE","dst":"{dst}","payload":{{"candidate":{{"candidate":"candidate:547348620 1 udp 2113937151 192.0.2.2 59092 typ host generation 0","sdpMid":"0","sdpMLineIndex":0}},"type":"data","connectionId":"dc_bench","t":{nanos}}}}}"#
    )
}

/// Reads the send time back out of a received frame.
fn sent_at(text: &str) -> Option<u128> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value["payload"]["t"].as_u64().map(u128::from)
}

async fn measure(
    target: Target,
    addr: SocketAddr,
    paced: bool,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let run = format!(
        "{:x}",
        Instant::now().elapsed().as_nanos() ^ u128::from(rand_tag())
    );
    let per_sender = if paced {
        PACED_PER_SECOND * PACED_FOR.as_secs() as usize / PAIRS
    } else {
        FLOOD_PER_SENDER
    };
    let interval = PACED_FOR / per_sender.max(1) as u32;
    let start = Instant::now();
    let mut senders = Vec::with_capacity(PAIRS);
    let mut receivers = Vec::with_capacity(PAIRS);
    for pair in 0..PAIRS {
        let from = format!("s{run}x{pair}");
        let to = format!("r{run}x{pair}");
        let sender = connect(target, addr, &from).await?;
        let receiver = match target {
            Target::Echo => None,
            Target::Relay => Some(connect(target, addr, &to).await?),
        };
        senders.push((sender, to));
        receivers.push(receiver);
    }

    let began = Instant::now();
    let mut tasks = Vec::with_capacity(PAIRS);
    for ((sender, to), receiver) in senders.into_iter().zip(receivers) {
        tasks.push(tokio::spawn(async move {
            let (mut sink, echo_stream) = sender.split();
            let mut stream = match receiver {
                Some(receiver) => receiver.split().1,
                None => echo_stream,
            };
            let writer = tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                for _ in 0..per_sender {
                    if paced {
                        tick.tick().await;
                    }
                    if sink.send(Message::text(frame(&to, start))).await.is_err() {
                        break;
                    }
                }
                sink
            });
            let mut latencies = Vec::with_capacity(per_sender);
            while latencies.len() < per_sender {
                match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        if let Some(t) = sent_at(&text) {
                            let now = start.elapsed().as_nanos();
                            latencies.push(now.saturating_sub(t) as f64 / 1e6);
                        }
                    }
                    Ok(Some(Ok(_))) => continue,
                    _ => break,
                }
            }
            let _ = writer.await;
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?);
    }
    let elapsed = began.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pick = |p: f64| {
        let index = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(index).copied().unwrap_or(f64::NAN)
    };
    Ok(Figures {
        per_second: latencies.len() as f64 / elapsed,
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
    })
}

/// Distinct ids per run, so a run never collides with the previous one's
/// still-closing sessions.
fn rand_tag() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}
