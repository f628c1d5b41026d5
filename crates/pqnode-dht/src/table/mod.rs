//! The routing table: 160 k-buckets keyed by XOR distance from our own id.
//!
//! Only nodes that answered one of our requests enter it (see [`RoutingTable::record_success`]);
//! contacts merely mentioned in responses never do. A full bucket keeps newcomers in a
//! replacement cache and swaps one in as soon as an entry turns bad. At most
//! [`TableConfig::max_per_subnet`] entries of a bucket may share an IPv4 /24 or IPv6 /48, which
//! makes filling a bucket with one operator's nodes (a Sybil attack) cost many networks.

mod bucket;
mod entry;

use std::collections::BTreeMap;
use std::time::Duration;

use pqnode_crypto::NodeId;

use crate::contact::{Contact, subnet_of};
use crate::distance::Distance;
use crate::time::Instant;
use bucket::Bucket;
use entry::Entry;
pub use entry::NodeState;

/// Routing-table parameters (a subset of [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct TableConfig {
    /// Entries per bucket (Kademlia's K).
    pub k: usize,
    /// Answerers kept per full bucket, waiting for a slot.
    pub replacement_cache: usize,
    /// An entry quiet for this long becomes questionable (BEP 5: 15 minutes).
    pub questionable_after: Duration,
    /// Consecutive failures that make an entry bad.
    pub max_failures: u8,
    /// Most entries of one bucket from one IPv4 /24 or IPv6 /48; `None` for no limit.
    pub max_per_subnet: Option<usize>,
    /// Loopback addresses are exempt from the subnet limit (local test networks).
    pub subnet_limit_exempts_loopback: bool,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            k: 20,
            replacement_cache: 8,
            questionable_after: Duration::from_secs(15 * 60),
            max_failures: 2,
            max_per_subnet: Some(2),
            subnet_limit_exempts_loopback: true,
        }
    }
}

/// What [`RoutingTable::record_success`] did with an answering node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// It was already an entry; its liveness was renewed.
    Updated,
    /// It took a free slot.
    Inserted,
    /// It took the slot of a bad entry, which was dropped.
    ReplacedBad(NodeId),
    /// The bucket is full of live entries: it waits in the replacement cache.
    Cached,
    /// Its subnet already has the maximum number of entries in that bucket.
    SubnetFull,
    /// It is us.
    Local,
}

/// What [`RoutingTable::record_failure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not an entry.
    Unknown,
    /// Counted; the entry stays.
    Counted,
    /// The entry turned bad and a replacement took its place.
    Replaced {
        /// The replacement, promoted from the bucket's replacement cache.
        by: NodeId,
    },
}

/// A view of one entry, for statistics.
#[derive(Debug, Clone)]
pub struct EntryView {
    /// The node and its address.
    pub contact: Contact,
    /// Its bucket: `i` holds the nodes at XOR distance `[2^i, 2^(i+1))` from us.
    pub bucket: u8,
    /// Its liveness at the time of the view.
    pub state: NodeState,
    /// When it last answered us or sent us a request.
    pub last_seen: Instant,
    /// Smoothed round-trip time.
    pub rtt: Option<Duration>,
}

/// A view of one non-empty bucket, for statistics.
#[derive(Debug, Clone)]
pub struct BucketView {
    /// Bucket number: `i` holds the nodes at XOR distance `[2^i, 2^(i+1))` from us.
    pub index: u8,
    /// Entries in the bucket (at most K).
    pub entries: usize,
    /// Nodes waiting in its replacement cache for a slot.
    pub replacements: usize,
    /// When a lookup last refreshed the bucket, or when it was created.
    pub last_refresh: Instant,
}

/// The Kademlia routing table of one node.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    local: NodeId,
    config: TableConfig,
    /// Only buckets that ever held something exist: a node in a network of N uses about
    /// log2(N / K) + a few of the 160.
    buckets: BTreeMap<u8, Bucket>,
    created: Instant,
}

impl RoutingTable {
    /// An empty table for the node `local`.
    pub fn new(local: NodeId, config: TableConfig, now: Instant) -> Self {
        Self {
            local,
            config,
            buckets: BTreeMap::new(),
            created: now,
        }
    }

