//! Two signaling peers on two different nodes find each other through the
//! DHT and exchange relay messages over the nodes' PQ QUIC connection.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{NodeOptions, TestNode, get_json, node_id, p2p_addr};
use futures_util::{SinkExt, StreamExt};
use pqnode_crypto::Identity;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Peer {
    ws: Ws,
    id: String,
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .expect("stream open")
            .expect("no WebSocket error");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next message of `kind`, skipping events of other kinds.
async fn expect(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next_json(ws).await;
        if v["type"] == kind {
            return v;
        }
        assert_ne!(v["type"], "error", "expected {kind}, got {v}");
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// Connects and registers an ML-DSA-87 peer in `topic`.
async fn register(node: &TestNode, topic: &str) -> Peer {
    let url = format!(
        "ws://{}/p2p-signaling",
        node.ready["signaling"].as_str().unwrap()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = expect(&mut ws, "hello").await;
    let key = Identity::generate().unwrap();
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
    send(
        &mut ws,
        json!({
            "type": "register", "id": "r", "algorithm": "ML-DSA-87",
            "public_key": hex::encode(public), "peer_id": peer_id, "nonce": hello["nonce"],
            "ts": ts, "signature": hex::encode(signature.as_bytes()), "topics": [topic],
        }),
    )
    .await;
    let registered = expect(&mut ws, "registered").await;
    assert_eq!(registered["peer_id"], peer_id.as_str());
    Peer { ws, id: peer_id }
}

#[tokio::test]
async fn a_peer_on_one_node_reaches_a_peer_on_another_and_back() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(NodeOptions::new(da.path()));
    let a_id = node_id(&a).await;
    let bootstrap = format!("{a_id}@{}", p2p_addr(&a));
    let b = TestNode::start(
        NodeOptions::new(db.path())
            .arg("--bootstrap")
            .arg(bootstrap),
    );

    let mut x = register(&a, "lobby").await;
    let mut y = register(&b, "lobby").await;

    // Y finds X by topic: X is on the other node, so the answer comes from the DHT.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        send(
            &mut y.ws,
            json!({ "type": "discover", "id": "d", "topic": "lobby" }),
        )
        .await;
        let peers = expect(&mut y.ws, "peers").await;
        let listed = peers["peers"].as_array().unwrap();
        if let Some(entry) = listed.iter().find(|p| p["peer_id"] == x.id.as_str()) {
            assert_eq!(entry["node_id"], a_id.as_str(), "{peers}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "X never appeared in discover: {peers}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // An offer crosses from B to A, the answer comes back, in order.
    let offer = json!({ "type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n" });
    send(
        &mut y.ws,
        json!({ "type": "offer", "id": 1, "to": x.id, "sid": "dc", "data": offer }),
    )
    .await;
    let ack = expect(&mut y.ws, "ack").await;
    assert_eq!(ack["status"], "forwarded", "{ack}");
    let got = expect(&mut x.ws, "offer").await;
    assert_eq!(got["from"], y.id.as_str());
    assert_eq!(got["data"], offer);
    for i in 0..5 {
        send(
            &mut y.ws,
            json!({ "type": "candidate", "to": x.id, "data": { "candidate": format!("c{i}") } }),
        )
        .await;
    }
    for i in 0..5 {
        let c = expect(&mut x.ws, "candidate").await;
        assert_eq!(
            c["data"]["candidate"],
            format!("c{i}"),
            "order kept across nodes"
        );
    }
    send(&mut x.ws, json!({ "type": "answer", "id": 2, "to": y.id, "data": { "type": "answer", "sdp": "v=0" } })).await;
    let ack = expect(&mut x.ws, "ack").await;
    assert_eq!(ack["status"], "forwarded", "{ack}");
    let answer = expect(&mut y.ws, "answer").await;
    assert_eq!(answer["from"], x.id.as_str());

    let (_, peers) = get_json(&b.url("/api/peers")).await;
    assert!(
        peers["signaling"]["connectedPeers"].as_u64().unwrap() >= 1,
        "{peers}"
    );
    assert!(
        peers["signaling"]["dhtNodes"].as_u64().unwrap() >= 1,
        "{peers}"
    );
}
