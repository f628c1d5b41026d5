//! The node's periodic work: bucket refresh, liveness pings, republishing, and admitting
//! strangers that contacted us.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngExt;

use super::query::QueryKind;
use super::{Node, Published, Purpose};
use crate::contact::Contact;
use crate::distance::Distance;
use crate::distance::random_id_in_bucket;
use crate::message::Request;
use crate::record::{Key, Record};
use crate::table::NodeState;
use crate::time::Instant;

impl Node {
    /// Pings `from`, which just wrote to us or connected, if it would get a slot in the table,
    /// or if it is an entry that failed us since it last answered: an entry that went bad (a
    /// partition, say) is asked by nobody else (lookups and pings skip it), so without this
    /// it would stay bad, and out of every lookup, after the node is back.
    pub(super) fn maybe_verify_inbound(&mut self, now: Instant, from: Contact) {
        let failing = self
            .table
            .state_of(&from.id, now)
            .is_some_and(|state| state != NodeState::Good);
        if !self.config.verify_inbound
            || self.verifying >= self.config.max_inbound_verifications
            || self.pinging.contains(&from.id)
            || !(failing || self.table.would_insert(&from, now))
        {
            return;
        }
        self.pinging.insert(from.id);
        self.verifying += 1;
        self.send(now, from.into(), Request::Ping, Purpose::VerifyInbound);
    }

    pub(super) fn refresh(&mut self, now: Instant) {
        // Fewer than K entries means we never properly joined, or joined an island (a seed that
        // itself knew nobody): go back to the seeds (the "empty routing table" problem).
        if self.table.len() < self.config.table.k && !self.seeds.is_empty() {
            // This is the retry, if one was due later.
            self.next_seed_retry = None;
            self.retry_seeds(now);
        }
        if self.table.is_empty() {
            return;
        }
        let stale = self.table.stale_buckets(now, self.config.refresh_interval);
        for bucket in stale.into_iter().take(self.config.max_refreshes_per_tick) {
            let target = random_id_in_bucket(&self.local, bucket, &mut self.rng);
            // Marked now, so a lookup that cannot finish before the next tick is not doubled.
            self.table.mark_refreshed(bucket, now);
            self.start_query(now, target, QueryKind::Maintenance, false);
        }
    }

    /// Bootstraps through the seeds again, without an event.
    pub(super) fn retry_seeds(&mut self, now: Instant) {
        let seeds = self.seeds.clone();
        let id = self.start_bootstrap(now, seeds, false);
        if let Some(query) = self.queries.get_mut(&id) {
            query.through_seeds = true;
        }
    }

    /// A bootstrap through the seeds ended. If no seed answered and the table is short of
    /// K, the seeds are tried again after a jittered delay that starts at
    /// [`crate::Config::bootstrap_retry`] and doubles each time up to the refresh interval (a
    /// seed that comes up after us is found within seconds, not at the next refresh); once a
    /// seed answered, the delay starts over.
    pub(super) fn after_seed_bootstrap(&mut self, now: Instant, seed_answered: bool) {
        if seed_answered || self.table.len() >= self.config.table.k || self.seeds.is_empty() {
            self.seed_retry_delay = Duration::ZERO;
            return;
        }
        let max = self.config.refresh_interval;
        let delay = match self.seed_retry_delay {
            Duration::ZERO => self.config.bootstrap_retry,
            previous => previous * 2,
        }
        .min(max);
        self.seed_retry_delay = delay;
        let at = now + self.jittered(delay);
        self.next_seed_retry = Some(self.next_seed_retry.map_or(at, |t| t.min(at)));
    }

    pub(super) fn ping_questionable(&mut self, now: Instant) {
        for contact in self.table.questionable(now) {
            if self.pinging.insert(contact.id) {
                self.send(now, contact.into(), Request::Ping, Purpose::Liveness);
            }
        }
    }

    pub(super) fn republish(&mut self, now: Instant) {
        let interval = self.config.republish_interval;
        for record in take_due(&mut self.published, now, interval) {
            let key = *record.key();
            let _ = self.store.put(record.clone(), now);
            self.counters.republishes += 1;
            let record = self.outgoing(record, now);
            self.start_query(now, key, QueryKind::PutRecord { record }, false);
        }
        for provider in take_due(&mut self.published_providers, now, interval) {
            let key = *provider.key();
            // Classified when it was first published; validators do not change at run time.
            if let Ok(typing) = self.config.validators.classify(&provider) {
                let _ = self.store.add_provider(provider.clone(), typing, now);
            }
            self.counters.republishes += 1;
            self.start_query(now, key, QueryKind::AddProvider { provider }, false);
        }
    }

    /// Unix milliseconds at `at`, if the driver told the node the time.
    fn unix_ms(&self, at: Instant) -> Option<u64> {
        let elapsed = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.unix_origin_ms
            .map(|origin| origin.saturating_add(elapsed))
    }

