//! CRDT documents on the real binary: Yjs clients on `/sync/{doc}`, the REST API, access
//! and revocation, and updates that survive SIGKILL once other clients have seen them.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{NodeOptions, TestNode, get_json, http, token};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::{GetString, Text, Transact};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn sync_url(node: &TestNode, path: &str) -> String {
    format!(
        "ws://{}/sync/{path}",
        node.ready["signaling"].as_str().unwrap()
    )
}

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// A y-protocols sync update message (type 0, sub-type 2) around a Yjs update.
fn update_message(update: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 2];
    let mut len = update.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            m.push(byte);
            break;
        }
        m.push(byte | 0x80);
    }
    m.extend_from_slice(update);
    m
}

/// A client-side document: each call appends `text` and returns the update to send.
struct Client {
    doc: yrs::Doc,
}

impl Client {
    fn new() -> Self {
        Self {
            doc: yrs::Doc::new(),
        }
    }

    fn append(&self, text: &str) -> Vec<u8> {
        let t = self.doc.get_or_insert_text("t");
        let mut txn = self.doc.transact_mut();
        let len = t.len(&txn);
        t.insert(&mut txn, len, text);
        txn.encode_update_v1()
    }

    /// Applies a relayed sync frame (step 2 or update), if it is one.
    fn apply_frame(&self, frame: &[u8]) {
        if frame.len() < 3 || frame[0] != 0 || frame[1] == 0 {
            return;
        }
        let mut at = 2;
        let mut len = 0usize;
        let mut shift = 0;
        while let Some(b) = frame.get(at) {
            len |= usize::from(b & 0x7f) << shift;
            at += 1;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if let Some(update) = frame.get(at..at + len)
            && let Ok(update) = yrs::Update::decode_v1(update)
        {
            let _ = self.doc.transact_mut().apply_update(update);
        }
    }

    fn text(&self) -> String {
        let t = self.doc.get_or_insert_text("t");
        t.get_string(&self.doc.transact())
    }
}

async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, ws.next()).await {
        match message {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

#[tokio::test]
async fn documents_from_yjs_clients_to_the_rest_api_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let mut a = connect(&sync_url(&node, "team%2Fnotes")).await;
    let mut b = connect(&sync_url(&node, "team%2Fnotes")).await;
    let writer = Client::new();
    a.send(Message::Binary(
        update_message(&writer.append("hello")).into(),
    ))
    .await
    .unwrap();
    let reader = Client::new();
    while reader.text() != "hello" {
        let Some(Ok(Message::Binary(frame))) = b.next().await else {
            panic!("b's connection ended")
        };
        reader.apply_frame(&frame);
    }

    // The REST view of the same document.
    let (status, list) = get_json(&node.url("/api/docs")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["documents"][0]["name"], "team/notes", "{list}");
    let (_, text) = get_json(&node.url("/api/docs/team%2Fnotes/text?root=t")).await;
    assert_eq!(text["text"], "hello");
    let (_, health) = get_json(&node.url("/api/health")).await;
    assert_eq!(health["components"]["crdt"]["status"], "pass", "{health}");

    // An update through the API (with the token) reaches the live clients.
    let api_token = token(&node);
    let response = http()
        .post(node.url("/api/docs/team%2Fnotes/updates"))
        .bearer_auth(&api_token)
        .body(writer.append(" world"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    while reader.text() != "hello world" {
        let Some(Ok(Message::Binary(frame))) = b.next().await else {
            panic!("b's connection ended")
        };
        reader.apply_frame(&frame);
    }
    let garbage = http()
        .post(node.url("/api/docs/team%2Fnotes/updates"))
        .bearer_auth(&api_token)
        .body(vec![0xff; 40])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    let (_, history) = get_json(&node.url("/api/docs/team%2Fnotes/history")).await;
    assert_eq!(
        history["versions"].as_array().unwrap().len(),
        2,
        "{history}"
    );

    // Restricted: no token, no connection; a read-write token opens it; revoking it closes it.
    let restrict = http()
        .put(node.url("/api/docs/team%2Fnotes/access"))
        .bearer_auth(&api_token)
        .json(&json!({ "policy": "restricted" }))
        .send()
        .await
        .unwrap();
    assert_eq!(restrict.status(), 200);
    assert!(
        tokio_tungstenite::connect_async(sync_url(&node, "team%2Fnotes"))
            .await
            .is_err()
    );
    let issued: serde_json::Value = http()
        .post(node.url("/api/docs/team%2Fnotes/tokens"))
        .bearer_auth(&api_token)
        .json(&json!({ "rights": "write", "ttlSecs": 600 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}?token={}",
        sync_url(&node, "team%2Fnotes"),
        issued["token"].as_str().unwrap()
    );
    let mut holder = connect(&url).await;
    let revoked: serde_json::Value = http()
        .delete(node.url(&format!(
            "/api/capabilities/{}",
            issued["id"].as_str().unwrap()
        )))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["sessionsClosed"], 1, "{revoked}");
    assert_eq!(close_code(&mut holder).await, Some(4403));
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());

    // Clients still open are closed with 1001 when the node stops; it exits cleanly.
    let (status, _) = node.terminate();
    assert!(status.success());
    assert_eq!(close_code(&mut a).await, Some(1001));
}

/// What another client has seen was committed first: a SIGKILL cannot take it back.
#[tokio::test]
async fn updates_seen_by_other_clients_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let options = || {
        NodeOptions::new(dir.path())
            .arg("--signaling-addr")
            .arg(format!("127.0.0.1:{port}"))
    };
    let node = TestNode::start(options());
    let url = sync_url(&node, "log");
    let mut writer_ws = connect(&url).await;
    let mut observer_ws = connect(&url).await;
    let writer = Client::new();
    let observer = Client::new();
    let writing = tokio::spawn(async move {
        for i in 0..2_000 {
            let update = writer.append(&format!("[{i}]"));
            if writer_ws
                .send(Message::Binary(update_message(&update).into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    // Watch until a few hundred edits were relayed, then kill the node mid-stream.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), observer_ws.next()).await {
            Ok(Some(Ok(Message::Binary(frame)))) => observer.apply_frame(&frame),
            other => panic!("observer: {other:?}"),
        }
        if observer.text().matches('[').count() >= 300 {
            break;
        }
    }
    node.signal("KILL");
    // Whatever else reached the observer before the socket died was committed too.
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(2), observer_ws.next()).await
    {
        if let Message::Binary(frame) = message {
            observer.apply_frame(&frame);
        }
    }
    let _ = writing.await;
    drop(node);

    let seen: HashSet<String> = observer
        .text()
        .split_inclusive(']')
        .map(str::to_owned)
        .collect();
    let node = TestNode::start(options());
    let (_, text) = get_json(&node.url("/api/docs/log/text?root=t")).await;
    let stored: HashSet<String> = text["text"]
        .as_str()
        .unwrap()
        .split_inclusive(']')
        .map(str::to_owned)
        .collect();
    let lost: Vec<&String> = seen.difference(&stored).collect();
    eprintln!(
        "seen by the observer before SIGKILL: {}, stored after restart: {}, lost: {}",
        seen.len(),
        stored.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged edits lost: {lost:?}");
    assert!(seen.len() >= 300);
}
