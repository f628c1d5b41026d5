//! Counters of the messaging component.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) refused_store: AtomicU64,
    pub(crate) refused_malformed: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) send_failed: AtomicU64,
}

/// A snapshot of the messaging counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagingStats {
    /// Messages stored and acknowledged.
    pub received: u64,
    /// Messages refused because the store could not take them (the sender was told to retry).
    pub refused_store_unavailable: u64,
    /// Messages refused as malformed (not UTF-8, over the cap, undecodable).
    pub refused_malformed: u64,
    /// Messages other nodes acknowledged as stored.
    pub sent: u64,
    /// Sends that did not end in an acknowledgement.
    pub send_failed: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> MessagingStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MessagingStats {
            received: load(&self.received),
            refused_store_unavailable: load(&self.refused_store),
            refused_malformed: load(&self.refused_malformed),
            sent: load(&self.sent),
            send_failed: load(&self.send_failed),
        }
    }
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
