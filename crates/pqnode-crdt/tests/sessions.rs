//! Yjs clients (yrs, speaking as npm y-websocket does) syncing through sessions.

mod common;

use common::{Client, engine, insert, name};
use pqnode_crdt::{DocConfig, DocError, MessageKind, Session, SessionError, SessionOptions};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{ClientID, Doc};

#[tokio::test]
async fn two_clients_converge_and_a_late_joiner_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut a = Client::connect(&docs, "pad").await;
    let mut b = Client::connect(&docs, "pad").await;

    a.edit(0, "hello").await;
    b.pump().await;
    assert_eq!(b.text(), "hello", "A's committed edit reached B live");
    b.edit(5, " world").await;
    a.edit(0, ">> ").await;
    a.pump().await;
    b.pump().await;
    assert_eq!(a.text(), b.text());
    assert!(
        a.text().contains("hello") && a.text().contains(" world") && a.text().starts_with(">> ")
    );

    // Offline edits of a client that joins later meet in the middle.
    let c_doc = Doc::new();
    common::apply(&c_doc, &docs.diff(&name("pad"), &[]).await.unwrap());
    insert(&c_doc, 0, "[offline]");
    let mut c = Client::connect(&docs, "pad").await;
    common::apply(
        &c.doc,
        &yrs::ReadTxn::encode_state_as_update_v1(
            &yrs::Transact::transact(&c_doc),
            &yrs::StateVector::default(),
        ),
    );
    let sv = yrs::ReadTxn::state_vector(&yrs::Transact::transact(&docs_doc(&docs).await));
    let diff = yrs::ReadTxn::encode_state_as_update_v1(&yrs::Transact::transact(&c.doc), &sv);
    c.send(Message::Sync(SyncMessage::SyncStep2(diff))).await;
    a.pump().await;
    b.pump().await;
    assert_eq!(a.text(), c.text());
    assert_eq!(b.text(), c.text());
    assert_eq!(
        docs.text(&name("pad"), "t").await.unwrap().unwrap(),
        c.text()
    );
    assert!(c.text().contains("[offline]"));
    assert_eq!(docs.stats().sync_sessions, 3);
}

/// The server's document, rebuilt from its full state.
async fn docs_doc(docs: &pqnode_crdt::DocStore) -> Doc {
    let doc = Doc::new();
    common::apply(&doc, &docs.diff(&name("pad"), &[]).await.unwrap());
    doc
}

#[tokio::test]
async fn a_clients_own_updates_are_not_echoed_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut a = Client::connect(&docs, "echo").await;
    a.edit(0, "mine").await;
    while let Some(event) = a.events.try_recv() {
        assert!(a.session.on_event(event.unwrap()).unwrap().is_empty());
    }
}

#[tokio::test]
async fn awareness_is_relayed_and_removed_when_a_client_disconnects() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut a = Client::connect(&docs, "room").await;
    let mut b = Client::connect(&docs, "room").await;
    a.set_awareness(r#"{"user":"ana"}"#).await;
    b.pump().await;
    let a_id = a.doc.client_id();
    assert_eq!(
        b.awareness.state::<serde_json::Value>(a_id),
        Some(serde_json::json!({"user": "ana"}))
    );

    // A newcomer gets the current states when it opens.
    let c = Client::connect(&docs, "room").await;
    assert!(c.awareness.state::<serde_json::Value>(a_id).is_some());

    drop(a);
    b.pump().await;
    assert_eq!(
        b.awareness.state::<serde_json::Value>(a_id),
        None,
        "A's state was removed for B"
    );
    assert_eq!(docs.stats().sync_sessions, 2);
    // And a later newcomer no longer hears of A.
    let d = Client::connect(&docs, "room").await;
    assert_eq!(d.awareness.state::<serde_json::Value>(a_id), None);
    drop(c);
}

#[tokio::test]
async fn query_awareness_is_answered_with_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut a = Client::connect(&docs, "q").await;
    a.set_awareness(r#"{"x":1}"#).await;
    let (mut s, _events, _) = Session::open(&docs, &name("q"), SessionOptions::default())
        .await
        .unwrap();
    let replies = s
        .on_message(&Message::AwarenessQuery.encode_v1())
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].kind, MessageKind::Awareness);
}

