//! CRDT documents on the real binary: Yjs clients on `/sync/{doc}`, the REST API, access
//! and revocation, and updates that survive SIGKILL once other clients have seen them.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{NodeOptions, TestNode, get_json, http, token};
use futures_util::{SinkExt, StreamExt};
use pqnode_testkit::yjs::{step1_message, update_message};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{GetString, ReadTxn, Text, Transact};

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

/// Connects `client` as y-websocket does: its sync step 1 goes first, so the node's step 2
/// brings whatever was committed before this connection subscribed to the document.
async fn join(url: &str, client: &Client) -> Ws {
    let mut ws = connect(url).await;
    let state_vector = client.doc.transact().state_vector().encode_v1();
    ws.send(Message::Binary(step1_message(&state_vector).into()))
        .await
        .unwrap();
    ws
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

/// Applies the frames `ws` receives to `client` until its text satisfies `done`; fails after
/// 30 s. Returns how long it took.
async fn read_until(
    ws: &mut Ws,
    client: &Client,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> Duration {
    let started = std::time::Instant::now();
    while !done(&client.text()) {
        let left = Duration::from_secs(30).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(frame)))) => client.apply_frame(&frame),
            Ok(Some(Ok(_))) => {}
            other => panic!("{what}: {other:?}; text is {:?}", client.text()),
        }
    }
    started.elapsed()
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
    let writer = Client::new();
    let reader = Client::new();
    let mut a = join(&sync_url(&node, "team%2Fnotes"), &writer).await;
    let mut b = join(&sync_url(&node, "team%2Fnotes"), &reader).await;
    a.send(Message::Binary(
        update_message(&writer.append("hello")).into(),
    ))
    .await
    .unwrap();
    read_until(&mut b, &reader, "b's client", |t| t == "hello").await;

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
    read_until(&mut b, &reader, "b's client", |t| t == "hello world").await;
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
    let mut refused = connect(&sync_url(&node, "team%2Fnotes")).await;
    assert_eq!(
        close_code(&mut refused).await,
        Some(4403),
        "no token, no session"
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
    // The node's step 1 arrives once the session is open and watched for revocation.
    let Some(Ok(Message::Binary(_))) = holder.next().await else {
        panic!("the token holder's session did not open")
    };
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
    let mut revoked_again = connect(&url).await;
    assert_eq!(close_code(&mut revoked_again).await, Some(4403));

    // Clients still open are closed with 1001 when the node stops; it exits cleanly.
    let (status, _) = node.terminate();
    assert!(status.success());
    assert_eq!(close_code(&mut a).await, Some(1001));
}

