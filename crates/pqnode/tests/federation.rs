//! Two signaling peers on two different nodes find each other through the
//! DHT and exchange relay messages over the nodes' PQ QUIC connection.

mod common;

use std::time::{Duration, Instant};

use common::signaling::{self, Ws, expect, send};
use common::{NodeOptions, TestNode, get_json, node_id, p2p_addr};
use pqnode_crypto::Identity;
use serde_json::json;

struct Peer {
    ws: Ws,
    id: String,
}

/// Connects and registers an ML-DSA-87 peer in `topic`.
async fn register(node: &TestNode, topic: &str) -> Peer {
    let addr = node.ready["signaling"].as_str().unwrap().parse().unwrap();
    let (ws, id) = signaling::register(addr, &Identity::generate().unwrap(), &[topic]).await;
    Peer { ws, id }
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
    let x_id = x.id.clone();

    let (_, peers) = get_json(&b.url("/api/peers")).await;
    assert!(
        peers["signaling"]["connectedPeers"].as_u64().unwrap() >= 1,
        "{peers}"
    );
    assert!(
        peers["signaling"]["dhtNodes"].as_u64().unwrap() >= 1,
        "{peers}"
    );
    assert_eq!(
        peers["signaling"]["peers"], 2,
        "Y, and the route to X: {peers}"
    );

    // X leaves A. A tells B at once (B relayed to X through A), and replaces X's DHT entry
    // with a withdrawal: B stops routing to X within seconds, not when the entry expires.
    let left = Instant::now();
    drop(x);
    loop {
        let (_, peers) = get_json(&b.url("/api/peers")).await;
        if peers["signaling"]["peers"] == 1 {
            break;
        }
        assert!(
            left.elapsed() < Duration::from_secs(5),
            "B still routes to X: {peers}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("B forgot X {:?} after X left A", left.elapsed());
    send(
        &mut y.ws,
        json!({ "type": "offer", "id": 3, "to": x_id, "data": offer }),
    )
    .await;
    let error = expect(&mut y.ws, "error").await;
    assert_eq!(error["code"], "PEER_NOT_FOUND", "{error}");
}
