//! TTL caches that count their hits and misses, so stats can report a real hit rate.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// A concurrent cache (moka, TinyLFU admission, LRU eviction) whose entries expire after a
/// fixed time to live. Cloning gives another handle to the same cache.
pub struct TtlCache<K, V> {
    shared: Arc<Shared<K, V>>,
}

struct Shared<K, V> {
    name: String,
    entries: moka::sync::Cache<K, V>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K, V> Clone for TtlCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, V> std::fmt::Debug for TtlCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Entries may hold anything; only the figures are shown.
        f.debug_struct("TtlCache")
            .field("name", &self.shared.name)
            .field("hits", &self.shared.hits.load(Ordering::Relaxed))
            .field("misses", &self.shared.misses.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<K, V> TtlCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache holding at most `max_entries` entries, each for at most `ttl`.
    pub fn new(name: impl Into<String>, max_entries: u64, ttl: Duration) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(ttl)
            .build();
        Self::from_moka(name.into(), entries)
    }

    /// A cache bounded by the total weight `weigher` assigns its entries (for example bytes),
    /// each entry kept for at most `ttl`.
    pub fn weighted(
        name: impl Into<String>,
        max_weight: u64,
        ttl: Duration,
        weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static,
    ) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_weight)
            .weigher(weigher)
            .time_to_live(ttl)
            .build();
        Self::from_moka(name.into(), entries)
    }

    fn from_moka(name: String, entries: moka::sync::Cache<K, V>) -> Self {
        Self {
            shared: Arc::new(Shared {
                name,
                entries,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        }
    }

    /// The cached value, counting a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let found = self.shared.entries.get(key);
        let counter = if found.is_some() {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether `key` is cached; not counted as a lookup.
    pub fn contains(&self, key: &K) -> bool {
        self.shared.entries.contains_key(key)
    }

    /// Caches `value` under `key`, replacing what was there; its time to live starts now.
    pub fn insert(&self, key: K, value: V) {
        self.shared.entries.insert(key, value);
    }

    /// Forgets `key`, so the next lookup misses.
    pub fn invalidate(&self, key: &K) {
        self.shared.entries.invalidate(key);
    }

    /// Forgets every entry; the counters are kept.
    pub fn invalidate_all(&self) {
        self.shared.entries.invalidate_all();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> CacheStats {
        self.shared.report()
    }

    /// A weak, type-erased view of the counters: a registry must not keep a dropped cache alive.
    pub(crate) fn reporter(&self) -> std::sync::Weak<dyn CacheReport> {
        let shared: Arc<dyn CacheReport> = self.shared.clone();
        Arc::downgrade(&shared)
    }
}

/// Counters of one cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// The name it was created with, which tells caches apart in stats.
    pub name: String,
    /// Entries held (moka's count, which may lag the latest inserts by a moment).
    pub entries: u64,
    /// Lookups that found an entry, since the cache was created.
    pub hits: u64,
    /// Lookups that found none, since the cache was created.
    pub misses: u64,
    /// hits / (hits + misses); `None` before the first lookup.
    pub hit_rate: Option<f64>,
}

pub(crate) trait CacheReport: Send + Sync {
    fn report(&self) -> CacheStats;
}

impl<K, V> CacheReport for Shared<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn report(&self) -> CacheStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let lookups = hits + misses;
        CacheStats {
            name: self.name.clone(),
            entries: self.entries.entry_count(),
            hits,
            misses,
            hit_rate: (lookups > 0).then(|| hits as f64 / lookups as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hits_and_misses() {
        let cache = TtlCache::new("peers", 100, Duration::from_secs(60));
        assert_eq!(cache.stats().hit_rate, None);

        assert_eq!(cache.get(&1u32), None);
        cache.insert(1u32, "one");
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.get(&1), Some("one"));
        assert_eq!(cache.get(&2), None);

        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (2, 2));
        assert_eq!(stats.hit_rate, Some(0.5));
    }

    #[test]
    fn invalidated_entries_miss() {
        let cache = TtlCache::new("peers", 100, Duration::from_secs(60));
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.invalidate(&"a");
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.get(&"b"), Some(2));
        cache.invalidate_all();
        assert_eq!(cache.get(&"b"), None);
    }

    #[test]
    fn entries_expire_after_their_ttl() {
        let cache = TtlCache::new("short", 100, Duration::from_millis(1));
        cache.insert(1u8, 1u8);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn weighted_cache_evicts_past_its_budget() {
        let cache = TtlCache::weighted(
            "bytes",
            1_000,
            Duration::from_secs(60),
            |_: &u32, v: &Vec<u8>| u32::try_from(v.len()).unwrap_or(u32::MAX),
        );
        for key in 0..100u32 {
            cache.insert(key, vec![0; 100]);
        }
        cache.shared.entries.run_pending_tasks();
        assert!(cache.stats().entries <= 10, "{:?}", cache.stats());
    }
}
