//! Counters of replication, and their snapshot [`ReplicationStats`].

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::stats::add;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sessions_out: AtomicU64,
    pub(crate) sessions_in: AtomicU64,
    pub(crate) requests_out: AtomicU64,
    pub(crate) requests_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) updates_sent: AtomicU64,
    pub(crate) update_bytes_sent: AtomicU64,
    pub(crate) updates_received: AtomicU64,
    pub(crate) anti_entropy_rounds: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) heals: AtomicU64,
    pub(crate) queue_overflows: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) replicas_rotated: AtomicU64,
}

/// A snapshot of replication since start (`trackedDocs` and `replicas` are current values;
/// the rest count up). Bytes count request and response bodies as they cross the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationStats {
    /// Documents replicated now.
    pub tracked_docs: u64,
    /// Replicas those documents sync with, summed over documents.
    pub replicas: u64,
    /// Exchanges (state vector for diff) this node started.
    pub sync_sessions_out: u64,
    /// Exchanges other nodes started here.
    pub sync_sessions_in: u64,
    /// Requests sent (exchanges and pushes).
    pub requests_out: u64,
    /// Requests answered (exchanges and pushes).
    pub requests_in: u64,
    /// Bytes this node sent: its requests and its answers.
    pub bytes_out: u64,
    /// Bytes this node received: requests from others and their answers to ours.
    pub bytes_in: u64,
    /// Live updates carried to replicas (several may share one push).
    pub updates_sent: u64,
    /// Raw bytes of those updates.
    pub update_bytes_sent: u64,
    /// Updates from other nodes committed here (pushes and non-empty diffs).
    pub updates_received: u64,
    /// Anti-entropy exchanges started by the timer, a heal, or a dropped live queue.
    pub anti_entropy_rounds: u64,
    /// Requests to other nodes that failed (unreachable, refused, bad answer).
    pub failures: u64,
    /// Replicas that failed and then answered again (each followed by anti-entropy).
    pub heals: u64,
    /// Live queues dropped for a slow or unreachable replica.
    pub queue_overflows: u64,
    /// Inbound requests refused (malformed, over a cap, rejected by the document engine).
    pub refused: u64,
    /// Replica slots handed to another listed replica (more were listed than there are slots).
    pub replicas_rotated: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self, tracked_docs: u64, replicas: u64) -> ReplicationStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReplicationStats {
            tracked_docs,
            replicas,
            sync_sessions_out: load(&self.sessions_out),
            sync_sessions_in: load(&self.sessions_in),
            requests_out: load(&self.requests_out),
            requests_in: load(&self.requests_in),
            bytes_out: load(&self.bytes_out),
            bytes_in: load(&self.bytes_in),
            updates_sent: load(&self.updates_sent),
            update_bytes_sent: load(&self.update_bytes_sent),
            updates_received: load(&self.updates_received),
            anti_entropy_rounds: load(&self.anti_entropy_rounds),
            failures: load(&self.failures),
            heals: load(&self.heals),
            queue_overflows: load(&self.queue_overflows),
            refused: load(&self.refused),
            replicas_rotated: load(&self.replicas_rotated),
        }
    }

    /// One request this node sent and its answer.
    pub(crate) fn sent(&self, request: usize, response: usize) {
        add(&self.requests_out, 1);
        add(&self.bytes_out, request as u64);
        add(&self.bytes_in, response as u64);
    }

    /// One request this node answered.
    pub(crate) fn answered(&self, request: usize, response: usize) {
        add(&self.requests_in, 1);
        add(&self.bytes_in, request as u64);
        add(&self.bytes_out, response as u64);
    }
}
