//! What the DHT keeps in the node's store across restarts: the routing table, so a restarted
//! node rejoins through the contacts it had rather than through its bootstrap nodes (BEP 5 asks
//! for the same), and the records and provider entries it holds for others, so they do not
//! vanish from the network while their publishers' next republish is hours away. Each of
//! those is written when it is accepted, and the STORED answer waits for the commit: a
//! publisher told "stored" can count on it across a crash.

use std::time::SystemTime;

use pqnode_dht::{Instant, Node, ProviderRecord, Record, Request, codec};
use pqnode_store::{Store, StoreError, Table};

/// The table is saved whole, as the core exports it, under one key of [`Table::Routing`].
const TABLE_KEY: &[u8] = b"dht/table/v1";
/// Each record and provider entry held for others is an expiring entry of [`Table::Records`]
/// under this prefix, written when it is accepted.
const HELD_PREFIX: &[u8] = b"dht/held/";

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

/// A record or provider entry this node accepted to hold for another node.
pub(crate) enum Held {
    Record(Record),
    Provider(ProviderRecord),
}

impl Held {
    /// What `request` asks this node to hold, if it is a STORE or an ADD_PROVIDER.
    pub(crate) fn asked_by(request: &Request) -> Option<Self> {
        match request {
            Request::Store { record } => Some(Self::Record(record.clone())),
            Request::AddProvider { provider } => Some(Self::Provider(provider.clone())),
            _ => None,
        }
    }

    /// One key per record (its key names its publisher and name) and one per publisher's
    /// provider entry: a newer version overwrites the older on disk as it does in memory.
    fn store_key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(HELD_PREFIX.len() + 1 + 40);
        key.extend_from_slice(HELD_PREFIX);
        match self {
            Self::Record(record) => {
                key.push(b'r');
                key.extend_from_slice(record.key().as_bytes());
            }
            Self::Provider(provider) => {
                key.push(b'p');
                key.extend_from_slice(provider.key().as_bytes());
                key.extend_from_slice(provider.publisher_id().as_bytes());
            }
        }
        key
    }
}

/// Writes one accepted item, durably, with the lifetime the core granted it (its TTL from
/// now, or less if the copy came with an earlier expiry); the store's sweep deletes it once
/// that runs out. The DHT answers STORED only after.
pub(crate) async fn save_held(
    store: &Store,
    held: &Held,
    now: SystemTime,
) -> Result<(), StoreError> {
    let (ttl, value) = match held {
        Held::Record(record) => {
            let left = record.expires_unix_ms().map_or(record.ttl(), |ms| {
                pqnode_clock::from_unix_ms(ms)
                    .duration_since(now)
                    .unwrap_or_default()
                    .min(record.ttl())
            });
            let record = record.clone().with_expiry(None);
            (left, codec::encode_store(&[(record, left)], &[]))
        }
        Held::Provider(provider) => (
            provider.ttl(),
            codec::encode_store(&[], &[(provider.clone(), provider.ttl())]),
        ),
    };
    store.put_record(held.store_key(), value, now + ttl).await
}