    /// Our own id, the origin of every distance in the table.
    pub fn local_id(&self) -> &NodeId {
        &self.local
    }

    /// The parameters the table was built with.
    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// Number of entries (good, questionable and bad).
    pub fn len(&self) -> usize {
        self.buckets.values().map(|b| b.entries.len()).sum()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.buckets.values().all(|b| b.entries.is_empty())
    }

    /// Buckets holding at least one entry.
    pub fn buckets_used(&self) -> usize {
        self.buckets
            .values()
            .filter(|b| !b.entries.is_empty())
            .count()
    }

    /// Whether `id` is an entry (not merely cached as a replacement).
    pub fn contains(&self, id: &NodeId) -> bool {
        self.bucket_of(id)
            .and_then(|i| self.buckets.get(&i))
            .is_some_and(|b| b.position(id).is_some())
    }

    /// The liveness of entry `id`, `None` if it is not an entry.
    pub fn state_of(&self, id: &NodeId, now: Instant) -> Option<NodeState> {
        let bucket = self.buckets.get(&self.bucket_of(id)?)?;
        let entry = bucket.entries.get(bucket.position(id)?)?;
        Some(self.state(entry, now))
    }

    /// The bucket `id` belongs in, `None` for our own id.
    pub fn bucket_of(&self, id: &NodeId) -> Option<u8> {
        Distance::between(&self.local, id).bucket_index()
    }

    /// A node answered one of our requests: renew it, insert it, or cache it.
    pub fn record_success(
        &mut self,
        contact: Contact,
        now: Instant,
        rtt: Option<Duration>,
    ) -> Insert {
        let Some(index) = self.bucket_of(&contact.id) else {
            return Insert::Local;
        };
        let config = self.config.clone();
        let bucket = self
            .buckets
            .entry(index)
            .or_insert_with(|| Bucket::new(now));
        if let Some(i) = bucket.position(&contact.id) {
            if let Some(entry) = bucket.entries.get_mut(i) {
                entry.answered(contact, now, rtt);
            }
            return Insert::Updated;
        }
        let entry = Entry::new(contact, now, rtt);
        if !subnet_has_room(&config, bucket, &contact, None) {
            return Insert::SubnetFull;
        }
        if bucket.entries.len() < config.k {
            if let Some(i) = bucket.replacement_position(&contact.id) {
                bucket.replacements.remove(i);
            }
            bucket.entries.push(entry);
            return Insert::Inserted;
        }
        let bad = bucket.entries.iter().position(|e| {
            e.state(now, config.questionable_after, config.max_failures) == NodeState::Bad
        });
        if let Some(i) = bad
            && let Some(slot) = bucket.entries.get_mut(i)
        {
            let old = std::mem::replace(slot, entry);
            return Insert::ReplacedBad(old.contact.id);
        }
        bucket.cache(entry, config.replacement_cache);
        Insert::Cached
    }

    /// A node sent us a request from `from.addr`. The transport authenticated its id, so an
    /// entry or cached replacement with that id takes the address (the node moved, e.g.
    /// restarted on a new port). An entry that has not failed also counts as recently seen
    /// (BEP 5); one that has failed stays as it is until it answers us. Strangers are not
    /// inserted: they must first answer a request of ours.
    pub fn record_inbound(&mut self, from: Contact, now: Instant) {
        let Some(bucket) = self
            .bucket_of(&from.id)
            .and_then(|i| self.buckets.get_mut(&i))
        else {
            return;
        };
        if let Some(entry) = bucket
            .position(&from.id)
            .and_then(|i| bucket.entries.get_mut(i))
        {
            entry.contact.addr = from.addr;
            if entry.failures == 0 {
                entry.last_seen = now;
            }
        } else if let Some(cached) = bucket
            .replacement_position(&from.id)
            .and_then(|i| bucket.replacements.get_mut(i))
        {
            cached.contact.addr = from.addr;
        }
    }

