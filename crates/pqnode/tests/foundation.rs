//! End-to-end tests of the foundation: the real binary, its key files, its
//! health, its configuration layers and its shutdown.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::{NodeOptions, TestNode, free_port, get_json, http};

#[tokio::test]
async fn restart_keeps_the_node_id_and_key_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (_, first) = get_json(&node.url("/api/crypto/status")).await;
    let (status, _) = node.terminate();
    assert!(status.success());

    for name in ["identity.key", "kem.key", "api.token"] {
        let mode = fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }

    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (_, second) = get_json(&node.url("/api/crypto/status")).await;
    assert_eq!(first["nodeId"], second["nodeId"]);
    assert_eq!(first["nodeId"].as_str().unwrap().len(), 40);
}

#[tokio::test]
async fn crypto_status_reports_real_sizes_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (code, s) = get_json(&node.url("/api/crypto/status")).await;
    assert_eq!(code, 200);
    assert_eq!(s["initialized"], true);
    assert_eq!(s["algorithm"], "Kyber1024-Dilithium5");
    assert_eq!(s["kem"], "ML-KEM-1024");
    assert_eq!(s["signature"], "ML-DSA-87");
    assert_eq!(s["kyberKeySize"], 1568);
    assert_eq!(s["dilithiumKeySize"], 2592);
    assert_eq!(s["signatureSize"], 4627);
    assert_eq!(s["keyPairs"], 2);
    assert_eq!(s["production"], false);
    assert!(s["backend"].is_string());
    let text = s.to_string();
    let seed = fs::read(dir.path().join("identity.key")).unwrap();
    assert!(
        !text.contains(&hex::encode(&seed[seed.len() - 32..])),
        "status leaks key material"
    );
}

#[tokio::test]
async fn production_mode_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()).arg("--mode").arg("production"));
    let (_, s) = get_json(&node.url("/api/crypto/status")).await;
    assert_eq!(s["production"], true);
}

fn start_fails(dir: &std::path::Path) -> String {
    match TestNode::try_start(NodeOptions::new(dir)) {
        Ok(_) => panic!("the node started but should have refused"),
        Err(log) => log,
    }
}

#[tokio::test]
async fn a_key_file_readable_by_others_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(TestNode::start(NodeOptions::new(dir.path())));
    let key = dir.path().join("identity.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&key).unwrap();
    let log = start_fails(dir.path());
    assert!(
        log.contains("identity.key"),
        "the error names the file: {log}"
    );
    assert!(log.contains("chmod"), "the error names the fix: {log}");
    assert_eq!(fs::read(&key).unwrap(), before, "the key file was changed");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[tokio::test]
async fn a_corrupted_or_truncated_key_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(TestNode::start(NodeOptions::new(dir.path())));
    let key = dir.path().join("identity.key");
    let original = fs::read(&key).unwrap();

    let mut corrupted = original.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x01;
    fs::write(&key, &corrupted).unwrap();
    let log = start_fails(dir.path());
    assert!(log.contains("identity.key"), "{log}");
    assert_eq!(fs::read(&key).unwrap(), corrupted);

    fs::write(&key, &original[..original.len() / 2]).unwrap();
    let log = start_fails(dir.path());
    assert!(log.contains("identity.key"), "{log}");
    assert_eq!(fs::read(&key).unwrap(), &original[..original.len() / 2]);
}

#[tokio::test]
async fn health_is_200_and_turns_503_when_the_store_fails() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (code, h) = get_json(&node.url("/api/health")).await;
    assert_eq!(code, 200, "{h}");
    // A standalone node has an empty routing table: the DHT warns, which degrades but does not fail.
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["components"]["dht"]["status"], "warn", "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(h["uptime"].is_u64());
    for name in ["crypto", "signaling", "dht", "p2p", "storage", "crdt", "ai"] {
        assert!(
            h["components"][name]["status"].is_string(),
            "component {name} missing: {h}"
        );
    }
    assert_eq!(h["components"]["crypto"]["status"], "pass");
    assert_eq!(h["components"]["storage"]["status"], "pass");
    assert_eq!(h["components"]["crdt"]["status"], "pass");
    // The binary carries its embedding model: search is hybrid with no configuration.
    assert_eq!(h["components"]["ai"]["status"], "pass", "{h}");
    assert_eq!(h["components"]["ai"]["stats"]["mode"], "hybrid", "{h}");
    assert_eq!(
        h["components"]["ai"]["stats"]["model"], "minilm-l6-static",
        "{h}"
    );
    assert_eq!(h["components"]["ai"]["stats"]["dims"], 128, "{h}");

    // Pull the database file out from under the running node.
    let db = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "redb"))
        .expect("a .redb database file in the data folder");
    fs::remove_file(&db).unwrap();
    let (code, h) = get_json(&node.url("/api/health")).await;
    assert_eq!(code, 503, "{h}");
    assert_eq!(h["status"], "error");
    assert_eq!(h["components"]["storage"]["status"], "fail");
    assert!(h["components"]["storage"]["reason"].is_string());
    // Documents live in the store: they cannot be acknowledged now.
    assert_eq!(h["components"]["crdt"]["status"], "fail", "{h}");
}

