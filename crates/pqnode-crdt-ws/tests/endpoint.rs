//! The endpoint over a real socket: sync with a yrs client, access rules, revocation,
//! hostile frames.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pqnode_crdt::{DocConfig, DocName, DocStore};
use pqnode_crdt_ws::{
    AccessControl, Admission, AdmissionLimits, CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, CLOSE_REVOKED,
    CLOSE_TOO_LARGE, CLOSE_TRY_LATER, Policy, Rights, SyncEndpoint, peer_proof, router,
};
use pqnode_crypto::{Algorithm, Identity, PeerId};
use pqnode_store::Store;
use pqnode_testkit::yjs::update_message;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use yrs::updates::decoder::Decode;
use yrs::{GetString, ReadTxn, Text, Transact};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Node {
    addr: SocketAddr,
    docs: DocStore,
    access: AccessControl,
    _dir: tempfile::TempDir,
}

async fn node() -> Node {
    node_with(Admission::default(), false).await
}

/// A node with `admission`'s budgets, served with or without the client's address.
async fn node_with(admission: Admission, connect_info: bool) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db.redb")).await.unwrap();
    let docs = DocStore::open(store.clone(), DocConfig::default())
        .await
        .unwrap();
    let identity = Arc::new(Identity::from_seed(&[7; 32]).unwrap());
    let access = AccessControl::load(store, identity, [], Policy::Open)
        .await
        .unwrap();
    let endpoint = SyncEndpoint {
        docs: docs.clone(),
        access: access.clone(),
        shutdown: CancellationToken::new(),
        on_open: None,
        admission: Arc::new(admission),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(endpoint);
    if connect_info {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
    } else {
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Node {
        addr,
        docs,
        access,
        _dir: dir,
    }
}

async fn connect(
    addr: SocketAddr,
    path: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}")).await?;
    Ok(ws)
}

fn edit(text: &str) -> Vec<u8> {
    let doc = yrs::Doc::new();
    let t = doc.get_or_insert_text("t");
    let mut txn = doc.transact_mut();
    t.insert(&mut txn, 0, text);
    txn.encode_update_v1()
}

