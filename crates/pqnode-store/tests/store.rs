//! The store, end to end on real files.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pqnode_health::Status;
use pqnode_store::{
    DEFAULT_FILE_NAME, MAX_KEY_LEN, MAX_VALUE_LEN, SCHEMA_VERSION, SCHEMA_VERSION_KEY, Store,
    StoreError, StoreOptions, Table, TtlCache,
};
use tempfile::TempDir;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join(DEFAULT_FILE_NAME)
}

async fn fresh() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(db_path(&dir)).await.expect("open");
    (dir, store)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[tokio::test]
async fn put_get_scan_delete_round_trip() {
    let (_dir, store) = fresh().await;
    store
        .put(Table::Routing, b"b", b"2".to_vec())
        .await
        .unwrap();
    store
        .put(Table::Routing, b"a", b"1".to_vec())
        .await
        .unwrap();
    store
        .put(Table::Messages, b"a", b"other table".to_vec())
        .await
        .unwrap();

    assert_eq!(
        store.get(Table::Routing, b"a").await.unwrap(),
        Some(Bytes::from("1"))
    );
    assert_eq!(store.get(Table::Routing, b"missing").await.unwrap(), None);
    assert_eq!(
        store.scan(Table::Routing).await.unwrap(),
        vec![
            (Bytes::from("a"), Bytes::from("1")),
            (Bytes::from("b"), Bytes::from("2"))
        ]
    );

    assert!(store.delete(Table::Routing, b"a").await.unwrap());
    assert!(!store.delete(Table::Routing, b"a").await.unwrap());
    assert_eq!(store.get(Table::Routing, b"a").await.unwrap(), None);
    assert_eq!(
        store.get(Table::Messages, b"a").await.unwrap(),
        Some(Bytes::from("other table"))
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn overwrites_are_visible_through_the_read_cache() {
    let (_dir, store) = fresh().await;
    store
        .put(Table::Documents, b"doc", b"v1".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.get(Table::Documents, b"doc").await.unwrap(),
        Some(Bytes::from("v1"))
    );
    assert_eq!(
        store.get(Table::Documents, b"doc").await.unwrap(),
        Some(Bytes::from("v1"))
    );
    store
        .put(Table::Documents, b"doc", b"v2".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.get(Table::Documents, b"doc").await.unwrap(),
        Some(Bytes::from("v2"))
    );
    store.delete(Table::Documents, b"doc").await.unwrap();
    assert_eq!(store.get(Table::Documents, b"doc").await.unwrap(), None);
}

#[tokio::test]
async fn scan_prefix_returns_only_matching_keys_in_order() {
    let (_dir, store) = fresh().await;
    store
        .put_many(
            Table::Documents,
            [
                (b"doc1/0002".to_vec(), b"c".to_vec()),
                (b"doc1/0001".to_vec(), b"b".to_vec()),
                (b"doc0/0001".to_vec(), b"a".to_vec()),
                (b"doc2/0001".to_vec(), b"d".to_vec()),
            ],
        )
        .await
        .unwrap();
    let keys: Vec<Bytes> = store
        .scan_prefix(Table::Documents, b"doc1/")
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(
        keys,
        vec![Bytes::from("doc1/0001"), Bytes::from("doc1/0002")]
    );
    assert!(
        store
            .scan_prefix(Table::Documents, b"zzz")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn replace_all_swaps_a_whole_table_atomically() {
    let (_dir, store) = fresh().await;
    store
        .put_many(
            Table::Routing,
            [(b"old1", b"a".to_vec()), (b"old2", b"b".to_vec())],
        )
        .await
        .unwrap();
    assert!(store.get(Table::Routing, b"old1").await.unwrap().is_some()); // now cached
    store
        .put(Table::Messages, b"untouched", b"m".to_vec())
        .await
        .unwrap();

    store
        .replace_all(Table::Routing, [(b"new1", b"c".to_vec())])
        .await
        .unwrap();
    assert_eq!(
        store.scan(Table::Routing).await.unwrap(),
        vec![(Bytes::from("new1"), Bytes::from("c"))]
    );
    assert_eq!(store.get(Table::Routing, b"old1").await.unwrap(), None);
    assert!(
        store
            .get(Table::Messages, b"untouched")
            .await
            .unwrap()
            .is_some()
    );

    store
        .put_record(b"r", b"v".to_vec(), at(100))
        .await
        .unwrap();
    store
        .replace_all(Table::Records, [(b"s", b"w".to_vec())])
        .await
        .unwrap();
    assert_eq!(store.stats().await.expiring_records, Some(0));

    assert!(matches!(
        store
            .replace_all(Table::Meta, [(b"k", b"v".to_vec())])
            .await,
        Err(StoreError::ReservedKey { .. })
    ));
}

#[tokio::test]
async fn last_entries_are_the_greatest_keys_greatest_first() {
    let (_dir, store) = fresh().await;
    store
        .put_many(
            Table::Messages,
            (0u64..50).map(|time| (time.to_be_bytes(), time.to_string().into_bytes())),
        )
        .await
        .unwrap();
    let newest: Vec<Bytes> = store
        .last_entries(Table::Messages, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    assert_eq!(
        newest,
        vec![Bytes::from("49"), Bytes::from("48"), Bytes::from("47")]
    );
    assert_eq!(
        store
            .last_entries(Table::Messages, 500)
            .await
            .unwrap()
            .len(),
        50
    );
    assert!(
        store
            .last_entries(Table::Routing, 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.len(Table::Messages).await.unwrap(), 50);
    assert_eq!(store.len(Table::Routing).await.unwrap(), 0);
}

#[tokio::test]
async fn reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = Store::open(&path).await.unwrap();
    store
        .put_many(
            Table::Routing,
            (0u32..100).map(|i| (i.to_be_bytes(), i.to_le_bytes().to_vec())),
        )
        .await
        .unwrap();
    store
        .put_record(b"rec", b"value".to_vec(), at(4_000_000_000))
        .await
        .unwrap();
    store.close().await.unwrap();

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.scan(Table::Routing).await.unwrap().len(), 100);
    assert_eq!(
        store
            .get(Table::Routing, 42u32.to_be_bytes())
            .await
            .unwrap(),
        Some(Bytes::copy_from_slice(&42u32.to_le_bytes()))
    );
    let record = store.get_record(b"rec", at(1)).await.unwrap().unwrap();
    assert_eq!(record.expires_at, Some(at(4_000_000_000)));
    assert_eq!(
        store.get(Table::Meta, SCHEMA_VERSION_KEY).await.unwrap(),
        Some(Bytes::copy_from_slice(&SCHEMA_VERSION.to_be_bytes()))
    );
}

#[tokio::test]
async fn store_written_by_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    write_schema_version(&path, SCHEMA_VERSION + 1);

    let error = Store::open(&path).await.unwrap_err();
    match &error {
        StoreError::SchemaTooNew {
            path: named,
            found,
            supported,
        } => {
            assert_eq!(named, &path);
            assert_eq!((*found, *supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("{}", SCHEMA_VERSION + 1)),
        "{message}"
    );
    // Refusing did not stamp our version over theirs.
    assert_eq!(read_schema_version(&path), Some(SCHEMA_VERSION + 1));
}

#[tokio::test]
async fn redb_file_of_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("theirs"))
            .unwrap()
            .insert("x", 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let error = Store::open(&path).await.unwrap_err();
    assert!(
        matches!(error, StoreError::ForeignDatabase { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn garbage_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();

    let error = Store::open(&path).await.unwrap_err();
    assert!(
        matches!(error, StoreError::NotADatabase { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&path.display().to_string()));
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[tokio::test]
async fn missing_folder_fails_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-folder").join(DEFAULT_FILE_NAME);
    let error = Store::open(&path).await.unwrap_err();
    assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-folder"));
}

#[tokio::test]
async fn second_open_of_the_same_file_is_refused() {
    let (dir, _store) = fresh().await;
    let error = Store::open(db_path(&dir)).await.unwrap_err();
    assert!(matches!(error, StoreError::AlreadyOpen { .. }), "{error:?}");
}

#[tokio::test]
async fn health_passes_then_fails_once_the_file_is_deleted() {
    let (dir, store) = fresh().await;
    store
        .put(Table::Messages, b"m", b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(store.health().status, Status::Pass);

    std::fs::remove_file(db_path(&dir)).unwrap();
    let health = store.health();
    assert_eq!(health.status, Status::Fail);
    let reason = health.reason.unwrap();
    assert!(reason.contains("deleted"), "{reason}");
    assert!(reason.contains(DEFAULT_FILE_NAME), "{reason}");
}

#[tokio::test]
async fn health_fails_when_the_file_is_replaced() {
    let (dir, store) = fresh().await;
    let path = db_path(&dir);
    let other = dir.path().join("other");
    std::fs::write(&other, b"not the store").unwrap();
    std::fs::rename(&other, &path).unwrap();
    let health = store.health();
    assert_eq!(health.status, Status::Fail);
    assert!(health.reason.unwrap().contains("replaced"));
}

#[tokio::test]
async fn writes_after_the_file_is_deleted_are_refused_and_the_fault_is_counted() {
    let (dir, store) = fresh().await;
    store
        .put(Table::Messages, b"a", b"1".to_vec())
        .await
        .unwrap();
    std::fs::remove_file(db_path(&dir)).unwrap();
    // The first write after the deletion may reach redb's open handle, but it is not
    // acknowledged: the file check after its commit fails it.
    for key in [b"b", b"c"] {
        let error = store
            .put(Table::Messages, key, b"2".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        assert!(error.to_string().contains("deleted"), "{error}");
    }
    assert_eq!(store.health().status, Status::Fail);
    let stats = store.stats().await;
    assert!(stats.errors >= 1, "{stats:?}");
    assert!(stats.last_error.unwrap().contains("deleted"));
    // A deleted file never comes back by itself: the store stays failed.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(store.health().status, Status::Fail);
    assert!(
        store
            .put(Table::Messages, b"d", b"3".to_vec())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_missing_file_is_an_error_without_create() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        create: false,
        ..StoreOptions::default()
    };
    let error = Store::open_with(db_path(&dir), options.clone())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Missing { .. }), "{error:?}");
    assert!(!db_path(&dir).exists(), "nothing was created");

    Store::open(db_path(&dir))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let store = Store::open_with(db_path(&dir), options).await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn offline_check_counts_the_tables_and_compact_keeps_them() {
    let (dir, store) = fresh().await;
    for i in 0..200u32 {
        store
            .put(Table::Messages, &i.to_be_bytes(), vec![b'x'; 2048])
            .await
            .unwrap();
    }
    for i in 0..150u32 {
        store
            .delete(Table::Messages, &i.to_be_bytes())
            .await
            .unwrap();
    }
    store.close().await.unwrap();

    let report = pqnode_store::check(&db_path(&dir)).unwrap();
    assert_eq!(report.entries[&Table::Messages], 50);
    assert!(!report.repaired);
    let (before, after) = pqnode_store::compact(&db_path(&dir)).unwrap();
    assert!(after <= before, "{before} -> {after}");
    assert_eq!(
        pqnode_store::check(&db_path(&dir)).unwrap().entries[&Table::Messages],
        50
    );

    let missing = dir.path().join("nothing-here.redb");
    assert!(matches!(
        pqnode_store::check(&missing),
        Err(StoreError::Missing { .. })
    ));
    std::fs::write(&missing, vec![0x5a; 8192]).unwrap();
    assert!(
        pqnode_store::check(&missing).is_err(),
        "garbage fails the check"
    );
}

#[tokio::test]
async fn closed_store_answers_closed_and_fails_health() {
    let (_dir, store) = fresh().await;
    let other_handle = store.clone();
    store.close().await.unwrap();
    store.close().await.unwrap();
    assert!(matches!(
        other_handle.put(Table::Routing, b"k", b"v".to_vec()).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        other_handle.get(Table::Routing, b"k").await,
        Err(StoreError::Closed)
    ));
    assert_eq!(other_handle.health().status, Status::Fail);
    assert_eq!(other_handle.stats().await.entries, None);
}

#[tokio::test]
async fn oversized_and_reserved_keys_are_refused_before_reaching_the_file() {
    let (_dir, store) = fresh().await;
    let long_key = vec![0u8; MAX_KEY_LEN + 1];
    assert!(matches!(
        store.put(Table::Routing, &long_key, b"v".to_vec()).await,
        Err(StoreError::KeyTooLarge { .. })
    ));
    assert!(matches!(
        store
            .put(Table::Documents, b"big", vec![0u8; MAX_VALUE_LEN + 1])
            .await,
        Err(StoreError::ValueTooLarge { .. })
    ));
    assert!(matches!(
        store
            .put(Table::Meta, SCHEMA_VERSION_KEY, b"0".to_vec())
            .await,
        Err(StoreError::ReservedKey { .. })
    ));
    assert!(matches!(
        store.delete(Table::Meta, SCHEMA_VERSION_KEY).await,
        Err(StoreError::ReservedKey { .. })
    ));
    store
        .put(Table::Meta, b"node-name", b"alice".to_vec())
        .await
        .unwrap();
    assert_eq!(store.stats().await.errors, 0);
    assert_eq!(store.health().status, Status::Pass);
}

#[tokio::test]
async fn records_expire_and_are_swept() {
    let (_dir, store) = fresh().await;
    store
        .put_record(b"early", b"1".to_vec(), at(100))
        .await
        .unwrap();
    store
        .put_record(b"late", b"2".to_vec(), at(300))
        .await
        .unwrap();
    store
        .put(Table::Records, b"forever", b"3".to_vec())
        .await
        .unwrap();

    assert!(store.get_record(b"early", at(99)).await.unwrap().is_some());
    assert!(store.get_record(b"early", at(100)).await.unwrap().is_none());
    let live: Vec<Bytes> = store
        .scan_records(at(200))
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(live, vec![Bytes::from("forever"), Bytes::from("late")]);

    assert_eq!(store.sweep_expired_records(at(200)).await.unwrap(), 1);
    assert_eq!(store.get(Table::Records, b"early").await.unwrap(), None);
    assert_eq!(store.sweep_expired_records(at(200)).await.unwrap(), 0);

    // Republishing moves the expiry; the old one must not sweep the new record.
    store
        .put_record(b"late", b"2b".to_vec(), at(1_000))
        .await
        .unwrap();
    assert_eq!(store.sweep_expired_records(at(500)).await.unwrap(), 0);
    assert_eq!(
        store
            .get_record(b"late", at(500))
            .await
            .unwrap()
            .map(|r| r.value),
        Some(Bytes::from("2b"))
    );

    assert_eq!(
        store
            .sweep_expired_records(at(u64::MAX / 1_000_000))
            .await
            .unwrap(),
        1
    );
    let stats = store.stats().await;
    assert_eq!(stats.entries.unwrap()[&Table::Records], 1);
    assert_eq!(stats.expiring_records, Some(0));
}

#[tokio::test]
async fn sweep_handles_more_records_than_one_chunk() {
    let (_dir, store) = fresh().await;
    // More than the sweep holds in memory at once (1024), written concurrently so the store
    // groups them into few commits.
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..1_500u32 {
        let store = store.clone();
        puts.spawn(async move {
            store
                .put_record(i.to_be_bytes(), vec![0u8; 8], at(u64::from(i % 7)))
                .await
        });
    }
    while let Some(put) = puts.join_next().await {
        put.unwrap().unwrap();
    }
    store
        .put_record(b"keep", b"k".to_vec(), at(1_000))
        .await
        .unwrap();
    assert_eq!(store.sweep_expired_records(at(10)).await.unwrap(), 1_500);
    assert_eq!(store.scan(Table::Records).await.unwrap().len(), 1);
}

#[tokio::test]
async fn write_batch_removes_ranges_and_writes_in_one_commit() {
    let (_dir, store) = fresh().await;
    let keys: [&[u8]; 5] = [b"a", b"d/1", b"d/2", b"d/3", b"e"];
    for key in keys {
        store
            .put(Table::Documents, key, b"old".to_vec())
            .await
            .unwrap();
    }
    // Read once so the cache holds a value the batch must invalidate.
    assert!(store.get(Table::Documents, b"d/2").await.unwrap().is_some());

    let changed = store
        .write_batch(
            Table::Documents,
            [(&b"d/"[..], &b"d0"[..]), (&b"z"[..], &b"a"[..])],
            [(&b"d/3"[..], b"new".to_vec()), (&b"f"[..], b"new".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(changed, 3 + 2, "three removed, two written");
    assert_eq!(store.get(Table::Documents, b"d/2").await.unwrap(), None);
    assert_eq!(
        store.scan(Table::Documents).await.unwrap(),
        vec![
            (Bytes::from("a"), Bytes::from("old")),
            (Bytes::from("d/3"), Bytes::from("new")),
            (Bytes::from("e"), Bytes::from("old")),
            (Bytes::from("f"), Bytes::from("new")),
        ]
    );
    assert!(matches!(
        store
            .write_batch(
                Table::Meta,
                [(&b"a"[..], &b"z"[..])],
                Vec::<(&[u8], Vec<u8>)>::new()
            )
            .await,
        Err(StoreError::ReservedKey { .. })
    ));
    store.close().await.unwrap();
}

#[tokio::test]
async fn write_batch_on_records_drops_the_expiry_of_what_it_removes() {
    let (_dir, store) = fresh().await;
    store
        .put_record(b"r1", b"v".to_vec(), at(4_000_000_000))
        .await
        .unwrap();
    store
        .write_batch(
            Table::Records,
            [(&b"r"[..], &b"s"[..])],
            Vec::<(&[u8], Vec<u8>)>::new(),
        )
        .await
        .unwrap();
    assert_eq!(store.get_record(b"r1", at(1)).await.unwrap(), None);
    assert_eq!(store.stats().await.expiring_records, Some(0));
    store.close().await.unwrap();
}

#[tokio::test]
async fn deleting_a_record_drops_its_expiry() {
    let (_dir, store) = fresh().await;
    store
        .put_record(b"r", b"v".to_vec(), at(100))
        .await
        .unwrap();
    assert!(store.delete(Table::Records, b"r").await.unwrap());
    assert_eq!(store.stats().await.expiring_records, Some(0));
    assert_eq!(store.sweep_expired_records(at(1_000)).await.unwrap(), 0);
}

#[tokio::test]
async fn stats_report_entries_commits_and_read_cache_hit_rate() {
    let (_dir, store) = fresh().await;
    store
        .put(Table::Routing, b"a", b"1".to_vec())
        .await
        .unwrap();
    store
        .put_many(
            Table::Messages,
            [(b"m1", b"x".to_vec()), (b"m2", b"y".to_vec())],
        )
        .await
        .unwrap();

    store.get(Table::Routing, b"a").await.unwrap(); // miss, then cached
    store.get(Table::Routing, b"a").await.unwrap(); // hit
    store.get(Table::Routing, b"a").await.unwrap(); // hit
    store.get(Table::Routing, b"b").await.unwrap(); // miss (absent keys are cached too)
    store.get(Table::Routing, b"b").await.unwrap(); // hit

    let stats = store.stats().await;
    let entries = stats.entries.clone().unwrap();
    assert_eq!(entries[&Table::Meta], 1);
    assert_eq!(entries[&Table::Routing], 1);
    assert_eq!(entries[&Table::Messages], 2);
    assert_eq!(stats.commits, 2);
    assert_eq!(stats.writes, 2);
    assert!(stats.last_commit_micros.is_some());
    assert!(stats.file_size_bytes.unwrap() > 0);
    let reads = &stats.caches[0];
    assert_eq!((reads.hits, reads.misses), (3, 2));
    assert_eq!(reads.hit_rate, Some(0.6));

    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["entries"]["routing"], 1);
    assert_eq!(json["schemaVersion"], SCHEMA_VERSION);
    assert_eq!(json["caches"][0]["hitRate"], 0.6);
    assert!(json["fileSizeBytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn registered_caches_appear_in_stats_while_they_live() {
    let (_dir, store) = fresh().await;
    let peers: TtlCache<u32, String> = TtlCache::new("peers", 100, Duration::from_secs(60));
    store.register_cache(&peers);
    peers.insert(1, "one".into());
    peers.get(&1);
    peers.get(&2);

    let stats = store.stats().await;
    let reported = stats
        .caches
        .iter()
        .find(|cache| cache.name == "peers")
        .unwrap();
    assert_eq!(reported.hit_rate, Some(0.5));

    drop(peers);
    let stats = store.stats().await;
    assert!(stats.caches.iter().all(|cache| cache.name != "peers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_callers_all_land() {
    let (_dir, store) = fresh().await;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..32u32 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..50u32 {
                let key = [task.to_be_bytes(), i.to_be_bytes()].concat();
                store.put(Table::Messages, &key, key.clone()).await?;
                let read = store.get(Table::Messages, &key).await?;
                assert_eq!(read.as_deref(), Some(key.as_slice()));
            }
            Ok::<_, StoreError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap().unwrap();
    }
    let stats = store.stats().await;
    assert_eq!(stats.entries.unwrap()[&Table::Messages], 32 * 50);
    assert_eq!(stats.writes, 32 * 50);
    assert!(stats.commits <= stats.writes);
    assert_eq!(stats.errors, 0);
    assert_eq!(store.health().status, Status::Pass);
}

fn write_schema_version(path: &Path, version: u64) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
        .unwrap()
        .insert(SCHEMA_VERSION_KEY, version.to_be_bytes().as_slice())
        .unwrap();
    txn.commit().unwrap();
}

fn read_schema_version(path: &Path) -> Option<u64> {
    use redb::ReadableDatabase;
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn
        .open_table(redb::TableDefinition::<&[u8], &[u8]>::new("meta"))
        .unwrap();
    let raw = meta.get(SCHEMA_VERSION_KEY).unwrap()?;
    Some(u64::from_be_bytes(raw.value().try_into().unwrap()))
}

/// A file made before a table was added (only `meta` here, at our version) gets the missing
/// tables at open: stats and writes work on it at once.
#[tokio::test]
async fn a_file_from_before_a_table_was_added_gains_it_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    write_schema_version(&path, SCHEMA_VERSION);
    let store = Store::open(&path).await.unwrap();
    let stats = store.stats().await;
    assert_eq!(stats.errors, 0, "{stats:?}");
    for table in Table::ALL {
        store.put(table, b"k", b"v".to_vec()).await.unwrap();
    }
    assert_eq!(store.health().status, Status::Pass);
    store.close().await.unwrap();
}
