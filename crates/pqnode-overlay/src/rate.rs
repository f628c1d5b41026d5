//! Per-peer admission of inbound DHT requests.
//!
//! Every inbound STORE or ADD_PROVIDER costs an ML-DSA-87 verification, and
//! every request takes a slot in the DHT task's queue. A token bucket per
//! authenticated node id keeps one busy or hostile peer from crowding out the
//! rest; peers are identified by the key they proved in TLS, so a flood needs
//! a handshake per identity.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use pqnode_crypto::NodeId;
use pqnode_limits::TokenBucket;

/// Buckets kept at once; beyond it, buckets idle for a while are dropped.
const MAX_PEERS: usize = 4096;
/// A bucket untouched this long is full again anyway, so it can be forgotten.
const IDLE: Duration = Duration::from_secs(10);

/// Requests per second and burst allowed to one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerRate {
    /// Requests admitted per second, on average.
    pub per_second: u32,
    /// Requests admitted at once after a quiet spell.
    pub burst: u32,
}

impl Default for PeerRate {
    fn default() -> Self {
        Self {
            per_second: 200,
            burst: 400,
        }
    }
}

pub(crate) struct PeerLimiter {
    rate: PeerRate,
    buckets: Mutex<HashMap<NodeId, TokenBucket>>,
}

impl PeerLimiter {
    pub(crate) fn new(rate: PeerRate) -> Self {
        Self {
            rate,
            buckets: Mutex::default(),
        }
    }

    /// Takes one token from `peer`'s bucket; false when it is empty.
    pub(crate) fn allow(&self, peer: NodeId, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_PEERS && !buckets.contains_key(&peer) {
            buckets.retain(|_, b| now.saturating_duration_since(b.last_used()) < IDLE);
        }
        let PeerRate { per_second, burst } = self.rate;
        buckets
            .entry(peer)
            .or_insert_with(|| TokenBucket::new(per_second, burst, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate() {
        let limiter = PeerLimiter::new(PeerRate {
            per_second: 10,
            burst: 5,
        });
        let (a, b) = (NodeId::from_bytes([1; 20]), NodeId::from_bytes([2; 20]));
        let t0 = Instant::now();
        assert_eq!((0..8).filter(|_| limiter.allow(a, t0)).count(), 5);
        // Another peer has its own bucket.
        assert!(limiter.allow(b, t0));
        // 0.3 s refills 3 tokens at 10/s.
        let t1 = t0 + Duration::from_millis(300);
        assert_eq!((0..8).filter(|_| limiter.allow(a, t1)).count(), 3);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..8).filter(|_| limiter.allow(a, t2)).count(), 5);
    }

    #[test]
    fn idle_buckets_are_forgotten_when_the_map_is_full() {
        let limiter = PeerLimiter::new(PeerRate::default());
        let t0 = Instant::now();
        for i in 0..MAX_PEERS {
            let mut id = [0u8; 20];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            assert!(limiter.allow(NodeId::from_bytes(id), t0));
        }
        assert!(limiter.allow(NodeId::from_bytes([0xff; 20]), t0 + IDLE));
        let kept = limiter.buckets.lock().unwrap().len();
        assert_eq!(kept, 1, "idle buckets were dropped");
    }
}
