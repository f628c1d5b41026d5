//! What the node shows the outside: statistics, health, and its state saved for a restart.

use std::time::Duration;

use pqnode_health::Health;

use super::Node;
use crate::stats::{BucketInfo, Counters, DhtStats, NodeInfo};
use crate::table::NodeState;
use crate::time::Instant;

impl Node {
    /// Routing-table entries, for `/api/dht/nodes`.
    pub fn nodes(&self, now: Instant) -> Vec<NodeInfo> {
        self.table
            .entries(now)
            .into_iter()
            .map(|e| NodeInfo {
                id: e.contact.id,
                addr: e.contact.addr,
                bucket: e.bucket,
                state: e.state,
                last_seen_ms_ago: millis(now.saturating_duration_since(e.last_seen)),
                rtt_ms: e.rtt.map(millis),
            })
            .collect()
    }

    /// The node's statistics at `now`: routing table, store, running queries and counters.
    pub fn stats(&self, now: Instant) -> DhtStats {
        let entries = self.table.entries(now);
        let count = |s: NodeState| entries.iter().filter(|e| e.state == s).count();
        let c = &self.counters;
        DhtStats {
            total_nodes: entries.len(),
            buckets_used: self.table.buckets_used(),
            bootstrap_nodes: self.seeds.len(),
            good_nodes: count(NodeState::Good),
            questionable_nodes: count(NodeState::Questionable),
            bad_nodes: count(NodeState::Bad),
            records_stored: self.store.record_count(),
            providers_stored: self.store.provider_count(),
            records_published: self.published.len() + self.published_providers.len(),
            queries_running: self.queries.len(),
            requests_in_flight: self.pending.len(),
            mean_lookup_rounds: if c.lookups_finished == 0 {
                0.0
            } else {
                c.lookup_rounds as f64 / c.lookups_finished as f64
            },
            buckets: self
                .table
                .bucket_views()
                .into_iter()
                .map(|b| BucketInfo {
                    index: b.index,
                    entries: b.entries,
                    replacements: b.replacements,
                    last_refresh_ms_ago: millis(now.saturating_duration_since(b.last_refresh)),
                })
                .collect(),
            counters: c.clone(),
        }
    }

    /// The monotonic counters since the node started.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Warns while the routing table is empty (the node can reach no one).
    /// `pass` while most contacts answer (or with no contacts by choice, see
    /// [`Config::standalone`](crate::Config::standalone)); `warn`, with the reason, when the
    /// table is empty or most of its contacts are failing.
    pub fn health(&self, now: Instant) -> Health {
        let (total, bad) = self.table.bad_count(now);
        if total == 0 {
            return match self.config.standalone {
                true => Health::pass(),
                false => Health::warn("the routing table is empty: no other node is known"),
            };
        }
        if bad * 2 > total {
            return Health::warn(format!(
                "{bad} of {total} contacts are failing: lookups may be slow or fail"
            ));
        }
        Health::pass()
    }

    /// The routing table's contacts, encoded for the node's store.
    pub fn export_table(&self) -> Vec<u8> {
        crate::codec::encode_table(&self.table.contacts())
    }

    /// Reloads a table saved by [`Node::export_table`]; entries start questionable and are
    /// pinged on the next ping tick. Returns how many entered the table.
    pub fn restore_table(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<usize, crate::codec::CodecError> {
        let contacts = crate::codec::decode_table(bytes)?;
        Ok(self
            .table
            .restore(contacts.into_iter().filter(|c| c.id != self.local), now))
    }

    /// The records and provider entries this node holds for others, with the lifetime each
    /// has left, encoded for the node's store.
    pub fn export_records(&self, now: Instant) -> Vec<u8> {
        crate::codec::encode_store(
            &self.store.export_records(now),
            &self.store.export_providers(now),
        )
    }

    /// Reloads what [`Node::export_records`] saved. Each item is verified again and keeps the
    /// lifetime it had left; invalid ones are skipped. Returns how many were stored.
    pub fn restore_records(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<usize, crate::codec::CodecError> {
        let (records, providers) = crate::codec::decode_store(bytes)?;
        let mut restored = 0;
        for (record, left) in records {
            let (key, ttl) = (*record.key(), record.ttl());
            if record.verify().is_ok() && self.store.put_until(record, now, now + left).is_ok() {
                restored += 1;
                // Held for others: handed on in its turn, as before the restart.
                if let Some(interval) = self.config.replicate_interval
                    && !self.published.contains_key(&key)
                {
                    let next = now + self.jittered(interval.min(ttl / 2));
                    self.replicas.insert(key, next);
                }
            }
        }
        for (provider, left) in providers {
            let typing = provider
                .verify()
                .and_then(|()| self.config.validators.classify(&provider));
            if let Ok(typing) = typing
                && self
                    .store
                    .add_provider_until(provider, typing, now, now + left)
                    .is_ok()
            {
                restored += 1;
            }
        }
        Ok(restored)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
