//! Real `pqnode` processes talking over post-quantum QUIC.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{NodeOptions, TestNode, get_json, http, node_id, p2p_addr, token};
use serde_json::{Value, json};

async fn send(from: &TestNode, to: &str, body: &str) -> (u16, Value) {
    let response = http()
        .post(from.url("/api/messages"))
        .bearer_auth(token(from))
        .json(&json!({ "to": to, "body": body }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls until `node` has received a message with `body` from `from`.
async fn wait_for_message(node: &TestNode, from: &str, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = get_json(&node.url("/api/messages")).await;
        let found = list["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["from"] == from && m["body"] == body);
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "message {body:?} from {from} never arrived: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_with_peer(dir: &std::path::Path, peer: Option<String>) -> TestNode {
    let mut opts = NodeOptions::new(dir);
    if let Some(peer) = peer {
        opts = opts.arg("--peer").arg(peer);
    }
    TestNode::start(opts)
}

#[tokio::test]
async fn two_nodes_exchange_messages_both_ways_and_peers_show_pq_algorithms() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = start_with_peer(db.path(), None);
    let b_id = node_id(&b).await;
    let a = start_with_peer(da.path(), Some(format!("{b_id}@{}", p2p_addr(&b))));
    let a_id = node_id(&a).await;

    let (code, reply) = send(&a, &b_id, "hello from a").await;
    assert_eq!(code, 200, "{reply}");
    wait_for_message(&b, &a_id, "hello from a").await;
    // B learned A's address from the inbound connection and answers on it.
    let (code, reply) = send(&b, &a_id, "hello from b").await;
    assert_eq!(code, 200, "{reply}");
    wait_for_message(&a, &b_id, "hello from b").await;

    for (node, other) in [(&a, &b_id), (&b, &a_id)] {
        let (_, peers) = get_json(&node.url("/api/peers")).await;
        assert_eq!(peers["connected"], 1, "{peers}");
        let entry = &peers["list"][0];
        assert_eq!(&entry["nodeId"], other);
        assert_eq!(entry["keyExchange"], "MLKEM1024");
        assert_eq!(entry["signature"], "ML-DSA-87");
        assert!(entry["rttMs"].is_number() && entry["bytesIn"].as_u64().unwrap() > 0);
        for key in ["signaling", "dht"] {
            assert!(peers[key].is_object(), "{peers}");
        }
        let (_, health) = get_json(&node.url("/api/health")).await;
        assert_eq!(health["components"]["p2p"]["status"], "pass", "{health}");
    }
}

#[tokio::test]
async fn five_nodes_message_a_hub_and_hear_back() {
    let dirs: Vec<_> = (0..5).map(|_| tempfile::tempdir().unwrap()).collect();
    let hub = start_with_peer(dirs[0].path(), None);
    let hub_id = node_id(&hub).await;
    let hub_peer = format!("{hub_id}@{}", p2p_addr(&hub));
    let mut spokes = Vec::new();
    for dir in &dirs[1..] {
        let node = start_with_peer(dir.path(), Some(hub_peer.clone()));
        let id = node_id(&node).await;
        spokes.push((node, id));
    }
    for (i, (node, id)) in spokes.iter().enumerate() {
        let (code, body) = send(node, &hub_id, &format!("ping {i}")).await;
        assert_eq!(code, 200, "{body}");
        wait_for_message(&hub, id, &format!("ping {i}")).await;
    }
    for (i, (node, id)) in spokes.iter().enumerate() {
        let (code, body) = send(&hub, id, &format!("pong {i}")).await;
        assert_eq!(code, 200, "{body}");
        wait_for_message(node, &hub_id, &format!("pong {i}")).await;
    }
    let (_, peers) = get_json(&hub.url("/api/peers")).await;
    assert_eq!(peers["connected"], 4, "{peers}");
    let mut listed: Vec<String> = peers["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nodeId"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = spokes.iter().map(|(_, id)| id.clone()).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn a_peer_pinned_to_the_wrong_id_is_refused() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = start_with_peer(db.path(), None);
    let b_id = node_id(&b).await;
    let wrong = format!(
        "{}{}",
        if b_id.starts_with('0') { "1" } else { "0" },
        &b_id[1..]
    );
    let a = start_with_peer(da.path(), Some(format!("{wrong}@{}", p2p_addr(&b))));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, peers) = get_json(&a.url("/api/peers")).await;
    assert_eq!(
        peers["connected"], 0,
        "connected to a node that proved a different id: {peers}"
    );
    let (code, body) = send(&a, &wrong, "should not arrive").await;
    assert_ne!(code, 200, "{body}");
    let (_, health) = get_json(&a.url("/api/health")).await;
    assert_eq!(health["components"]["p2p"]["status"], "warn", "{health}");
}

#[tokio::test]
async fn a_restarted_peer_is_reconnected() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = start_with_peer(db.path(), None);
    let b_id = node_id(&b).await;
    let b_addr = p2p_addr(&b);
    let a = start_with_peer(da.path(), Some(format!("{b_id}@{b_addr}")));
    let a_id = node_id(&a).await;
    assert_eq!(send(&a, &b_id, "before").await.0, 200);
    let (status, _) = b.terminate();
    assert!(status.success());

    let b = TestNode::start(NodeOptions::new(db.path()).arg("--p2p-addr").arg(&b_addr));
    assert_eq!(node_id(&b).await, b_id, "same identity after restart");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, _) = send(&a, &b_id, "after").await;
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    wait_for_message(&b, &a_id, "after").await;
}

#[tokio::test]
async fn sending_needs_the_token_and_a_valid_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_with_peer(dir.path(), None);
    let response = http()
        .post(node.url("/api/messages"))
        .json(&json!({"to": "00", "body": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TOKEN_REQUIRED");

    let (code, body) = send(&node, "not-an-id", "x").await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], "BAD_NODE_ID");

    let response = http()
        .post(node.url("/api/messages"))
        .bearer_auth(token(&node))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BAD_JSON");
}

#[tokio::test]
async fn the_cli_sends_and_lists_messages() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = start_with_peer(db.path(), None);
    let b_id = node_id(&b).await;
    let a = start_with_peer(da.path(), Some(format!("{b_id}@{}", p2p_addr(&b))));
    let a_id = node_id(&a).await;
    let out = Command::new(common::BIN)
        .args([
            "send",
            &b_id,
            "via the cli",
            "--api-url",
            &a.api,
            "--data-dir",
        ])
        .arg(da.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_message(&b, &a_id, "via the cli").await;
    let out = Command::new(common::BIN)
        .args(["messages", "--json", "--api-url", &b.api])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["messages"][0]["body"], "via the cli");
}