    /// A request to `id` timed out or failed.
    pub fn record_failure(&mut self, id: &NodeId, now: Instant) -> Failure {
        let config = self.config.clone();
        let Some(bucket) = self.bucket_of(id).and_then(|i| self.buckets.get_mut(&i)) else {
            return Failure::Unknown;
        };
        if let Some(i) = bucket.replacement_position(id) {
            bucket.replacements.remove(i);
        }
        let Some(i) = bucket.position(id) else {
            return Failure::Unknown;
        };
        let Some(entry) = bucket.entries.get_mut(i) else {
            return Failure::Unknown;
        };
        entry.failures = entry.failures.saturating_add(1);
        if entry.state(now, config.questionable_after, config.max_failures) != NodeState::Bad {
            return Failure::Counted;
        }
        // Promote the most recent answerer that fits the subnet limit.
        while let Some(candidate) = bucket.replacements.pop_back() {
            if subnet_has_room(&config, bucket, &candidate.contact, Some(i)) {
                let by = candidate.contact.id;
                if let Some(slot) = bucket.entries.get_mut(i) {
                    *slot = candidate;
                }
                return Failure::Replaced { by };
            }
        }
        Failure::Counted
    }

    /// Takes `id` out of the table (entry or cached replacement), by an operator's decision;
    /// the most recent cached answerer that fits the subnet limit takes its place. Returns
    /// whether it was there. It may come back later by answering a request, like any node.
    pub fn remove(&mut self, id: &NodeId) -> bool {
        let config = self.config.clone();
        let Some(bucket) = self.bucket_of(id).and_then(|i| self.buckets.get_mut(&i)) else {
            return false;
        };
        let cached = bucket
            .replacement_position(id)
            .and_then(|i| bucket.replacements.remove(i))
            .is_some();
        let Some(i) = bucket.position(id) else {
            return cached;
        };
        bucket.entries.remove(i);
        let fits = bucket
            .replacements
            .iter()
            .rposition(|c| subnet_has_room(&config, bucket, &c.contact, None));
        if let Some(candidate) = fits.and_then(|j| bucket.replacements.remove(j)) {
            bucket.entries.push(candidate);
        }
        true
    }

    /// Whether an answer from `contact` would put it into the table proper (not only the cache).
    pub fn would_insert(&self, contact: &Contact, now: Instant) -> bool {
        let Some(index) = self.bucket_of(&contact.id) else {
            return false;
        };
        let Some(bucket) = self.buckets.get(&index) else {
            return true;
        };
        bucket.position(&contact.id).is_none()
            && subnet_has_room(&self.config, bucket, contact, None)
            && (bucket.entries.len() < self.config.k
                || bucket
                    .entries
                    .iter()
                    .any(|e| self.state(e, now) == NodeState::Bad))
    }

    /// Up to `count` non-bad entries closest to `target`, closest first.
    pub fn closest(&self, target: &NodeId, count: usize, now: Instant) -> Vec<Contact> {
        self.closest_where(target, count, |e| self.state(e, now) != NodeState::Bad)
    }

    /// Up to `count` entries closest to `target` that have not failed since they last
    /// answered: what a node tells others (a contact that just failed us is not passed on).
    pub fn closest_reachable(&self, target: &NodeId, count: usize, now: Instant) -> Vec<Contact> {
        self.closest_where(target, count, |e| {
            e.failures == 0 && self.state(e, now) != NodeState::Bad
        })
    }

    fn closest_where(
        &self,
        target: &NodeId,
        count: usize,
        keep: impl Fn(&Entry) -> bool,
    ) -> Vec<Contact> {
        let mut found: Vec<(Distance, Contact)> = self
            .buckets
            .values()
            .flat_map(|b| b.entries.iter())
            .filter(|e| keep(e))
            .map(|e| (Distance::between(target, &e.contact.id), e.contact))
            .collect();
        if found.len() > count && count > 0 {
            found.select_nth_unstable_by_key(count - 1, |(d, _)| *d);
            found.truncate(count);
        }
        found.sort_unstable_by_key(|(d, _)| *d);
        found.truncate(count);
        found.into_iter().map(|(_, c)| c).collect()
    }

    /// Entries to ping: questionable ones (quiet for a while, or failed once).
    pub fn questionable(&self, now: Instant) -> Vec<Contact> {
        self.buckets
            .values()
            .flat_map(|b| b.entries.iter())
            .filter(|e| self.state(e, now) == NodeState::Questionable)
            .map(|e| e.contact)
            .collect()
    }

