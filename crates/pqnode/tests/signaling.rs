//! The signaling endpoints as a node serves them on its signaling port.

mod common;

use std::time::Duration;

use common::{NodeOptions, TestNode, get_json, http};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

fn signaling_url(node: &TestNode, path: &str) -> String {
    format!(
        "{}{path}",
        node.ready["signaling"]
            .as_str()
            .expect("signaling address in the ready line")
    )
}

#[tokio::test]
async fn clients_are_told_and_closed_with_1001_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = TestNode::start(NodeOptions::new(dir.path()));
    let (code, health) = get_json(&node.url("/api/health")).await;
    assert_eq!(code, 200);
    assert_eq!(
        health["components"]["signaling"]["status"], "pass",
        "{health}"
    );

    let url = format!("ws://{}", signaling_url(&node, "/p2p-signaling"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    let (_, status) = get_json(&node.url("/api/crypto/status")).await;
    assert_eq!(hello["node_id"], status["nodeId"], "{hello}");

    node.signal("TERM");
    let mut saw_shutdown = false;
    let mut close_code = None;
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        let Ok(Some(Ok(msg))) = next else {
            seen.push(format!("end: {next:?}"));
            break;
        };
        seen.push(format!("{msg:?}"));
        match msg {
            Message::Text(text) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                saw_shutdown |= v["type"] == "shutdown";
            }
            Message::Close(frame) => {
                close_code = frame.map(|f| u16::from(f.code));
                break;
            }
            _ => {}
        }
    }
    assert!(
        saw_shutdown,
        "no shutdown message before the close: {seen:?}\n{}",
        node.log_text()
    );
    assert_eq!(close_code, Some(1001));
    assert!(node.wait(Duration::from_secs(15)).success());
}

#[tokio::test]
async fn the_peerjs_endpoint_hands_out_ids() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let url = format!(
        "http://{}",
        signaling_url(&node, "/p2p-signaling/peerjs/id")
    );
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let id = response.text().await.unwrap();
    assert!(!id.is_empty() && id.len() <= 64, "{id}");
}

#[tokio::test]
async fn the_demo_page_is_served_on_the_signaling_port() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    for path in ["/", "/demo.html"] {
        let url = format!("http://{}", signaling_url(&node, path));
        let response = http().get(url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let ctype = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(response.text().await.unwrap().contains("/p2p-signaling"));
    }
}
