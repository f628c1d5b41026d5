//! [`ReplicationConfig`]: how often, how many, how much replication may hold.

use std::time::Duration;

use crate::ConfigError;

/// Tuning and limits of a [`Replicator`](super::Replicator). The defaults suit a node.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplicationConfig {
    /// Anti-entropy with every replica of every tracked document this often (each round is
    /// jittered by up to a quarter either way, so nodes started together do not pulse).
    pub anti_entropy_interval: Duration,
    /// After a replica failed, try again after this long, doubling up to
    /// [`retry_max`](Self::retry_max) while it keeps failing.
    pub retry_min: Duration,
    /// Longest wait between retries of a failing replica.
    pub retry_max: Duration,
    /// Most replicas one document is synced with (the first found; others still sync with us
    /// when they ask, and convergence is transitive through anti-entropy).
    pub max_replicas_per_doc: usize,
    /// Most documents tracked at once (each holds its document in memory and a subscription).
    /// Past it, `track` and inbound requests for new documents are refused.
    pub max_tracked_docs: usize,
    /// Whether an inbound request may make this node a replica of a document it does not hold
    /// yet (it then stores and tracks the document). Off: such requests are answered
    /// `NotHeld`, and only documents tracked here, or already in the store, are served.
    pub accept_new: bool,
    /// Live updates waiting for one replica, at most: past this or
    /// [`live_queue_bytes`](Self::live_queue_bytes) the queue is dropped and the replica is
    /// brought up to date by anti-entropy instead.
    pub live_queue_updates: usize,
    /// Bytes of live updates waiting for one replica, at most (see
    /// [`live_queue_updates`](Self::live_queue_updates)).
    pub live_queue_bytes: usize,
    /// Live updates sent together are merged into one push of at most this many bytes (raw).
    pub max_push_bytes: usize,
    /// Requests to other nodes in flight at once, all documents together.
    pub max_in_flight: usize,
    /// A request to another node that has not answered after this long failed (the link
    /// may give up sooner).
    pub request_timeout: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            anti_entropy_interval: Duration::from_secs(60),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_replicas_per_doc: 8,
            max_tracked_docs: 1024,
            accept_new: true,
            live_queue_updates: 1024,
            live_queue_bytes: 4 * 1024 * 1024,
            max_push_bytes: 1024 * 1024,
            max_in_flight: 16,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ReplicationConfig {
    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least = |field, value: u64, min: u64| match value >= min {
            true => Ok(()),
            false => Err(ConfigError::TooSmall { field, min }),
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        at_least("anti_entropy_interval", ms(self.anti_entropy_interval), 10)?;
        at_least("retry_min", ms(self.retry_min), 1)?;
        at_least("retry_max", ms(self.retry_max), ms(self.retry_min))?;
        at_least("max_replicas_per_doc", self.max_replicas_per_doc as u64, 1)?;
        at_least("max_tracked_docs", self.max_tracked_docs as u64, 1)?;
        at_least("live_queue_updates", self.live_queue_updates as u64, 1)?;
        at_least("live_queue_bytes", self.live_queue_bytes as u64, 1024)?;
        at_least("max_push_bytes", self.max_push_bytes as u64, 1024)?;
        at_least("max_in_flight", self.max_in_flight as u64, 1)?;
        at_least("request_timeout", ms(self.request_timeout), 10)?;
        Ok(())
    }
}
