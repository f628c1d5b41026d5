//! Token buckets for per-session and per-IP message rates.

use tokio::time::Instant;

use crate::config::RateLimit;

/// A classic token bucket: refills at `per_second`, holds at most `burst`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    per_second: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        let burst = f64::from(limit.burst.max(1));
        Self {
            tokens: burst,
            per_second: f64::from(limit.per_second),
            burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(
            RateLimit {
                per_second: 10,
                burst: 3,
            },
            start,
        );
        assert!((0..3).all(|_| bucket.try_take(start)));
        assert!(!bucket.try_take(start));
        // 100 ms at 10/s refills exactly one token.
        let later = start + Duration::from_millis(100);
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
        // A long pause refills to the burst, not beyond.
        let much_later = later + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.try_take(much_later)));
        assert!(!bucket.try_take(much_later));
    }
}
