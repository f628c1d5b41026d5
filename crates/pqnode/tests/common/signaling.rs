//! A native signaling client for the multi-process tests: connect, register an ML-DSA-87
//! peer as a browser would (the protocol's §2), and read the server's JSON messages.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use pqnode_crypto::Identity;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for the server's next message.
const WITHIN: Duration = Duration::from_secs(20);

/// The server's next JSON text message.
pub(crate) async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WITHIN, ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("no WebSocket error");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next message of `kind`, skipping events of other kinds; an `error` fails the test.
pub(crate) async fn expect(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
        assert_ne!(v["type"], "error", "expected {kind}, got {v}");
    }
}

pub(crate) async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// Connects to the signaling port at `addr` and registers `key`'s peer in `topics`;
/// returns the socket and the peer id.
pub(crate) async fn register(addr: SocketAddr, key: &Identity, topics: &[&str]) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/p2p-signaling"))
        .await
        .expect("WebSocket handshake");
    let hello = expect(&mut ws, "hello").await;
    let public = key.public_key().as_bytes();
    let digest = Sha256::new()
        .chain_update(b"pqnode/signaling/peer-id/v1\0ML-DSA-87\0")
        .chain_update(public)
        .finalize();
    let peer_id = hex::encode(&digest[..20]);
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let body = format!(
        "{}\n{}\n{peer_id}\n{ts}",
        hello["node_id"].as_str().unwrap(),
        hello["nonce"].as_str().unwrap()
    );
    let signature = key
        .sign("pqnode/signaling/register/v1", body.as_bytes())
        .unwrap();
    let register = json!({
        "type": "register", "id": "r", "algorithm": "ML-DSA-87",
        "public_key": hex::encode(public), "peer_id": peer_id, "nonce": hello["nonce"],
        "ts": ts, "signature": hex::encode(signature.as_bytes()), "topics": topics,
    });
    send(&mut ws, register).await;
    let registered = expect(&mut ws, "registered").await;
    assert_eq!(registered["peer_id"], peer_id.as_str());
    (ws, peer_id)
}
