//! The DHT across real `pqnode` processes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{NodeOptions, TestNode, get_json, http, node_id, p2p_addr, token};
use serde_json::{Value, json};

/// Polls `/api/dht/nodes` until the table holds at least `n` nodes.
async fn wait_for_table(node: &TestNode, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = get_json(&node.url("/api/dht/nodes")).await;
        assert_eq!(code, 200, "{body}");
        if body["stats"]["totalNodes"].as_u64().unwrap_or(0) >= n {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "table never reached {n} nodes: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn nodes_join_find_each_other_share_records_and_rejoin_after_restart() {
    let dirs: Vec<_> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let seed = TestNode::start(NodeOptions::new(dirs[0].path()));
    let seed_id = node_id(&seed).await;
    let pinned = format!("{seed_id}@{}", p2p_addr(&seed));
    let mut nodes = vec![];
    for (i, dir) in dirs[1..].iter().enumerate() {
        // One node joins by address alone: unpinned, still PQ-authenticated.
        let bootstrap = if i == 0 {
            p2p_addr(&seed)
        } else {
            pinned.clone()
        };
        let node = TestNode::start(
            NodeOptions::new(dir.path())
                .arg("--bootstrap")
                .arg(bootstrap),
        );
        let id = node_id(&node).await;
        nodes.push((node, id));
    }
    for (node, _) in &nodes {
        let body = wait_for_table(node, 3).await;
        let entry = &body["nodes"][0];
        for field in ["id", "addr", "bucket", "state", "lastSeenMsAgo"] {
            assert!(!entry[field].is_null(), "{field} missing in {entry}");
        }
        assert!(body["stats"]["bucketsUsed"].as_u64().unwrap() >= 1);
    }
    let (_, seed_nodes) = get_json(&seed.url("/api/dht/nodes")).await;
    assert!(
        seed_nodes["stats"]["totalNodes"].as_u64().unwrap() >= 5,
        "{seed_nodes}"
    );

    // Every node finds every other by lookup.
    for (node, _) in &nodes {
        for (_, target) in &nodes {
            let (code, found) = get_json(&node.url(&format!("/api/dht/lookup/{target}"))).await;
            assert_eq!(code, 200, "{found}");
            let closest: Vec<&str> = found["closest"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["id"].as_str())
                .collect();
            let me = node_id(node).await;
            assert!(
                &me == target || closest.contains(&target.as_str()),
                "{target} not found: {found}"
            );
            assert!(
                found["rounds"].as_u64().is_some() && found["elapsed"].is_number(),
                "{found}"
            );
        }
    }

    // A record published at one node is read at every other.
    let (publisher, publisher_id) = &nodes[1];
    let response = http()
        .post(publisher.url("/api/dht/records"))
        .bearer_auth(token(publisher))
        .json(&json!({ "name": "greeting", "value": "hello, post-quantum world", "ttlSecs": 600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let put: Value = response.json().await.unwrap();
    let key = put["key"].as_str().unwrap().to_owned();
    assert!(put["stored"].as_u64().unwrap() >= 1, "{put}");
    for (node, _) in nodes
        .iter()
        .chain(std::iter::once(&(seed, seed_id.clone())))
    {
        let (code, record) = get_json(&node.url(&format!("/api/dht/records/{key}"))).await;
        assert_eq!(code, 200, "{record}");
        assert_eq!(record["value"], "hello, post-quantum world");
        assert_eq!(&record["publisher"], publisher_id);
    }

    // A message to a node never configured as a peer: the DHT says where it is.
    let (from, _) = &nodes[2];
    let (_, to_id) = &nodes[4];
    let response = http()
        .post(from.url("/api/messages"))
        .bearer_auth(token(from))
        .json(&json!({ "to": to_id, "body": "found you through the DHT" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.text().await.unwrap()
    );

    // The CLI asks the same API.
    let out = Command::new(common::BIN)
        .args(["dht", "lookup", to_id, "--api-url", &from.api])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(to_id.as_str()));

    // A restarted node reloads its table and rejoins without any bootstrap node.
    let (restarted, restarted_id) = nodes.remove(3);
    let dir = restarted.data_dir.clone();
    let addr = p2p_addr(&restarted);
    let (status, _) = restarted.terminate();
    assert!(status.success());
    let again = TestNode::start(NodeOptions::new(&dir).arg("--p2p-addr").arg(&addr));
    assert_eq!(node_id(&again).await, restarted_id);
    wait_for_table(&again, 3).await;
    let (code, found) = get_json(&again.url(&format!("/api/dht/lookup/{}", nodes[0].1))).await;
    assert_eq!(code, 200);
    assert!(
        found["closest"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == nodes[0].1),
        "{found}"
    );
    let (_, health) = get_json(&again.url("/api/health")).await;
    assert_eq!(health["components"]["dht"]["status"], "pass", "{health}");
    let (_, peers) = get_json(&again.url("/api/peers")).await;
    assert!(peers["dht"]["totalNodes"].as_u64().unwrap() >= 3, "{peers}");
}

#[tokio::test]
async fn dht_api_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (code, body) = get_json(&node.url("/api/dht/lookup/xyz")).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], "BAD_ID");
    let (code, body) = get_json(&node.url(&format!("/api/dht/records/{}", "ab".repeat(20)))).await;
    assert_eq!(code, 404, "{body}");
    let response = http()
        .post(node.url("/api/dht/records"))
        .json(&json!({ "name": "x", "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = http()
        .post(node.url("/api/dht/records"))
        .bearer_auth(token(&node))
        .json(&json!({ "name": "x", "value": "v", "ttlSecs": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

/// `--peer` is a contact like any other: the two-node example ends with each node in the
/// other's table. Contacts can be added and removed by hand; a node alone by choice is
/// healthy.
#[tokio::test]
async fn every_connection_feeds_the_table_and_operators_manage_contacts() {
    let (da, db, dc) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = TestNode::start(NodeOptions::new(da.path()));
    let a_id = node_id(&a).await;
    let b = TestNode::start(
        NodeOptions::new(db.path())
            .arg("--peer")
            .arg(format!("{a_id}@{}", p2p_addr(&a))),
    );
    let b_id = node_id(&b).await;
    let on_b = wait_for_table(&b, 1).await;
    assert_eq!(on_b["nodes"][0]["id"], a_id.as_str(), "{on_b}");
    let on_a = wait_for_table(&a, 1).await;
    assert_eq!(on_a["nodes"][0]["id"], b_id.as_str(), "{on_a}");
    let (_, health) = get_json(&b.url("/api/health")).await;
    assert_eq!(health["components"]["dht"]["status"], "pass", "{health}");

    // By hand: remove A from B's table, add it back.
    let b_token = token(&b);
    let removed = http()
        .delete(b.url(&format!("/api/dht/contacts/{a_id}")))
        .bearer_auth(&b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let (_, nodes) = get_json(&b.url("/api/dht/nodes")).await;
    assert_eq!(nodes["stats"]["totalNodes"], 0, "{nodes}");
    let again = http()
        .delete(b.url(&format!("/api/dht/contacts/{a_id}")))
        .bearer_auth(&b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let added: Value = http()
        .post(b.url("/api/dht/contacts"))
        .bearer_auth(&b_token)
        .json(&json!({ "contact": format!("{a_id}@{}", p2p_addr(&a)) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        added["added"],
        format!("{a_id}@{}", p2p_addr(&a)),
        "{added}"
    );
    wait_for_table(&b, 1).await;
    for bad in [
        json!({ "contact": p2p_addr(&a) }),
        json!({ "contact": "not a contact" }),
        json!({ "contact": format!("{b_id}@127.0.0.1:9") }),
    ] {
        let response = http()
            .post(b.url("/api/dht/contacts"))
            .bearer_auth(&b_token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let nobody = http()
        .post(b.url("/api/dht/contacts"))
        .bearer_auth(&b_token)
        .json(&json!({ "contact": format!("{}@127.0.0.1:9", "ab".repeat(20)) }))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), 502);

    // Alone by choice: healthy.
    let c = TestNode::start(NodeOptions::new(dc.path()).env(
        "PQNODE_CONFIG",
        write_config(dc.path(), "[dht]\nstandalone = true\n"),
    ));
    let (status, health) = get_json(&c.url("/api/health")).await;
    assert_eq!(health["components"]["dht"]["status"], "pass", "{health}");
    assert_eq!(status, 200);
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("pqnode.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}
