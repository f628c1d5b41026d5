//! The document engine on a real store: durability, compaction and history, refusals, deletion
//! and eviction.

mod common;

use std::time::Duration;

use common::{engine, insert, name, open_store, text_of};
use pqnode_crdt::{DocConfig, DocError, DocStore};
use yrs::Doc;

fn small_compactions() -> DocConfig {
    let mut config = DocConfig::default();
    config.compact_every_updates = 4;
    config
}

#[tokio::test]
async fn an_acknowledged_document_survives_closing_and_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (store, docs) = engine(&dir, DocConfig::default()).await;
    let client = Doc::new();
    let doc = name("notes/today");
    let mut last = 0;
    for (i, word) in ["hello", " durable", " world"].iter().enumerate() {
        let at = text_of(&client).len() as u32;
        last = docs
            .apply_update(&doc, insert(&client, at, word))
            .await
            .unwrap();
        assert_eq!(last, i as u64 + 1, "each acknowledgement names its version");
    }
    let before = docs.json(&doc).await.unwrap();
    let state = docs.diff(&doc, &[]).await.unwrap();
    drop(docs);
    store.close().await.unwrap();

    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    assert_eq!(
        docs.text(&doc, "t").await.unwrap().as_deref(),
        Some("hello durable world")
    );
    assert_eq!(docs.json(&doc).await.unwrap(), before);
    assert_eq!(docs.diff(&doc, &[]).await.unwrap(), state);
    let info = docs.info(&doc).await.unwrap().unwrap();
    assert_eq!(info.version, last);
    assert_eq!(docs.stats().documents, 1);
}

/// Reading a document costs time in proportion to its size: a 1 MiB text in one run (one
/// paste) reads back as text and as JSON. (Walking its characters one by one, as the first
/// version did, is quadratic in yrs and took minutes.)
#[tokio::test]
async fn a_large_text_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let client = Doc::new();
    let doc = name("big");
    let pasted = "lorem ipsum ".repeat(1 << 16);
    docs.apply_update(&doc, insert(&client, 0, &pasted))
        .await
        .unwrap();
    let read = docs.text(&doc, "t").await.unwrap();
    assert_eq!(read.as_deref(), Some(pasted.as_str()));
    let json = docs.json(&doc).await.unwrap();
    assert_eq!(json["t"].as_str(), Some(pasted.as_str()));
}

#[tokio::test]
async fn compaction_keeps_the_content_and_the_history_it_promises() {
    let dir = tempfile::tempdir().unwrap();
    let (store, docs) = engine(&dir, small_compactions()).await;
    let client = Doc::new();
    let doc = name("compacted");
    let mut texts = vec![String::new()];
    for i in 0..10 {
        let at = text_of(&client).len() as u32;
        docs.apply_update(&doc, insert(&client, at, &format!("{i}")))
            .await
            .unwrap();
        texts.push(text_of(&client));
    }
    // Snapshots at 4 and 8: the one at 4 is the oldest readable version.
    let info = docs.info(&doc).await.unwrap().unwrap();
    assert_eq!(
        (info.version, info.compactions, info.oldest_version),
        (10, 2, 4)
    );
    assert_eq!(info.updates_since_snapshot, 2);
    assert_eq!(info.history_updates, 6);
    assert_eq!(docs.stats().compactions, 2);
    let seqs: Vec<u64> = docs
        .history(&doc)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (5..=10).collect::<Vec<_>>());
    for version in 4..=10 {
        let at = docs.at_version(&doc, version).await.unwrap();
        assert_eq!(
            at.text("t").unwrap().as_deref(),
            Some(texts[version as usize].as_str()),
            "version {version}"
        );
    }
    assert!(matches!(
        docs.at_version(&doc, 3).await,
        Err(DocError::VersionCompacted { oldest: 4, .. })
    ));
    assert!(matches!(
        docs.at_version(&doc, 11).await,
        Err(DocError::VersionAhead { latest: 10, .. })
    ));

    // Reloaded from snapshot plus log, the content is the same.
    drop(docs);
    store.close().await.unwrap();
    let (_store, docs) = engine(&dir, small_compactions()).await;
    assert_eq!(
        docs.text(&doc, "t").await.unwrap().as_deref(),
        Some("0123456789")
    );
}