/// Every held item not expired by `now`, as a snapshot for `Node::restore_records`, each with
/// the lifetime it has left. An unreadable item is skipped (and logged), not fatal.
pub(crate) async fn load_records(
    store: &Store,
    now: SystemTime,
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut records = Vec::new();
    let mut providers = Vec::new();
    for (key, saved) in store.scan_records(now).await? {
        if !key.starts_with(HELD_PREFIX) {
            continue;
        }
        let Some(left) = saved
            .expires_at
            .and_then(|at| at.duration_since(now).ok())
            .filter(|left| !left.is_zero())
        else {
            continue;
        };
        match codec::decode_store(&saved.value) {
            Ok((r, p)) => {
                records.extend(r.into_iter().map(|(record, _)| (record, left)));
                providers.extend(p.into_iter().map(|(provider, _)| (provider, left)));
            }
            Err(e) => tracing::warn!(error = %e, "an unreadable DHT record in the store; skipped"),
        }
    }
    if records.is_empty() && providers.is_empty() {
        return Ok(None);
    }
    Ok(Some(codec::encode_store(&records, &providers)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pqnode_crypto::Identity;

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    async fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("s.redb")).await.expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn held_items_come_back_with_the_lifetime_they_have_left() {
        let (_dir, store) = open().await;
        let me = Identity::from_seed(&[3; 32]).expect("identity");
        let long = Record::sign(&me, b"long", b"v", 1, 3 * HOUR).expect("sign");
        let short = Record::sign(&me, b"short", b"v", 1, HOUR).expect("sign");
        let provider = ProviderRecord::sign(&me, *long.key(), b"here", 1, 3 * HOUR).expect("sign");
        let now = SystemTime::now();
        for held in [
            Held::Record(long.clone()),
            Held::Record(short),
            Held::Provider(provider.clone()),
        ] {
            save_held(&store, &held, now - 2 * HOUR)
                .await
                .expect("save");
        }

        let loaded = load_records(&store, now)
            .await
            .expect("load")
            .expect("saved");
        let (records, providers) = codec::decode_store(&loaded).expect("decode");
        assert_eq!(records.len(), 1, "the one-hour record expired while down");
        let (record, left) = &records[0];
        assert_eq!(record, &long);
        assert!(
            *left <= HOUR && *left > HOUR - Duration::from_secs(5),
            "{left:?}"
        );
        assert_eq!(providers.len(), 1);
        assert_eq!(providers[0].0, provider);
        store.close().await.expect("close");
    }

    #[tokio::test]
    async fn a_copy_that_came_with_an_earlier_expiry_is_kept_no_longer() {
        let (_dir, store) = open().await;
        let me = Identity::from_seed(&[4; 32]).expect("identity");
        let now = SystemTime::now();
        // Its TTL is 3 h, but the storer that handed it on had it for 30 min more.
        let record = Record::sign(&me, b"handed on", b"v", 1, 3 * HOUR)
            .expect("sign")
            .with_expiry(Some(pqnode_clock::unix_ms(now + HOUR / 2)));
        save_held(&store, &Held::Record(record.clone()), now)
            .await
            .expect("save");
        let loaded = load_records(&store, now)
            .await
            .expect("load")
            .expect("saved");
        let (records, _) = codec::decode_store(&loaded).expect("decode");
        let (saved, left) = &records[0];
        assert_eq!(saved, &record);
        assert_eq!(
            saved.expires_unix_ms(),
            None,
            "the store keeps its own expiry"
        );
        assert!(
            *left <= HOUR / 2 && *left > HOUR / 2 - Duration::from_secs(5),
            "{left:?}"
        );
        store.close().await.expect("close");
    }

    #[tokio::test]
    async fn a_newer_version_replaces_the_older_and_garbage_is_skipped() {
        let (_dir, store) = open().await;
        let now = SystemTime::now();
        assert!(load_records(&store, now).await.expect("load").is_none());
        assert!(load_table(&store).await.expect("load").is_none());

        let me = Identity::from_seed(&[4; 32]).expect("identity");
        for seq in [1, 2] {
            let record = Record::sign(&me, b"name", &[seq as u8], seq, HOUR).expect("sign");
            save_held(&store, &Held::Record(record), now)
                .await
                .expect("save");
        }
        let mut garbage_key = HELD_PREFIX.to_vec();
        garbage_key.extend_from_slice(b"r-garbage");
        store
            .put_record(garbage_key, vec![0xff; 16], now + HOUR)
            .await
            .expect("put");

        let loaded = load_records(&store, now)
            .await
            .expect("load")
            .expect("saved");
        let (records, _) = codec::decode_store(&loaded).expect("decode");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].0.seq(), 2, "the newer version");
        store.close().await.expect("close");
    }
}
