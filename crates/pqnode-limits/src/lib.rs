//! Admission primitives shared by pqnode's servers.
//!
//! What it is for: the token bucket behind every rate limit in the node —
//! signaling sessions and IPs, PeerJS connections, DHT requests per peer —
//! so they all refill and cap the same way; and [`LogThrottle`], which
//! rate-limits the log lines that outside input causes (bad handshakes,
//! malformed frames, refused connections), so a hostile sender cannot fill
//! the disk through the node's log.
//!
//! What it is not: a policy, nor a logger. Which key gets a bucket (a
//! session, an IP, a node id), what the limits are and what a refusal looks
//! like stay with each server; what a throttled line says and at which level
//! stays with its caller, which also counts every event in its own stats.
//! Time is passed in, never read here, so callers can use
//! `std::time::Instant` or `tokio::time::Instant` alike.

mod throttle;

pub use throttle::{LogThrottle, Suppressed};

use std::time::Instant;

/// A classic token bucket: holds at most `burst` tokens and refills at
/// `per_second`; each admitted event takes one.
///
/// ```
/// use std::time::{Duration, Instant};
/// use pqnode_limits::TokenBucket;
///
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new(10, 2, start);
/// assert!(bucket.try_take(start) && bucket.try_take(start));
/// assert!(!bucket.try_take(start));
/// assert!(bucket.try_take(start + Duration::from_millis(100)));
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    per_second: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. A burst below 1 is raised to 1, so one event always fits.
    pub fn new(per_second: u32, burst: u32, now: impl Into<Instant>) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            tokens: burst,
            per_second: f64::from(per_second),
            burst,
            last: now.into(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: impl Into<Instant>) -> bool {
        let now = now.into();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the bucket was last used.
    pub fn last_used(&self) -> Instant {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5, start);
        assert!((0..5).all(|_| bucket.try_take(start)));
        assert!(!bucket.try_take(start));
        // 10 per second: one token every 100 ms.
        assert!(bucket.try_take(start + Duration::from_millis(100)));
        assert!(!bucket.try_take(start + Duration::from_millis(100)));
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 5);
    }

    #[test]
    fn a_zero_burst_still_admits_one_and_tokio_instants_work() {
        let start = tokio::time::Instant::now();
        let mut bucket = TokenBucket::new(0, 0, start);
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start + Duration::from_secs(10)));
    }
}