#[tokio::test]
async fn before_the_first_compaction_every_version_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let client = Doc::new();
    let doc = name("young");
    docs.apply_update(&doc, insert(&client, 0, "ab"))
        .await
        .unwrap();
    docs.apply_update(&doc, insert(&client, 2, "cd"))
        .await
        .unwrap();
    assert_eq!(
        docs.at_version(&doc, 0).await.unwrap().text("t").unwrap(),
        None
    );
    assert_eq!(
        docs.at_version(&doc, 1)
            .await
            .unwrap()
            .text("t")
            .unwrap()
            .as_deref(),
        Some("ab")
    );
    let history = docs.history(&doc).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .all(|entry| entry.time_ms > 0 && entry.bytes > 0)
    );
}

#[tokio::test]
async fn corrupted_and_oversized_updates_are_refused_and_the_document_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DocConfig::default();
    config.max_update_bytes = 1024;
    config.max_doc_bytes = 4096;
    let (store, docs) = engine(&dir, config).await;
    let client = Doc::new();
    let doc = name("guarded");
    let good = insert(&client, 0, "intact");
    docs.apply_update(&doc, good.clone()).await.unwrap();
    let before = docs.diff(&doc, &[]).await.unwrap();

    let mut truncated = insert(&client, 6, " and more");
    truncated.truncate(truncated.len() - 3);
    let mut flipped = insert(&client, 6, "!");
    flipped[1] ^= 0xff;
    for bad in [
        truncated,
        flipped,
        vec![0xff; 40],
        vec![200, 200, 200, 200, 1],
    ] {
        let refused = docs.apply_update(&doc, bad).await;
        assert!(
            matches!(
                refused,
                Err(DocError::MalformedUpdate { .. } | DocError::RejectedUpdate { .. })
            ),
            "{refused:?}"
        );
    }
    let big = insert(&Doc::new(), 0, &"x".repeat(2000));
    assert!(matches!(
        docs.apply_update(&doc, big).await,
        Err(DocError::UpdateTooLarge { max: 1024, .. })
    ));
    // Many updates under the update cap, over the document cap together.
    let filler = Doc::new();
    let mut grew = None;
    for _ in 0..10 {
        let update = insert(&filler, 0, &"y".repeat(900));
        if let Err(error) = docs.apply_update(&doc, update).await {
            grew = Some(error);
            break;
        }
    }
    assert!(
        matches!(grew, Some(DocError::DocumentTooLarge { max: 4096, .. })),
        "{grew:?}"
    );

    let stored = docs.info(&doc).await.unwrap().unwrap();
    assert!(stored.stored_bytes <= 4096);
    assert!(docs.stats().updates_rejected >= 6);
    // Refused updates left no trace: after a restart the document reads the same.
    let expected = docs.json(&doc).await.unwrap();
    drop(docs);
    store.close().await.unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    assert_eq!(docs.json(&doc).await.unwrap(), expected);
    let text = docs.text(&doc, "t").await.unwrap().unwrap();
    assert!(
        text.contains("intact") && !text.contains("more") && !text.contains('!'),
        "{text}"
    );
    assert!(before.len() <= docs.diff(&doc, &[]).await.unwrap().len());
}

#[tokio::test]
async fn an_update_yrs_refuses_to_integrate_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let doc = name("batch");
    let client = Doc::new();
    docs.apply_update(&doc, insert(&client, 0, "base"))
        .await
        .unwrap();
    // Concurrent good updates with one that decodes but is garbage inside.
    let mut bad = insert(&Doc::new(), 0, "zz");
    let last = bad.len() - 4;
    bad[last] = 0x7f;
    let updates = vec![insert(&client, 4, "1"), bad, insert(&client, 5, "2")];
    let results = futures_join(&docs, &doc, updates).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "{results:?}");
    let text = docs.text(&doc, "t").await.unwrap().unwrap();
    assert!(text.starts_with("base12"), "{text}");
}

