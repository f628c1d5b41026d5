//! A flood of bad input cannot flood the log: the real binary gets
//! thousands of QUIC Initials it must refuse, garbage datagrams, and PeerJS
//! clients sending bad frames until they are closed. Every event is counted
//! in `/api/health`; the log gets at most a line per kind per interval.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{NodeOptions, TestNode, get_json};
use futures_util::{SinkExt, StreamExt};
use quinn_proto::crypto::rustls::QuicClientConfig;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const INITIALS: usize = 3000;
/// Refusals that must be counted: loopback UDP and quinn's queue of
/// not-yet-accepted connections drop some of a burst, by design.
const ENOUGH: u64 = 500;
/// Far fewer lines than events: one per kind, plus one more should the
/// flood straddle the 10 s interval on a slow machine.
const MAX_LINES_PER_KIND: usize = 2;

/// First datagrams of QUIC connections that offer only classical TLS
/// (X25519, no ALPN): valid Initials a pqnode must refuse, each a fresh
/// connection attempt, as an attacker's tool would send them.
fn classical_initials(target: SocketAddr, n: usize) -> Vec<Vec<u8>> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let config = quinn_proto::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).unwrap()));
    let mut endpoint = quinn_proto::Endpoint::new(
        Arc::new(quinn_proto::EndpointConfig::default()),
        None,
        false,
        None,
    );
    let now = Instant::now();
    (0..n)
        .map(|_| {
            let (_, mut conn) = endpoint
                .connect(now, config.clone(), target, "pqnode")
                .unwrap();
            let mut buf = Vec::new();
            let transmit = conn.poll_transmit(now, 1, &mut buf).unwrap();
            buf.truncate(transmit.size);
            buf
        })
        .collect()
}

fn lines_with(node: &TestNode, needle: &str) -> usize {
    node.log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

async fn health(node: &TestNode) -> Value {
    get_json(&node.url("/api/health")).await.1
}

fn sum(map: &Value) -> u64 {
    map.as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// Polls `/api/health` until `done` holds or 20 s pass; returns the last answer.
async fn until(node: &TestNode, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = health(node).await;
        if done(&h) || Instant::now() > deadline {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn bad_initials_and_bad_frames_are_counted_not_logged_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let quic: SocketAddr = common::p2p_addr(&node).parse().unwrap();

    // QUIC: refused handshakes, and datagrams that are not QUIC at all.
    let initials = classical_initials(quic, INITIALS);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    for (i, datagram) in initials.iter().enumerate() {
        socket.send_to(datagram, quic).unwrap();
        socket
            .send_to(&[0xc3; 1200][..(i % 1200) + 1], quic)
            .unwrap();
        // Bursts the loopback buffers can hold; still thousands a second.
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let sent_in = started.elapsed();
    let h = until(&node, |h| {
        sum(&h["components"]["p2p"]["stats"]["handshakesFailed"]) >= ENOUGH
    })
    .await;
    let failed = sum(&h["components"]["p2p"]["stats"]["handshakesFailed"]);
    assert!(
        failed >= ENOUGH,
        "only {failed} refused handshakes counted: {}",
        h["components"]["p2p"]
    );
    let lines = lines_with(&node, "inbound handshake");
    assert!(
        (1..=MAX_LINES_PER_KIND).contains(&lines),
        "{lines} log lines for {failed} refused handshakes sent in {sent_in:?}"
    );

    // PeerJS: clients that send nothing but bad frames, until the rate limit closes them.
    let signaling = node.ready["signaling"].as_str().unwrap().to_owned();
    let mut clients = Vec::new();
    for i in 0..8 {
        let url = format!(
            "ws://{signaling}/p2p-signaling/peerjs?key=peerjs&id=flood{i}&token=tok{i}&version=1.5.5"
        );
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        clients.push(ws);
    }
    for ws in &mut clients {
        for _ in 0..400 {
            if ws.feed(Message::text("{not json")).await.is_err() {
                break;
            }
        }
        let _ = ws.flush().await;
    }
    // Every client is closed for its rate; read until each sees its close.
    for ws in &mut clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(message)) = ws.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    let h = until(&node, |h| {
        h["components"]["signaling"]["stats"]["peerjs"]["rateLimitedTotal"].as_u64() >= Some(8)
    })
    .await;
    let peerjs = &h["components"]["signaling"]["stats"]["peerjs"];
    assert!(peerjs["ignoredTotal"].as_u64() >= Some(8 * 150), "{peerjs}");
    assert_eq!(peerjs["rateLimitedTotal"], 8, "{peerjs}");
    assert!(lines_with(&node, "PeerJS client frame ignored") <= MAX_LINES_PER_KIND);
    assert!(lines_with(&node, "PeerJS client closed for abuse") <= MAX_LINES_PER_KIND);

    // And nothing else wrote a line per event either.
    let total = node.log.lock().unwrap().len();
    assert!(total < 100, "{total} log lines:\n{}", node.log_text());
}