async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
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
async fn the_per_ip_budget_applies_only_with_the_clients_address() {
    let limits = AdmissionLimits {
        node_per_second: 1_000,
        node_burst: 1_000,
        ip_per_second: 1,
        ip_burst: 1,
    };
    // With connect info, the second open from 127.0.0.1 within the second is turned away.
    let node = node_with(Admission::new(limits), true).await;
    let _first = connect(node.addr, "/sync/budget").await.unwrap();
    let mut second = connect(node.addr, "/sync/budget").await.unwrap();
    assert_eq!(close_code(&mut second).await, Some(CLOSE_TRY_LATER));

    // Without it the address is unknown: only the node-wide budget applies.
    let node = node_with(Admission::new(limits), false).await;
    let _first = connect(node.addr, "/sync/budget").await.unwrap();
    let mut second = connect(node.addr, "/sync/budget").await.unwrap();
    second.send(Message::Ping(Vec::new().into())).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), second.next()).await;
    assert!(
        matches!(answer, Ok(Some(Ok(ref m))) if !m.is_close()),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_client_update_is_stored_and_reaches_the_other_client() {
    let node = node().await;
    let mut a = connect(node.addr, "/sync/notes").await.unwrap();
    let mut b = connect(node.addr, "/sync/notes").await.unwrap();
    // Each first hears the server's sync step 1.
    for ws in [&mut a, &mut b] {
        let Some(Ok(Message::Binary(first))) = ws.next().await else {
            panic!()
        };
        assert_eq!(&first[..2], &[0, 0]);
    }
    a.send(Message::Binary(update_message(&edit("hello")).into()))
        .await
        .unwrap();
    let relayed = loop {
        match b.next().await {
            Some(Ok(Message::Binary(frame))) if frame[..2] == [0, 2] => break frame,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    // Stored before it was relayed.
    let name = DocName::new("notes").unwrap();
    assert_eq!(
        node.docs.text(&name, "t").await.unwrap().as_deref(),
        Some("hello")
    );
    let doc = yrs::Doc::new();
    let update = yrs::Update::decode_v1(&relayed[3..]).unwrap();
    doc.transact_mut().apply_update(update).unwrap();
    let text = doc.get_or_insert_text("t");
    assert_eq!(text.get_string(&doc.transact()), "hello");
    assert!(doc.transact().state_vector().len() == 1);
}

#[tokio::test]
async fn restricted_documents_need_a_token_and_revocation_closes_its_sessions() {
    let node = node().await;
    node.access
        .set_policy("secret", Policy::Restricted)
        .await
        .unwrap();
    let mut refused = connect(node.addr, "/sync/secret").await.unwrap();
    assert_eq!(
        close_code(&mut refused).await,
        Some(CLOSE_FORBIDDEN),
        "no token, no session"
    );
    let (cap, token) = node
        .access
        .issue("secret", Rights::Read, u64::MAX)
        .await
        .unwrap();
    let mut reader = connect(node.addr, &format!("/sync/secret?token={token}"))
        .await
        .unwrap();
    // A read-only session's updates are not applied.
    reader
        .send(Message::Binary(update_message(&edit("x")).into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let name = DocName::new("secret").unwrap();
    assert!(
        node.docs.info(&name).await.unwrap().is_none(),
        "nothing was written"
    );
    // A token for one document does not open another.
    node.access
        .set_policy("other", Policy::Restricted)
        .await
        .unwrap();
    let mut other = connect(node.addr, &format!("/sync/other?token={token}"))
        .await
        .unwrap();
    assert_eq!(close_code(&mut other).await, Some(CLOSE_FORBIDDEN));

    assert_eq!(node.access.revoke(cap.id).await.unwrap(), 1);
    assert_eq!(close_code(&mut reader).await, Some(CLOSE_REVOKED));
    let mut again = connect(node.addr, &format!("/sync/secret?token={token}"))
        .await
        .unwrap();
    assert_eq!(close_code(&mut again).await, Some(CLOSE_FORBIDDEN));
}

/// A proof by a fresh Ed25519 peer (what a browser makes with WebCrypto) for `doc` at the
/// test node, and the peer's id.
fn ed25519_peer(doc: &str) -> (String, PeerId) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let key = Ed25519KeyPair::generate().unwrap();
    let public = key.public_key().as_ref().to_vec();
    let expires = pqnode_clock::now_unix_ms() + 60_000;
    let mut signed = format!("{}\0", peer_proof::PEER_PROOF_DOMAIN).into_bytes();
    signed.extend_from_slice(peer_proof::signed_body(node_id(), doc, expires).as_bytes());
    let proof = peer_proof::encode(
        Algorithm::Ed25519,
        &public,
        expires,
        key.sign(&signed).as_ref(),
    );
    (proof, PeerId::derive(Algorithm::Ed25519, &public))
}

/// The document's text so far, empty while it does not exist.
async fn text_of(docs: &DocStore, name: &DocName) -> String {
    docs.text(name, "t")
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn node_id() -> pqnode_crypto::NodeId {
    Identity::from_seed(&[7; 32]).unwrap().node_id()
}

#[tokio::test]
async fn listed_peers_open_a_restricted_document_with_their_rights_until_removed() {
    let node = node().await;
    node.access
        .set_policy("team", Policy::Restricted)
        .await
        .unwrap();
    let (writer_proof, writer) = ed25519_peer("team");
    let (reader_proof, reader) = ed25519_peer("team");
    let (stranger_proof, _) = ed25519_peer("team");
    let ml_dsa = Identity::from_seed(&[8; 32]).unwrap();
    let ml_dsa_peer = PeerId::derive(Algorithm::MlDsa87, ml_dsa.public_key().as_bytes());
    let ml_dsa_proof = peer_proof::sign_ml_dsa(
        &ml_dsa,
        node_id(),
        "team",
        pqnode_clock::now_unix_ms() + 60_000,
    )
    .unwrap();
    let listed = BTreeMap::from([
        (writer, Rights::Write),
        (reader, Rights::Read),
        (ml_dsa_peer, Rights::Write),
    ]);
    node.access.set_peers("team", listed.clone()).await.unwrap();
    let path = |proof: &str| format!("/sync/team?peer={proof}");

    // A peer not on the list, and a listed peer's proof for another document, are refused.
    let mut stranger = connect(node.addr, &path(&stranger_proof)).await.unwrap();
    assert_eq!(close_code(&mut stranger).await, Some(CLOSE_FORBIDDEN));
    node.access
        .set_policy("other", Policy::Restricted)
        .await
        .unwrap();
    node.access.set_peers("other", listed).await.unwrap();
    let mut elsewhere = connect(node.addr, &format!("/sync/other?peer={writer_proof}"))
        .await
        .unwrap();
    assert_eq!(close_code(&mut elsewhere).await, Some(CLOSE_FORBIDDEN));

    // The reader's update is not applied; the writers' are.
    let name = DocName::new("team").unwrap();
    let mut read_only = connect(node.addr, &path(&reader_proof)).await.unwrap();
    read_only
        .send(Message::Binary(update_message(&edit("r")).into()))
        .await
        .unwrap();
    let mut pq_writer = connect(node.addr, &path(&ml_dsa_proof)).await.unwrap();
    pq_writer
        .send(Message::Binary(update_message(&edit("pq")).into()))
        .await
        .unwrap();
    let mut ed_writer = connect(node.addr, &path(&writer_proof)).await.unwrap();
    ed_writer
        .send(Message::Binary(update_message(&edit("ed")).into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = text_of(&node.docs, &name).await;
        if text.len() == 4 || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        text.contains("pq") && text.contains("ed") && !text.contains('r'),
        "{text}"
    );

    // Removing the Ed25519 writer closes its session and refuses it from then on; the
    // others stay.
    let rest = BTreeMap::from([(reader, Rights::Read), (ml_dsa_peer, Rights::Write)]);
    assert_eq!(node.access.set_peers("team", rest).await.unwrap(), 1);
    assert_eq!(close_code(&mut ed_writer).await, Some(CLOSE_REVOKED));
    let mut again = connect(node.addr, &path(&writer_proof)).await.unwrap();
    assert_eq!(close_code(&mut again).await, Some(CLOSE_FORBIDDEN));
    pq_writer
        .send(Message::Binary(update_message(&edit("!")).into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text_of(&node.docs, &name).await.contains('!') {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the remaining writer still writes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(node.access.live_token_sessions(), 2);
}

#[tokio::test]
async fn hostile_frames_close_only_their_connection() {
    let node = node().await;
    let mut good = connect(node.addr, "/sync/d").await.unwrap();
    let mut bad = connect(node.addr, "/sync/d").await.unwrap();
    bad.send(Message::Binary(
        vec![0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2].into(),
    ))
    .await
    .unwrap();
    assert_eq!(close_code(&mut bad).await, Some(CLOSE_BAD_REQUEST));
    let mut text = connect(node.addr, "/sync/d").await.unwrap();
    text.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(close_code(&mut text).await, Some(1003));
    // The good client still writes.
    good.send(Message::Binary(update_message(&edit("ok")).into()))
        .await
        .unwrap();
    let name = DocName::new("d").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while node.docs.text(&name, "t").await.ok().flatten().as_deref() != Some("ok") {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut bad_name = connect(node.addr, "/sync/..bad").await.unwrap();
    assert_eq!(close_code(&mut bad_name).await, Some(CLOSE_BAD_REQUEST));
    // Over the session's cap, and over the transport's: refused with a reason, not dropped.
    let mut big = connect(node.addr, "/sync/d").await.unwrap();
    let frame = vec![0u8; DocConfig::default().max_frame_bytes + 1];
    let _ = big.send(Message::Binary(frame.into())).await;
    assert_eq!(close_code(&mut big).await, Some(CLOSE_TOO_LARGE));
    let mut huge = connect(node.addr, "/sync/d").await.unwrap();
    let frame = vec![0u8; 2 * DocConfig::default().max_frame_bytes + 1];
    let _ = huge.send(Message::Binary(frame.into())).await;
    assert_eq!(close_code(&mut huge).await, Some(CLOSE_TOO_LARGE));
}
