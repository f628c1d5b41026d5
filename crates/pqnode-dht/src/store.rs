//! The in-memory record store of one node: records and provider entries, each with the
//! local instant it expires at. Callers verify signatures before storing; the store enforces
//! freshness (`seq`), expiry and capacity.

use std::collections::HashMap;

use pqnode_crypto::NodeId;

use crate::record::{Key, ProviderRecord, Record};
use crate::time::Instant;
use crate::validate::Typing;

/// Capacity limits of a [`RecordStore`].
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// Records (one per key).
    pub max_records: usize,
    /// Keys with provider entries.
    pub max_provider_keys: usize,
    /// Entries (publishers) under one provider key.
    pub max_providers_per_key: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_records: 65_536,
            max_provider_keys: 16_384,
            max_providers_per_key: 256,
        }
    }
}

/// Why the store refused a record or provider entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A live copy has a higher `seq`, or the same `seq` with a different signature.
    #[error("a record with an equal or higher seq is stored")]
    Stale,
    /// A limit of [`StoreLimits`] is reached: too many records, provider keys, or entries under the
    /// key.
    #[error("the store is full")]
    Full,
    /// The key holds validated entries, and no validator vouches for this one.
    #[error("this key holds validated entries only")]
    Typed,
    /// The entry may only replace its publisher's validated entry under the key, and there is none.
    #[error("the entry may only replace its publisher's entry, and there is none")]
    NothingToReplace,
}

#[derive(Debug, Clone)]
struct Stored<T> {
    item: T,
    expires: Instant,
}

/// The entries under one provider key, one per publisher.
#[derive(Debug, Clone, Default)]
struct ProviderSlot {
    /// Whether the key holds validated entries (then it holds nothing else).
    typed: bool,
    entries: HashMap<NodeId, Stored<ProviderRecord>>,
}

/// Records and provider entries held by one node.
#[derive(Debug, Clone, Default)]
pub struct RecordStore {
    limits: StoreLimits,
    records: HashMap<Key, Stored<Record>>,
    providers: HashMap<Key, ProviderSlot>,
}

