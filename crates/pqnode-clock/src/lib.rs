//! Wall-clock time as pqnode's wire, disk and API carry it: milliseconds since the Unix
//! epoch, one conversion for every crate.
//!
//! What it is for: timestamps that leave the process (signed registrations, message
//! receipts, record and token expiries, API fields). A clock set before 1970 reads as 0
//! and a time past `u64::MAX` ms saturates, so no conversion fails or panics.
//!
//! What it is not: a clock for durations. Timeouts and intervals use a monotonic
//! [`std::time::Instant`], which the wall clock's steps and corrections cannot disturb.
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let t = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
//! assert_eq!(pqnode_clock::unix_ms(t), 1_800_000_000_123);
//! assert_eq!(pqnode_clock::from_unix_ms(1_800_000_000_123), t);
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` in milliseconds since the Unix epoch: 0 before it, saturating far ahead.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The wall clock now, in milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// The inverse of [`unix_ms`]. A value no `SystemTime` can hold (only a damaged file or a
/// hostile peer sends one) maps to the epoch: an expiry read from it is long past rather
/// than never.
pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_millisecond_precision_and_never_fails() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(from_unix_ms(unix_ms(t)), t);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert!(from_unix_ms(u64::MAX) >= UNIX_EPOCH);
        assert!(now_unix_ms() > 1_700_000_000_000);
    }
}
