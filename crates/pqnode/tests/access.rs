//! Who may read what on the API, against the real binary: private reads need
//! the token in production, every request's `Host` is checked (DNS
//! rebinding), weak tokens are refused, and the CLI keeps working.

mod common;

use std::process::Command;

use common::{BIN, NodeOptions, TestNode, get_json, http, token};
use reqwest::header::{HOST, WWW_AUTHENTICATE};
use serde_json::Value;

const PUBLIC: [&str; 6] = [
    "/livez",
    "/readyz",
    "/api/health",
    "/api/crypto/status",
    "/api/openapi.json",
    "/metrics",
];
const PRIVATE: [&str; 6] = [
    "/api/peers",
    "/api/messages",
    "/api/system",
    "/api/dht/nodes",
    "/api/dht/buckets",
    "/api/dht/records/0000000000000000000000000000000000000000",
];

async fn status_of(request: reqwest::RequestBuilder) -> (u16, Option<Value>) {
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.ok())
}

fn production(dir: &std::path::Path) -> TestNode {
    TestNode::start(NodeOptions::new(dir).arg("--mode").arg("production"))
}

#[tokio::test]
async fn production_reads_of_private_data_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = production(dir.path());
    let token = token(&node);
    for path in PUBLIC {
        let (status, _) = status_of(http().get(node.url(path))).await;
        assert_eq!(status, 200, "{path} should be public");
    }
    for path in PRIVATE {
        let response = http().get(node.url(path)).send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            401,
            "{path} answered without the token"
        );
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer", "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TOKEN_REQUIRED", "{path}: {body}");

        let (status, body) =
            status_of(http().get(node.url(path)).bearer_auth("0".repeat(48))).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body.unwrap()["error"]["code"], "BAD_TOKEN");
        // Same length as the real one, one character off.
        let mut near = token.clone().into_bytes();
        near[0] = if near[0] == b'a' { b'b' } else { b'a' };
        let near = String::from_utf8(near).unwrap();
        let (status, _) = status_of(http().get(node.url(path)).bearer_auth(near)).await;
        assert_eq!(status, 401, "{path}");

        let (status, body) = status_of(http().get(node.url(path)).bearer_auth(&token)).await;
        // The record does not exist: 404 is an answer, not a refusal.
        let expected = if path.starts_with("/api/dht/records") {
            404
        } else {
            200
        };
        assert_eq!(status, expected, "{path} with the token: {body:?}");
    }
}

#[tokio::test]
async fn development_reads_stay_open_and_the_cli_reads_production_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    for path in PRIVATE {
        let (status, _) = get_json(&node.url(path)).await;
        assert!(status == 200 || status == 404, "{path}: {status}");
    }
    drop(node);

    let dir = tempfile::tempdir().unwrap();
    let node = production(dir.path());
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .args(["--api-url", &node.api, "--wait", "5"])
            .output()
            .unwrap()
    };
    let data_dir = dir.path().to_str().unwrap();
    let out = cli(&["messages", "--data-dir", data_dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["dht", "nodes", "--data-dir", data_dir]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the node's data folder there is no token, and the error says
    // what to pass.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = cli(&["messages", "--data-dir", elsewhere.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--api-token") && stderr.contains("TOKEN_REQUIRED"),
        "{stderr}"
    );
}

#[tokio::test]
async fn foreign_host_names_are_refused_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pqnode.toml");
    std::fs::write(&config, "[api]\nallowed_hosts = [\"node.example.org\"]\n").unwrap();
    let data = dir.path().join("data");
    let node = TestNode::start(
        NodeOptions::new(&data)
            .arg("--config")
            .arg(config.to_str().unwrap()),
    );
    let port = node.api.rsplit(':').next().unwrap().to_owned();
    // What a rebinding page sends, on a public, a private and an unknown route.
    for path in ["/api/health", "/api/messages", "/no/such/route"] {
        let request = http()
            .get(node.url(path))
            .header(HOST, format!("rebind.evil.example:{port}"));
        let (status, body) = status_of(request).await;
        assert_eq!(status, 421, "{path}");
        let body = body.expect("a JSON error");
        assert_eq!(body["error"]["code"], "HOST_NOT_ALLOWED", "{body}");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "node.example.org".to_owned(),
        format!("NODE.example.org:{port}"),
    ] {
        let request = http().get(node.url("/api/health")).header(HOST, &host);
        let (status, _) = status_of(request).await;
        assert_eq!(status, 200, "Host {host}");
    }
}

#[test]
fn whitespace_and_guessable_tokens_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for weak in [
        " ".repeat(24),
        "a".repeat(24),
        "12341234123412341234".to_owned(),
    ] {
        let out = Command::new(BIN)
            .args(["--data-dir", dir.path().to_str().unwrap()])
            .args(["--mode", "production", "--api-token", &weak])
            .args([
                "--api-addr",
                "127.0.0.1:0",
                "--signaling-addr",
                "127.0.0.1:0",
            ])
            .args(["--p2p-addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{weak:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("api.token"), "{stderr}");
    }
}