/// What another client has seen was committed first: a SIGKILL cannot take it back.
#[tokio::test]
async fn updates_seen_by_other_clients_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let options = || NodeOptions::new(dir.path());
    let node = TestNode::start(options());
    let url = sync_url(&node, "log");
    let writer = Client::new();
    let observer = Client::new();
    let mut writer_ws = join(&url, &writer).await;
    let mut observer_ws = join(&url, &observer).await;
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
    // Watch until a few hundred edits were relayed, then kill the node mid-stream. Each is
    // committed before it is relayed, and a loaded CI disk can stall a commit for seconds.
    loop {
        match tokio::time::timeout(Duration::from_secs(30), observer_ws.next()).await {
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

/// Waits until the document's text root `t` on `node` reads `want`.
async fn wait_for_text(node: &TestNode, doc: &str, want: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let (status, body) = get_json(&node.url(&format!("/api/docs/{doc}/text?root=t"))).await;
        if status == 200 && body["text"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{doc} on {} never read {want:?}: {status} {body}",
            node.url("")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two nodes, no central server: a client on each edits the same document; both converge,
/// live, and each node has every edit on disk.
#[tokio::test]
async fn clients_on_two_nodes_edit_one_document() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(NodeOptions::new(da.path()));
    let a_id = common::node_id(&a).await;
    let b = TestNode::start(
        NodeOptions::new(db.path())
            .arg("--bootstrap")
            .arg(format!("{a_id}@{}", common::p2p_addr(&a))),
    );
    let writer_a = Client::new();
    let mut on_a = join(&sync_url(&a, "shared"), &writer_a).await;
    on_a.send(Message::Binary(
        update_message(&writer_a.append("from A;")).into(),
    ))
    .await
    .unwrap();
    wait_for_text(&a, "shared", "from A;").await;

    // A client on B opens the document: B has never held it, A has; it arrives.
    let reader_b = Client::new();
    let mut on_b = join(&sync_url(&b, "shared"), &reader_b).await;
    let took = read_until(&mut on_b, &reader_b, "B's client never got A's text", |t| {
        t == "from A;"
    })
    .await;
    eprintln!("a document created on A reached a client on B in {took:?}");

    // B's client edits; A's client sees it live.
    let update = {
        let t = reader_b.doc.get_or_insert_text("t");
        let mut txn = reader_b.doc.transact_mut();
        let len = t.len(&txn);
        t.insert(&mut txn, len, " from B;");
        txn.encode_update_v1()
    };
    on_b.send(Message::Binary(update_message(&update).into()))
        .await
        .unwrap();
    // A's client holds A's edit already: B's edit integrates after it.
    let took = read_until(&mut on_a, &writer_a, "A's client never saw B's edit", |t| {
        t.ends_with(" from B;")
    })
    .await;
    eprintln!("an edit on B reached a client on A in {took:?}");
    wait_for_text(&a, "shared", "from A; from B;").await;
    wait_for_text(&b, "shared", "from A; from B;").await;
    let (_, health) = get_json(&b.url("/api/health")).await;
    let replication = &health["components"]["crdt"]["stats"]["replication"];
    assert!(
        replication["trackedDocs"].as_u64().unwrap() >= 1,
        "{health}"
    );
}

/// The AI engine indexes documents as they change, and text given through the API.
#[tokio::test]
async fn search_finds_documents_as_they_change_and_indexed_text() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start(NodeOptions::new(dir.path()));
    let client = Client::new();
    let mut ws = join(&sync_url(&node, "recipes"), &client).await;
    ws.send(Message::Binary(
        update_message(&client.append("Sourdough needs a lively starter and a long, cool rise."))
            .into(),
    ))
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let results = loop {
        let (status, body) = get_json(&node.url("/api/ai/search?q=sourdough%20starter&k=3")).await;
        assert_eq!(status, 200, "{body}");
        if !body["results"].as_array().unwrap().is_empty() {
            break body["results"].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never indexed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(results[0]["docId"], "doc:recipes", "{results}");
    assert!(results[0]["snippet"].as_str().unwrap().contains("starter"));

    let api_token = token(&node);
    let indexed = http()
        .post(node.url("/api/ai/index"))
        .bearer_auth(&api_token)
        .json(&json!({ "id": "trip", "text": "A night train from Vienna to Venice through the Alps." }))
        .send()
        .await
        .unwrap();
    assert_eq!(indexed.status(), 201);
    let (_, found) = get_json(&node.url("/api/ai/search?q=night%20train&k=3")).await;
    assert_eq!(found["results"][0]["docId"], "api:trip", "{found}");
    let removed = http()
        .delete(node.url("/api/ai/index/trip"))
        .bearer_auth(&api_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let (_, found) = get_json(&node.url("/api/ai/search?q=night%20train&k=3")).await;
    // The embeddings may still rank the recipe as nearest; the removed text is gone.
    let ids: Vec<&serde_json::Value> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["docId"])
        .collect();
    assert!(!ids.contains(&&json!("api:trip")), "{found}");
    let (status, bad) = get_json(&node.url("/api/ai/search?q=x&k=0")).await;
    assert_eq!(status, 400, "{bad}");
    let (_, health) = get_json(&node.url("/api/health")).await;
    assert_eq!(health["components"]["ai"]["status"], "pass", "{health}");
    assert_eq!(
        health["components"]["ai"]["stats"]["mode"], "hybrid",
        "{health}"
    );
    assert_eq!(
        health["components"]["ai"]["stats"]["documents"], 1,
        "{health}"
    );
}

/// A token issued by A and honoured by B (which trusts A): when A revokes it, B closes the
/// session it opened there within its poll interval.
#[tokio::test]
async fn a_revocation_reaches_the_nodes_that_trust_the_issuer() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(NodeOptions::new(da.path()));
    let a_id = common::node_id(&a).await;
    let config = db.path().join("pqnode.toml");
    std::fs::write(
        &config,
        format!("[crdt]\ntrusted_issuers = [\"{a_id}\"]\nrevocation_poll_secs = 1\n"),
    )
    .unwrap();
    let b = TestNode::start(
        NodeOptions::new(db.path())
            .env("PQNODE_CONFIG", config.display().to_string())
            .arg("--bootstrap")
            .arg(format!("{a_id}@{}", common::p2p_addr(&a))),
    );
    for node in [&a, &b] {
        let restricted = http()
            .put(node.url("/api/docs/secret/access"))
            .bearer_auth(token(node))
            .json(&json!({ "policy": "restricted" }))
            .send()
            .await
            .unwrap();
        assert_eq!(restricted.status(), 200);
    }
    let issued: serde_json::Value = http()
        .post(a.url("/api/docs/secret/tokens"))
        .bearer_auth(token(&a))
        .json(&json!({ "rights": "write", "ttlSecs": 600 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let capability = issued["token"].as_str().unwrap();
    // B honours A's token.
    let mut on_b = connect(&format!("{}?token={capability}", sync_url(&b, "secret"))).await;
    let Some(Ok(Message::Binary(_))) = on_b.next().await else {
        panic!("B did not open the session")
    };
    let revoked: serde_json::Value = http()
        .delete(a.url(&format!(
            "/api/capabilities/{}",
            issued["id"].as_str().unwrap()
        )))
        .bearer_auth(token(&a))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["published"], true, "{revoked}");
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut on_b).await, Some(4403));
    eprintln!(
        "B closed the session {:?} after A revoked the token",
        started.elapsed()
    );
    let mut again = connect(&format!("{}?token={capability}", sync_url(&b, "secret"))).await;
    assert_eq!(close_code(&mut again).await, Some(4403));
}

/// A restricted document replicates only with trusted nodes: another node that asks for it
/// (because one of its clients opened the name) is told A does not hold it.
#[tokio::test]
async fn a_restricted_document_does_not_replicate_to_an_untrusted_node() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = TestNode::start(NodeOptions::new(da.path()));
    let a_id = common::node_id(&a).await;
    let b = TestNode::start(
        NodeOptions::new(db.path())
            .arg("--bootstrap")
            .arg(format!("{a_id}@{}", common::p2p_addr(&a))),
    );
    let a_token = token(&a);
    for (doc, policy) in [("secret", "restricted"), ("public", "open")] {
        let set = http()
            .put(a.url(&format!("/api/docs/{doc}/access")))
            .bearer_auth(&a_token)
            .json(&json!({ "policy": policy }))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status(), 200);
        let written = http()
            .post(a.url(&format!("/api/docs/{doc}/updates")))
            .bearer_auth(&a_token)
            .body(Client::new().append("content of A"))
            .send()
            .await
            .unwrap();
        assert_eq!(written.status(), 201);
    }
    // Clients on B open both names; the open one arrives, the restricted one does not.
    let _public = connect(&sync_url(&b, "public")).await;
    let _secret = connect(&sync_url(&b, "secret")).await;
    let took = wait_for_text(&b, "public", "content of A").await;
    tokio::time::sleep(took.max(Duration::from_secs(1)) * 2).await;
    let (status, body) = get_json(&b.url("/api/docs/secret/text?root=t")).await;
    assert_ne!(body["text"], "content of A", "{status} {body}");
}