    /// Buckets due for a refresh, least recently refreshed first. Buckets closer than our
    /// nearest entry are skipped: in a network of N nodes they are empty (a lookup of our own id,
    /// which refreshes the nearest bucket, covers them).
    pub fn stale_buckets(&self, now: Instant, interval: Duration) -> Vec<u8> {
        let Some(lowest) = self
            .buckets
            .iter()
            .find(|(_, b)| !b.entries.is_empty())
            .map(|(i, _)| *i)
        else {
            return Vec::new();
        };
        let mut stale: Vec<(Instant, u8)> = (lowest..=159)
            .map(|i| {
                let last = self
                    .buckets
                    .get(&i)
                    .map_or(self.created, |b| b.last_refresh);
                (last, i)
            })
            .filter(|(last, _)| now.saturating_duration_since(*last) >= interval)
            .collect();
        stale.sort_unstable();
        stale.into_iter().map(|(_, i)| i).collect()
    }

    /// A lookup for an id in bucket `index` completed.
    pub fn mark_refreshed(&mut self, index: u8, now: Instant) {
        self.buckets
            .entry(index)
            .or_insert_with(|| Bucket::new(now))
            .last_refresh = now;
    }

    /// How many entries there are, and how many of them are bad, without copying them.
    pub fn bad_count(&self, now: Instant) -> (usize, usize) {
        self.buckets
            .values()
            .flat_map(|b| b.entries.iter())
            .fold((0, 0), |(total, bad), e| {
                (
                    total + 1,
                    bad + usize::from(self.state(e, now) == NodeState::Bad),
                )
            })
    }

    /// Every entry, bucket by bucket from the nearest, for statistics.
    pub fn entries(&self, now: Instant) -> Vec<EntryView> {
        self.buckets
            .iter()
            .flat_map(|(index, b)| {
                b.entries.iter().map(move |e| EntryView {
                    contact: e.contact,
                    bucket: *index,
                    state: self.state(e, now),
                    last_seen: e.last_seen,
                    rtt: e.rtt,
                })
            })
            .collect()
    }

    /// The buckets holding entries or replacements, nearest first, for statistics.
    pub fn bucket_views(&self) -> Vec<BucketView> {
        self.buckets
            .iter()
            .filter(|(_, b)| !b.entries.is_empty() || !b.replacements.is_empty())
            .map(|(index, b)| BucketView {
                index: *index,
                entries: b.entries.len(),
                replacements: b.replacements.len(),
                last_refresh: b.last_refresh,
            })
            .collect()
    }

    /// Every entry and cached replacement, for persistence. Entries come first.
    pub fn contacts(&self) -> Vec<Contact> {
        let entries = self.buckets.values().flat_map(|b| b.entries.iter());
        let cached = self.buckets.values().flat_map(|b| b.replacements.iter());
        entries.chain(cached).map(|e| e.contact).collect()
    }

    /// Reloads contacts saved by an earlier run. They answered then, but may be gone now, so
    /// they enter as questionable (one failure counted) and are pinged by the next ping tick.
    pub fn restore(&mut self, contacts: impl IntoIterator<Item = Contact>, now: Instant) -> usize {
        let mut restored = 0;
        for contact in contacts {
            if matches!(self.record_success(contact, now, None), Insert::Inserted) {
                let _ = self.record_failure(&contact.id, now);
                restored += 1;
            }
        }
        restored
    }

    fn state(&self, entry: &Entry, now: Instant) -> NodeState {
        entry.state(
            now,
            self.config.questionable_after,
            self.config.max_failures,
        )
    }
}

/// Whether `contact` may join `bucket` under the subnet limit, not counting entry `replacing`.
fn subnet_has_room(
    config: &TableConfig,
    bucket: &Bucket,
    contact: &Contact,
    replacing: Option<usize>,
) -> bool {
    let Some(limit) = config.max_per_subnet else {
        return true;
    };
    let ip = contact.addr.ip();
    if config.subnet_limit_exempts_loopback && ip.is_loopback() {
        return true;
    }
    let subnet = subnet_of(ip);
    let same = bucket
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| Some(*i) != replacing && subnet_of(e.contact.addr.ip()) == subnet)
        .count();
    same < limit
}

#[cfg(test)]
mod tests;
