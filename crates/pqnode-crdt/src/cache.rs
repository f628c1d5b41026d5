//! Keeping memory bounded: which documents leave memory, and when.
//!
//! A document may leave only when nothing but the cache holds it: no session, subscription,
//! writer or reader. Idle ones (unused for `idle_evict_after`) go at every sweep; when the
//! cache holds more documents or stored bytes than its budget, the least recently used ones
//! go too. Documents in use are never dropped, so a budget can be exceeded by documents that
//! are all in use; it is a target, not a refusal.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::docstore::Inner;
use crate::stats::add;

impl Inner {
    pub(crate) fn over_budget(&self) -> bool {
        let slots = self.slots();
        slots.len() > self.config.max_loaded_docs
            || loaded_bytes(slots.values()) > self.config.max_loaded_bytes
    }

    /// Drops documents from memory: idle ones when `idle` is set, and the least recently used
    /// ones while over budget. Returns how many.
    pub(crate) fn evict(&self, idle: bool) -> usize {
        let now = self.now_ms();
        let idle_ms = u64::try_from(self.config.idle_evict_after.as_millis()).unwrap_or(u64::MAX);
        let mut slots = self.slots();
        let before = slots.len();
        if idle {
            slots.retain(|_, slot| {
                !(unused(slot) && now.saturating_sub(slot.last_used()) >= idle_ms)
            });
        }
        let mut bytes = loaded_bytes(slots.values());
        if slots.len() > self.config.max_loaded_docs || bytes > self.config.max_loaded_bytes {
            let mut candidates: Vec<_> = slots
                .iter()
                .filter(|(_, slot)| unused(slot))
                .map(|(name, slot)| {
                    (
                        slot.last_used(),
                        name.clone(),
                        slot.stored_bytes.load(Ordering::Relaxed),
                    )
                })
                .collect();
            candidates.sort_unstable();
            for (_, name, size) in candidates {
                if slots.len() <= self.config.max_loaded_docs
                    && bytes <= self.config.max_loaded_bytes
                {
                    break;
                }
                slots.remove(&name);
                bytes = bytes.saturating_sub(size);
            }
        }
        let evicted = before - slots.len();
        add(&self.counters.evictions, evicted as u64);
        evicted
    }
}

/// Only the cache holds it. Clones are made under the cache's lock or from another clone, so
/// a count of one cannot rise while the lock is held.
fn unused(slot: &Arc<crate::slot::DocSlot>) -> bool {
    Arc::strong_count(slot) == 1
}

fn loaded_bytes<'a>(slots: impl Iterator<Item = &'a Arc<crate::slot::DocSlot>>) -> u64 {
    slots
        .map(|slot| slot.stored_bytes.load(Ordering::Relaxed))
        .sum()
}