#[tokio::test]
async fn errors_are_json_with_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (code, body) = get_json(&node.url("/api/no-such-thing")).await;
    assert_eq!(code, 404);
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(body["error"]["message"].is_string());

    let response = http().post(node.url("/api/health")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");

    // Extractor rejections are JSON too: a bad query string, an oversized body.
    let (code, body) = get_json(&node.url("/api/messages?limit=lots")).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], "BAD_REQUEST");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
    let token = std::fs::read_to_string(dir.path().join("api.token")).unwrap();
    let huge = serde_json::json!({ "to": "00".repeat(20), "body": "x".repeat(200_000) });
    let response = http()
        .post(node.url("/api/messages"))
        .bearer_auth(token.trim())
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn every_documented_get_path_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let (_, doc) = get_json(&node.url("/api/openapi.json")).await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 7);
    for (path, ops) in paths {
        if ops.get("get").is_none() || path.contains('{') {
            continue;
        }
        let status = http()
            .get(node.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_ne!(status, 404, "{path} is documented but not routed");
        assert_ne!(
            status, 405,
            "{path} is documented as GET but does not accept it"
        );
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let text = common::get_text(&node.url("/metrics")).await;
    assert!(
        text.contains("pqnode_process_resident_memory_bytes"),
        "{text}"
    );
    assert!(
        text.contains("pqnode_component_health{component=\"storage\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn sigterm_exits_zero_within_the_deadline_and_readiness_drops_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pqnode.toml");
    fs::write(&config, "[shutdown]\ndeadline_secs = 5\ndrain_ms = 1500\n").unwrap();
    let node = TestNode::start(
        NodeOptions::new(dir.path())
            .arg("--config")
            .arg(config.to_str().unwrap()),
    );
    let (code, _) = get_json(&node.url("/readyz")).await;
    assert_eq!(code, 200);

    node.signal("TERM");
    // During the drain the API still answers: not ready, but alive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = get_json(&node.url("/readyz")).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["reason"], "shutting down");
    let (code, _) = get_json(&node.url("/livez")).await;
    assert_eq!(code, 200);

    let mut node = node;
    let status = node.wait(Duration::from_secs(5));
    assert!(status.success(), "exit status {status:?}");
    let log = node.log_text();
    assert!(log.contains("shutdown complete"), "{log}");
    let stopped: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "stopped")
        .map(|v| v["component"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        stopped.last().map(String::as_str),
        Some("storage"),
        "the store closes last: {stopped:?}"
    );
    assert!(stopped.contains(&"api".to_owned()), "{stopped:?}");
}

#[tokio::test]
async fn sigint_also_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start(NodeOptions::new(dir.path()));
    node.signal("INT");
    assert!(node.wait(Duration::from_secs(15)).success());
}

#[tokio::test]
async fn config_precedence_is_file_then_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("pqnode.toml");
    fs::write(
        &config,
        format!("[api]\naddr = \"127.0.0.1:{file_port}\"\n"),
    )
    .unwrap();
    let cfg = config.to_str().unwrap().to_owned();
    let api_port = |node: &TestNode| node.api.rsplit(':').next().unwrap().parse::<u16>().unwrap();

    let node = TestNode::start(
        NodeOptions::new(dir.path())
            .arg("--config")
            .arg(&cfg)
            .without_default("--api-addr"),
    );
    assert_eq!(api_port(&node), file_port);
    drop(node);

    let node = TestNode::start(
        NodeOptions::new(dir.path())
            .arg("--config")
            .arg(&cfg)
            .env("PQNODE_API_ADDR", format!("127.0.0.1:{env_port}")),
    );
    assert_eq!(api_port(&node), env_port);
    drop(node);

    let node = TestNode::start(
        NodeOptions::new(dir.path())
            .arg("--config")
            .arg(&cfg)
            .env("PQNODE_API_ADDR", format!("127.0.0.1:{env_port}"))
            .arg("--api-addr")
            .arg(format!("127.0.0.1:{flag_port}")),
    );
    assert_eq!(api_port(&node), flag_port);
}

#[tokio::test]
async fn a_missing_config_file_and_a_busy_port_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = Command::new(common::BIN)
        .arg("--config")
        .arg(&missing)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope.toml"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let log = match TestNode::try_start(
        NodeOptions::new(dir.path())
            .arg("--api-addr")
            .arg(format!("127.0.0.1:{port}")),
    ) {
        Ok(_) => panic!("started on a busy port"),
        Err(log) => log,
    };
    assert!(
        log.contains(&format!("port {port} is already in use")),
        "{log}"
    );
    assert!(log.contains("--api-addr"), "{log}");
}

#[test]
fn init_writes_a_config_that_the_node_accepts_and_id_prints_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pqnode.toml");
    let out = Command::new(common::BIN)
        .arg("init")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(fs::read_to_string(&path).unwrap().contains("[dht]"));
    let again = Command::new(common::BIN)
        .arg("init")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "init must not overwrite without --force"
    );

    let data = dir.path().join("data");
    let out = Command::new(common::BIN)
        .args(["id", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = Command::new(common::BIN)
        .args(["id", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["nodeId"], second["nodeId"]);
    assert_eq!(first["nodeId"].as_str().unwrap().len(), 40);
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(common::BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--data-dir",
        "--config",
        "--api-addr",
        "--signaling-addr",
        "--p2p-addr",
        "--api-token",
        "--mode",
        "--log-format",
        "--bootstrap",
        "--peer",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    for sub in ["run", "init", "id"] {
        let out = Command::new(common::BIN)
            .arg(sub)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub} --help failed");
    }
}