async fn futures_join(
    docs: &DocStore,
    doc: &pqnode_crdt::DocName,
    updates: Vec<Vec<u8>>,
) -> Vec<Result<u64, DocError>> {
    let tasks: Vec<_> = updates
        .into_iter()
        .map(|update| {
            let docs = docs.clone();
            let doc = doc.clone();
            tokio::spawn(async move { docs.apply_update(&doc, update).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn concurrent_updates_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let doc = name("busy");
    let updates: Vec<Vec<u8>> = (0..200)
        .map(|i| insert(&Doc::new(), 0, &format!("<{i}>")))
        .collect();
    let results = futures_join(&docs, &doc, updates).await;
    let mut seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "every update has its own version"
    );
    let stats = docs.stats();
    assert_eq!(stats.updates_applied, 200);
    assert!(stats.commits < 200, "batched: {} commits", stats.commits);
}

#[tokio::test]
async fn list_info_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (store, docs) = engine(&dir, small_compactions()).await;
    for doc in ["a", "b"] {
        let client = Doc::new();
        for i in 0..6 {
            docs.apply_update(&name(doc), insert(&client, 0, &i.to_string()))
                .await
                .unwrap();
        }
    }
    let listed: Vec<String> = docs
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name.to_string())
        .collect();
    assert_eq!(listed, ["a", "b"]);
    let mut events = docs.subscribe(&name("a"));
    assert!(docs.delete(&name("a")).await.unwrap());
    assert!(!docs.delete(&name("a")).await.unwrap());
    assert!(matches!(
        events.recv().await,
        Ok(pqnode_crdt::DocEvent::Deleted)
    ));
    assert_eq!(docs.info(&name("a")).await.unwrap(), None);
    assert!(matches!(
        docs.json(&name("a")).await,
        Err(DocError::NotFound { .. })
    ));
    assert!(matches!(
        docs.history(&name("a")).await,
        Err(DocError::NotFound { .. })
    ));
    assert_eq!(docs.stats().documents, 1);
    // Nothing of "a" is left in the table; "b" is whole.
    let keys = store.scan(pqnode_store::Table::Documents).await.unwrap();
    assert!(!keys.is_empty());
    for (key, _) in keys {
        assert!(
            key[1..].starts_with(b"b"),
            "a key of the deleted document is left: {key:?}"
        );
    }
    assert_eq!(
        docs.text(&name("b"), "t").await.unwrap().as_deref(),
        Some("543210")
    );
}

#[tokio::test]
async fn idle_documents_leave_memory_and_reload_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DocConfig::default();
    config.idle_evict_after = Duration::from_millis(50);
    config.max_loaded_docs = 3;
    let (_store, docs) = engine(&dir, config).await;
    for i in 0..6 {
        let update = insert(&Doc::new(), 0, &format!("x{i}"));
        docs.apply_update(&name(&format!("d{i}")), update)
            .await
            .unwrap();
    }
    assert!(
        docs.stats().loaded_docs <= 3,
        "the count budget holds: {:?}",
        docs.stats()
    );
    let held = docs.subscribe(&name("d5"));
    tokio::time::sleep(Duration::from_millis(80)).await;
    docs.evict_idle();
    let stats = docs.stats();
    assert_eq!(stats.loaded_docs, 1, "only the subscribed document stays");
    assert!(stats.evictions >= 5);
    for i in 0..6 {
        let text = docs.text(&name(&format!("d{i}")), "t").await.unwrap();
        assert_eq!(text, Some(format!("x{i}")), "d{i} reloads from the store");
    }
    assert!(docs.stats().loads >= 6);
    drop(held);
}

#[tokio::test]
async fn bad_names_and_configs_are_refused() {
    assert!(pqnode_crdt::DocName::new("../etc").is_err());
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    let mut config = DocConfig::default();
    config.max_doc_bytes = 10;
    assert!(matches!(
        DocStore::open(store, config).await,
        Err(DocError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn the_change_feed_follows_every_document_after_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, docs) = engine(&dir, DocConfig::default()).await;
    let mut changes = docs.changes();
    let client = Doc::new();
    let doc = name("feed");
    let version = docs
        .apply_update(&doc, insert(&client, 0, "x"))
        .await
        .unwrap();
    assert_eq!(
        changes.recv().await.unwrap(),
        pqnode_crdt::DocChange::Updated {
            name: doc.clone(),
            version
        }
    );
    assert!(docs.delete(&doc).await.unwrap());
    assert_eq!(
        changes.recv().await.unwrap(),
        pqnode_crdt::DocChange::Deleted { name: doc.clone() }
    );
    // Deleting what does not exist changes nothing.
    assert!(!docs.delete(&doc).await.unwrap());
    assert!(changes.try_recv().is_err());
}