    /// The local instant of unix time `ms` (the origin for a time before it).
    fn local_instant(&self, ms: u64) -> Option<Instant> {
        let origin = self.unix_origin_ms?;
        Some(Instant::from_elapsed(Duration::from_millis(
            ms.saturating_sub(origin),
        )))
    }

    /// Our live copy of the record under `key` as it travels: with the expiry it has here.
    pub(super) fn held_copy(&self, key: &Key, now: Instant) -> Option<Record> {
        let (record, expires) = self.store.get_until(key, now)?;
        Some(record.clone().with_expiry(self.unix_ms(expires)))
    }

    /// Our own record as it goes out now: with the expiry its TTL gives it from now.
    pub(super) fn outgoing(&self, record: Record, now: Instant) -> Record {
        let expires = self.unix_ms(now + record.ttl());
        record.with_expiry(expires)
    }

    /// Keeps a verified copy someone sent us until the earlier of its sender's expiry and
    /// `now + ttl`, and puts off our own turn to hand it on.
    pub(super) fn keep_copy(&mut self, now: Instant, record: Record) -> Result<(), String> {
        let until = record
            .expires_unix_ms()
            .and_then(|ms| self.local_instant(ms))
            .unwrap_or(now + record.ttl());
        if until <= now {
            return Err("the record has expired".to_string());
        }
        let key = *record.key();
        let ttl = record.ttl();
        self.store
            .put_until(record, now, until)
            .map_err(|e| e.to_string())?;
        if let Some(interval) = self.config.replicate_interval
            && !self.published.contains_key(&key)
        {
            let next = now + self.jittered(interval.min(ttl / 2));
            self.replicas.insert(key, next);
        }
        Ok(())
    }

    /// Storer republish: every record held for others whose turn has come is stored again
    /// on the K nodes now closest to its key, with the expiry it has here.
    pub(super) fn replicate(&mut self, now: Instant) {
        let Some(interval) = self.config.replicate_interval else {
            return;
        };
        let due: Vec<Key> = self
            .replicas
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(key, _)| *key)
            .take(self.config.max_replications_per_tick)
            .collect();
        for key in due {
            let held = self.held_copy(&key, now);
            let Some(record) = held.filter(|_| !self.published.contains_key(&key)) else {
                self.replicas.remove(&key);
                continue;
            };
            let next = now + self.jittered(interval.min(record.ttl() / 2));
            self.replicas.insert(key, next);
            self.counters.replications += 1;
            self.start_query(now, key, QueryKind::PutRecord { record }, false);
        }
    }

    /// Store on join: `contact` just entered our table; the records we hold whose key it is
    /// closer to than we are are stored on it (at most [`crate::Config::max_join_stores`]),
    /// by us only if no other contact we know is closer to the key than we are. Entering our
    /// table is not joining the network: without that rule every holder of a key would send
    /// the record to every close node it met, most of which hold it already; with it, the
    /// holder closest to the key is the one that sends (the others wait for the hourly turn).
    pub(super) fn hand_over(&mut self, now: Instant, contact: Contact) {
        if self.config.replicate_interval.is_none() {
            return;
        }
        let mut closer: Vec<(Distance, Key)> = self
            .store
            .record_keys(now)
            .filter_map(|key| {
                let ours = Distance::between(key, &self.local);
                let theirs = Distance::between(key, &contact.id);
                (theirs < ours).then_some((theirs, *key))
            })
            .collect();
        closer.retain(|(_, key)| {
            let ours = Distance::between(key, &self.local);
            self.table
                .closest(key, 2, now)
                .iter()
                .filter(|c| c.id != contact.id)
                .all(|c| Distance::between(key, &c.id) > ours)
        });
        // The keys it is closest to first (and an order that does not depend on hashing).
        closer.sort_unstable();
        closer.truncate(self.config.max_join_stores);
        for (_, key) in closer {
            let Some(record) = self.held_copy(&key, now) else {
                continue;
            };
            self.counters.replications += 1;
            self.send(
                now,
                contact.into(),
                Request::Store { record },
                Purpose::Repair,
            );
        }
    }

    pub(super) fn jittered(&mut self, interval: Duration) -> Duration {
        let jitter = self.config.jitter.clamp(0.0, 0.9);
        let factor = 1.0 + jitter * (2.0 * self.rng.random::<f64>() - 1.0);
        interval.mul_f64(factor)
    }
}

/// The items whose republish time has come, with their next time set.
fn take_due<T: Clone>(
    published: &mut BTreeMap<Key, Published<T>>,
    now: Instant,
    interval: Duration,
) -> Vec<T> {
    published
        .values_mut()
        .filter(|p| p.next_republish <= now)
        .map(|p| {
            p.next_republish = now + interval;
            p.item.clone()
        })
        .collect()
}