impl RecordStore {
    /// An empty store with these limits.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            records: HashMap::new(),
            providers: HashMap::new(),
        }
    }

    /// Stores a verified record unless an equal or newer one is live. An equal `seq` renews the
    /// expiry (that is what a republish is) but must carry the same signature.
    pub fn put(&mut self, record: Record, now: Instant) -> Result<(), StoreError> {
        let expires = now + record.ttl();
        self.put_until(record, now, expires)
    }

    /// [`RecordStore::put`] with an explicit expiry (a record reloaded from disk keeps the
    /// lifetime it had left, never more than its TTL).
    pub fn put_until(
        &mut self,
        record: Record,
        now: Instant,
        expires: Instant,
    ) -> Result<(), StoreError> {
        let expires = expires.min(now + record.ttl());
        // The store keeps its own expiry; the one a copy travelled with is the sender's.
        let record = record.with_expiry(None);
        match self.records.get_mut(record.key()) {
            Some(old) if old.expires > now => {
                if old.item.seq() > record.seq()
                    || (old.item.seq() == record.seq() && old.item != record)
                {
                    return Err(StoreError::Stale);
                }
                // The same copy again keeps the later of the two expiries: an older copy
                // handed on by a storer does not cut short a publisher's renewal.
                let expires = match old.item.seq() == record.seq() {
                    true => expires.max(old.expires),
                    false => expires,
                };
                *old = Stored {
                    item: record,
                    expires,
                };
            }
            Some(old) => {
                *old = Stored {
                    item: record,
                    expires,
                }
            }
            None => {
                if self.records.len() >= self.limits.max_records {
                    return Err(StoreError::Full);
                }
                self.records.insert(
                    *record.key(),
                    Stored {
                        item: record,
                        expires,
                    },
                );
            }
        }
        Ok(())
    }

    /// The live record under `key`, if any.
    pub fn get(&self, key: &Key, now: Instant) -> Option<&Record> {
        self.get_until(key, now).map(|(record, _)| record)
    }

    /// The live record under `key` and when it expires here.
    pub fn get_until(&self, key: &Key, now: Instant) -> Option<(&Record, Instant)> {
        self.records
            .get(key)
            .filter(|s| s.expires > now)
            .map(|s| (&s.item, s.expires))
    }

    /// Keys of the live records, in no particular order.
    pub fn record_keys(&self, now: Instant) -> impl Iterator<Item = &Key> {
        self.records
            .iter()
            .filter(move |(_, s)| s.expires > now)
            .map(|(key, _)| key)
    }

    /// Stores a verified provider entry, replacing the same publisher's older one. A validated
    /// entry types its key: untyped entries there are dropped, and refused from then on.
    pub fn add_provider(
        &mut self,
        provider: ProviderRecord,
        typing: Typing,
        now: Instant,
    ) -> Result<(), StoreError> {
        let expires = now + provider.ttl();
        self.add_provider_until(provider, typing, now, expires)
    }

    /// [`RecordStore::add_provider`] with an explicit expiry, capped at the entry's TTL.
    pub fn add_provider_until(
        &mut self,
        provider: ProviderRecord,
        typing: Typing,
        now: Instant,
        expires: Instant,
    ) -> Result<(), StoreError> {
        let publisher = provider.publisher_id();
        let expires = expires.min(now + provider.ttl());
        if !self.providers.contains_key(provider.key())
            && self.providers.len() >= self.limits.max_provider_keys
        {
            return Err(StoreError::Full);
        }
        if typing == Typing::Replacement {
            let holds = self
                .providers
                .get(provider.key())
                .is_some_and(|slot| slot.typed && slot.entries.contains_key(&publisher));
            if !holds {
                return Err(StoreError::NothingToReplace);
            }
        }
        let slot = self.providers.entry(*provider.key()).or_default();
        match (slot.typed, typing) {
            (true, Typing::Untyped) => return Err(StoreError::Typed),
            (false, Typing::Validated) => {
                slot.entries.clear();
                slot.typed = true;
            }
            _ => {}
        }
        let full = slot.entries.len() >= self.limits.max_providers_per_key;
        match slot.entries.get_mut(&publisher) {
            Some(old) if old.expires > now && old.item.seq() > provider.seq() => {
                Err(StoreError::Stale)
            }
            Some(old) => {
                *old = Stored {
                    item: provider,
                    expires,
                };
                Ok(())
            }
            None if full => Err(StoreError::Full),
            None => {
                slot.entries.insert(
                    publisher,
                    Stored {
                        item: provider,
                        expires,
                    },
                );
                Ok(())
            }
        }
    }

    /// Whether `key` holds validated entries (then it holds nothing else).
    pub fn provider_typing(&self, key: &Key) -> Typing {
        match self.providers.get(key) {
            Some(slot) if slot.typed => Typing::Validated,
            _ => Typing::Untyped,
        }
    }

    /// Up to `max` live entries under `key`, latest-expiring first.
    pub fn providers(&self, key: &Key, max: usize, now: Instant) -> Vec<ProviderRecord> {
        let Some(slot) = self.providers.get(key) else {
            return Vec::new();
        };
        let mut live: Vec<(&NodeId, &Stored<ProviderRecord>)> = slot
            .entries
            .iter()
            .filter(|(_, s)| s.expires > now)
            .collect();
        // Ties broken by publisher so the answer does not depend on hash order.
        live.sort_unstable_by(|a, b| b.1.expires.cmp(&a.1.expires).then(a.0.cmp(b.0)));
        live.into_iter()
            .take(max)
            .map(|(_, s)| s.item.clone())
            .collect()
    }

    /// Drops everything expired; returns how many items went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.records.len() + self.provider_count();
        self.records.retain(|_, s| s.expires > now);
        for slot in self.providers.values_mut() {
            slot.entries.retain(|_, s| s.expires > now);
        }
        // A key whose entries all expired is untyped again.
        self.providers.retain(|_, slot| !slot.entries.is_empty());
        before - (self.records.len() + self.provider_count())
    }

    /// Records held, live or expired but not yet removed by [`RecordStore::expire`].
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    /// Provider entries held, live or expired but not yet removed by [`RecordStore::expire`].
    pub fn provider_count(&self) -> usize {
        self.providers.values().map(|slot| slot.entries.len()).sum()
    }

    /// Live provider entries with their remaining lifetime, for persistence.
    pub fn export_providers(&self, now: Instant) -> Vec<(ProviderRecord, std::time::Duration)> {
        self.providers
            .values()
            .flat_map(|slot| slot.entries.values())
            .filter(|s| s.expires > now)
            .map(|s| (s.item.clone(), s.expires.saturating_duration_since(now)))
            .collect()
    }

    /// Live records with their remaining lifetime, for persistence.
    pub fn export_records(&self, now: Instant) -> Vec<(Record, std::time::Duration)> {
        self.records
            .values()
            .filter(|s| s.expires > now)
            .map(|s| (s.item.clone(), s.expires.saturating_duration_since(now)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pqnode_crypto::Identity;

    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_elapsed(Duration::from_secs(secs))
    }

    #[test]
    fn newer_seq_replaces_older_and_older_is_refused() {
        let me = Identity::from_seed(&[1; 32]).unwrap();
        let v1 = Record::sign(&me, b"n", b"one", 1, Duration::from_secs(100)).unwrap();
        let v2 = Record::sign(&me, b"n", b"two", 2, Duration::from_secs(100)).unwrap();
        let mut store = RecordStore::default();
        store.put(v2.clone(), at(0)).unwrap();
        assert_eq!(store.put(v1.clone(), at(1)), Err(StoreError::Stale));
        assert_eq!(
            store.get(v1.key(), at(1)).map(Record::value),
            Some(&b"two"[..])
        );
        // Same seq, same bytes: a republish that renews the expiry.
        store.put(v2.clone(), at(50)).unwrap();
        assert!(store.get(v2.key(), at(149)).is_some());
        assert!(store.get(v2.key(), at(150)).is_none());
        assert_eq!(store.expire(at(150)), 1);
        assert_eq!(store.record_count(), 0);
        // Once expired, an older record may come back.
        store.put(v1, at(151)).unwrap();
    }

    #[test]
    fn providers_are_per_publisher_and_capped() {
        let topic = NodeId::from_bytes([7; 20]);
        let mut store = RecordStore::new(StoreLimits {
            max_providers_per_key: 2,
            ..StoreLimits::default()
        });
        let ids: Vec<Identity> = (0..3)
            .map(|i| Identity::from_seed(&[i; 32]).unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let p = ProviderRecord::sign(id, topic, b"x", 1, Duration::from_secs(10 + i as u64))
                .unwrap();
            let result = store.add_provider(p, Typing::Untyped, at(0));
            assert_eq!(result.is_ok(), i < 2, "entry {i}");
        }
        assert_eq!(store.providers(&topic, 10, at(0)).len(), 2);
        assert_eq!(store.providers(&topic, 10, at(10)).len(), 1);
        assert_eq!(store.expire(at(11)), 2);
        assert!(store.providers(&topic, 10, at(11)).is_empty());
    }

    #[test]
    fn a_validated_entry_types_its_key() {
        let key = NodeId::from_bytes([8; 20]);
        let entry = |seed: u8| {
            let id = Identity::from_seed(&[seed; 32]).unwrap();
            ProviderRecord::sign(&id, key, b"v", 1, Duration::from_secs(10)).unwrap()
        };
        let mut store = RecordStore::default();
        store
            .add_provider(entry(1), Typing::Untyped, at(0))
            .unwrap();
        store
            .add_provider(entry(2), Typing::Untyped, at(0))
            .unwrap();
        // The first validated entry drops the unprovable ones...
        let validated = entry(3);
        store
            .add_provider(validated.clone(), Typing::Validated, at(0))
            .unwrap();
        assert_eq!(store.providers(&key, 10, at(0)), vec![validated]);
        // ...and keeps them out.
        assert_eq!(
            store.add_provider(entry(4), Typing::Untyped, at(1)),
            Err(StoreError::Typed)
        );
        store
            .add_provider(entry(5), Typing::Validated, at(1))
            .unwrap();
        assert_eq!(store.providers(&key, 10, at(1)).len(), 2);
        // Once every entry expired, the key is open again.
        store.expire(at(20));
        store
            .add_provider(entry(4), Typing::Untyped, at(20))
            .unwrap();
    }

    #[test]
    fn a_replacement_only_takes_the_place_of_its_publishers_entry() {
        let key = NodeId::from_bytes([6; 20]);
        let entry = |seed: u8, seq: u64| {
            let id = Identity::from_seed(&[seed; 32]).unwrap();
            ProviderRecord::sign(&id, key, b"v", seq, Duration::from_secs(10)).unwrap()
        };
        let mut store = RecordStore::default();
        // Nothing to replace: refused, however many publishers try.
        for seed in 1..4 {
            assert_eq!(
                store.add_provider(entry(seed, 1), Typing::Replacement, at(0)),
                Err(StoreError::NothingToReplace)
            );
        }
        store
            .add_provider(entry(1, 1), Typing::Validated, at(0))
            .unwrap();
        store
            .add_provider(entry(1, 2), Typing::Replacement, at(1))
            .unwrap();
        assert_eq!(store.providers(&key, 10, at(1))[0].seq(), 2);
        assert_eq!(store.provider_count(), 1);
    }
}