#[tokio::test]
async fn malformed_and_oversized_frames_end_the_session_with_a_reason_and_harm_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DocConfig::default();
    config.max_frame_bytes = 4096;
    config.max_update_bytes = 1024;
    let (_store, docs) = engine(&dir, config).await;
    let mut good = Client::connect(&docs, "h").await;
    good.edit(0, "safe").await;

    let too_big = Message::Sync(SyncMessage::Update(insert(
        &Doc::new(),
        0,
        &"x".repeat(2000),
    )))
    .encode_v1();
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (vec![0u8; 5000], 4413),
        (too_big, 4413),
        (vec![0, 2, 5, 1, 2], 4400), // update shorter than it claims
        (vec![0, 9, 0], 4400),       // unknown sync type
        (vec![0, 2, 3, 0xff, 0xff, 0xff], 4400), // an update that is garbage
        (vec![0, 0, 4, 0xff, 0xff, 0xff, 0x7a], 4400), // state vector claiming 250M entries
        (vec![1, 4, 0xff, 0xff, 0xff, 0x7a], 4400), // awareness claiming 250M clients
        (vec![], 4400),
        // An awareness state that is not JSON: every other client's JSON.parse would throw.
        (vec![1, 8, 1, 77, 1, 4, b'{', b'n', b'o', b'}'], 4400),
    ];
    for (frame, code) in cases {
        let (mut hostile, _events, _) = Session::open(&docs, &name("h"), SessionOptions::default())
            .await
            .unwrap();
        let error = hostile.on_message(&frame).await.expect_err("refused");
        let shown = &frame[..frame.len().min(16)];
        assert_eq!(error.close_code(), code, "{shown:?}: {error}");
        assert!(!error.to_string().is_empty());
    }
    // An awareness client id over 53 bits is refused, not a panic.
    let mut awareness = yrs::sync::AwarenessUpdate {
        clients: Default::default(),
    };
    awareness.clients.insert(
        ClientID::new(1),
        yrs::sync::awareness::AwarenessUpdateEntry {
            clock: 1,
            json: "{}".into(),
        },
    );
    let mut frame = Message::Awareness(awareness).encode_v1();
    frame[3] = 0xff; // the client id's first byte now continues into a 10-byte var-uint
    let (mut hostile, _events, _) = Session::open(&docs, &name("h"), SessionOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        hostile.on_message(&frame).await,
        Err(SessionError::Malformed { .. })
    ));

    good.edit(4, "!").await;
    assert_eq!(
        docs.text(&name("h"), "t").await.unwrap().as_deref(),
        Some("safe!")
    );
}

#[tokio::test]
async fn a_read_only_session_receives_but_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut writer = Client::connect(&docs, "ro").await;
    writer.edit(0, "published").await;
    let mut reader = Client::connect_with(&docs, "ro", SessionOptions::read_only()).await;
    assert_eq!(reader.text(), "published");
    reader.edit(0, "vandal ").await;
    assert_eq!(
        docs.text(&name("ro"), "t").await.unwrap().as_deref(),
        Some("published")
    );
    assert!(docs.stats().ignored_messages >= 1);
}

#[tokio::test]
async fn a_session_that_falls_behind_is_told_to_resync() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DocConfig::default();
    config.broadcast_capacity = 4;
    let (_store, docs) = engine(&dir, config).await;
    let mut slow = Client::connect(&docs, "lag").await;
    let mut fast = Client::connect(&docs, "lag").await;
    for i in 0..10 {
        fast.edit(0, &i.to_string()).await;
    }
    let lagged = slow.events.recv().await;
    assert!(matches!(lagged, Err(SessionError::Lagged { .. })));
    assert_eq!(lagged.unwrap_err().close_code(), 1013);
}

/// A burst of updates from one connection shares commits: the session queues each one
/// without waiting for the commit of the one before. Once `flush` returns all are durable,
/// and the other clients heard every one, merged: a frame per commit, not per update.
#[tokio::test]
async fn a_burst_from_one_client_shares_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut writer = Client::connect(&docs, "burst").await;
    let mut reader = Client::connect(&docs, "burst").await;
    let before = docs.stats().commits;
    for i in 0..200 {
        let update = insert(&writer.doc, i, "x");
        let frame = Message::Sync(SyncMessage::Update(update)).encode_v1();
        let replies = writer.session.on_message(&frame).await.expect("queued");
        assert!(replies.is_empty());
    }
    writer.session.flush().await.expect("committed");
    let commits = docs.stats().commits - before;
    assert!(commits <= 20, "{commits} commits for 200 updates");
    let all = "x".repeat(200);
    assert_eq!(
        docs.text(&name("burst"), "t").await.unwrap().as_deref(),
        Some(all.as_str())
    );
    let frames_before = docs.stats().frames_out;
    reader.pump().await;
    assert_eq!(reader.text(), all);
    let relayed = docs.stats().frames_out - frames_before;
    assert!(
        relayed <= commits,
        "{relayed} frames relayed for {commits} commits"
    );
}

/// A commit the engine refuses (the document would pass its cap) ends the session through
/// `committed`, with the reason and code 4413; what was queued before it stays committed.
#[tokio::test]
async fn a_refused_commit_ends_the_session_through_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DocConfig::default();
    config.max_update_bytes = 3000;
    config.max_doc_bytes = 4096;
    let (_store, docs) = engine(&dir, config).await;
    let mut writer = Client::connect(&docs, "capped").await;
    let kept = "k".repeat(2500);
    let first = insert(&writer.doc, 0, &kept);
    let second = insert(&writer.doc, 2500, &"y".repeat(2500));
    for update in [first, second] {
        let frame = Message::Sync(SyncMessage::Update(update)).encode_v1();
        writer
            .session
            .on_message(&frame)
            .await
            .expect("each fits an update");
    }
    writer
        .session
        .committed()
        .await
        .expect("the first one commits");
    let refused = writer.session.committed().await.expect_err("past the cap");
    assert!(
        matches!(
            refused,
            SessionError::Update(DocError::DocumentTooLarge { .. })
        ),
        "{refused}"
    );
    assert_eq!(refused.close_code(), 4413);
    assert_eq!(
        docs.text(&name("capped"), "t").await.unwrap().as_deref(),
        Some(kept.as_str())
    );
}
