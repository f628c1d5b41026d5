//! The node's periodic work: bucket refresh, liveness pings, republishing, and admitting
//! strangers that contacted us.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngExt;

use super::query::QueryKind;
use super::{Node, Published, Purpose};
use crate::contact::Contact;
use crate::distance::random_id_in_bucket;
use crate::message::Request;
use crate::record::Key;
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
