//! What the DHT keeps in the node's store across restarts: the routing table, so a restarted
//! node rejoins through the contacts it had rather than through its bootstrap nodes (BEP 5 asks
//! for the same), and the records and provider entries it holds for others, so they do not
//! vanish from the network while their publishers' next republish is hours away.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pqnode_dht::{Instant, MAX_TTL, Node, codec};
use pqnode_store::{Store, StoreError, Table};

/// The table is saved whole, as the core exports it, under one key of [`Table::Routing`].
const TABLE_KEY: &[u8] = b"dht/table/v1";
/// The held records likewise, under one key of [`Table::Records`].
const RECORDS_KEY: &[u8] = b"dht/records/v1";
/// The records value starts with the wall-clock time of the save (Unix milliseconds, big
/// endian), so the time the node was down can be taken off every lifetime.
const SAVED_AT_LEN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PersistError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("saved records are unreadable: {0}")]
    Codec(#[from] codec::CodecError),
    #[error("saved records are truncated")]
    Truncated,
}

/// Reloads the saved table and records into `node`; missing or unreadable state is no reason
/// not to start (the node then joins through its seeds). Returns how many contacts came back.
pub(crate) async fn restore(node: &mut Node, store: &Store) -> usize {
    let contacts = match load_table(store).await {
        Ok(Some(saved)) => match node.restore_table(Instant::ZERO, &saved) {
            Ok(restored) => restored,
            Err(e) => {
                tracing::warn!(error = %e, "saved DHT routing table is unreadable; ignoring it");
                0
            }
        },
        Ok(None) => 0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the saved DHT routing table");
            0
        }
    };
    match load_records(store, SystemTime::now()).await {
        Ok(Some(saved)) => match node.restore_records(Instant::ZERO, &saved) {
            Ok(records) => tracing::info!(records, "DHT records reloaded"),
            Err(e) => tracing::warn!(error = %e, "saved DHT records are unreadable; ignoring them"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the saved DHT records"),
    }
    contacts
}

/// The saved table, if there is one.
pub(crate) async fn load_table(store: &Store) -> Result<Option<bytes::Bytes>, StoreError> {
    store.get(Table::Routing, TABLE_KEY).await
}

/// Replaces the saved table with `encoded` (from `Node::export_table`).
pub(crate) async fn save_table(store: &Store, encoded: Vec<u8>) -> Result<(), StoreError> {
    store.put(Table::Routing, TABLE_KEY, encoded).await
}

/// Replaces the saved records with `snapshot` (from `Node::export_records`), taken at `now`.
pub(crate) async fn save_records(
    store: &Store,
    snapshot: Vec<u8>,
    now: SystemTime,
) -> Result<(), StoreError> {
    let mut value = Vec::with_capacity(SAVED_AT_LEN + snapshot.len());
    value.extend_from_slice(&unix_ms(now).to_be_bytes());
    value.extend_from_slice(&snapshot);
    // Nothing in it can outlive the longest TTL a node grants: the store's sweep may drop it.
    store.put_record(RECORDS_KEY, value, now + MAX_TTL).await
}

/// The saved records as a snapshot for `Node::restore_records`, each lifetime shortened by
/// the time since the save (what expired meanwhile is dropped).
pub(crate) async fn load_records(
    store: &Store,
    now: SystemTime,
) -> Result<Option<Vec<u8>>, PersistError> {
    let Some(saved) = store.get_record(RECORDS_KEY, now).await? else {
        return Ok(None);
    };
    let (saved_at, snapshot) = saved
        .value
        .split_first_chunk::<SAVED_AT_LEN>()
        .ok_or(PersistError::Truncated)?;
    let down = Duration::from_millis(unix_ms(now).saturating_sub(u64::from_be_bytes(*saved_at)));
    let (records, providers) = codec::decode_store(snapshot)?;
    let shorten = |left: Duration| left.checked_sub(down).filter(|l| !l.is_zero());
    let records: Vec<_> = records
        .into_iter()
        .filter_map(|(r, left)| Some((r, shorten(left)?)))
        .collect();
    let providers: Vec<_> = providers
        .into_iter()
        .filter_map(|(p, left)| Some((p, shorten(left)?)))
        .collect();
    Ok(Some(codec::encode_store(&records, &providers)))
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use pqnode_crypto::Identity;
    use pqnode_dht::Record;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn lifetimes_lose_the_time_the_node_was_down() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("s.redb")).await.expect("open");
        let me = Identity::from_seed(&[3; 32]).expect("identity");
        let long = Record::sign(&me, b"long", b"v", 1, 3 * HOUR).expect("sign");
        let short = Record::sign(&me, b"short", b"v", 1, HOUR).expect("sign");
        let snapshot = codec::encode_store(&[(long.clone(), 3 * HOUR), (short, HOUR)], &[]);

        let now = SystemTime::now();
        save_records(&store, snapshot, now - 2 * HOUR)
            .await
            .expect("save");
        let loaded = load_records(&store, now)
            .await
            .expect("load")
            .expect("saved");
        let (records, providers) = codec::decode_store(&loaded).expect("decode");
        assert!(providers.is_empty());
        assert_eq!(records.len(), 1, "the one-hour record expired while down");
        let (record, left) = &records[0];
        assert_eq!(record, &long);
        assert!(
            *left <= HOUR && *left > HOUR - Duration::from_secs(5),
            "{left:?}"
        );
        store.close().await.expect("close");
    }

    #[tokio::test]
    async fn nothing_saved_loads_as_nothing_and_garbage_as_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("s.redb")).await.expect("open");
        let now = SystemTime::now();
        assert!(load_records(&store, now).await.expect("load").is_none());
        assert!(load_table(&store).await.expect("load").is_none());

        store
            .put_record(RECORDS_KEY, vec![1, 2, 3], now + HOUR)
            .await
            .expect("put");
        assert!(matches!(
            load_records(&store, now).await,
            Err(PersistError::Truncated)
        ));
        let mut garbage = unix_ms(now).to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0xff; 16]);
        store
            .put_record(RECORDS_KEY, garbage, now + HOUR)
            .await
            .expect("put");
        assert!(matches!(
            load_records(&store, now).await,
            Err(PersistError::Codec(_))
        ));
        store.close().await.expect("close");
    }
}
