//! DHT records as the store keeps them: a value and, usually, an expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// A stored DHT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: Bytes,
    /// When the record stops being served; `None` for a record written with a plain
    /// [`Store::put`](crate::Store::put), which never expires.
    pub expires_at: Option<SystemTime>,
}

/// Milliseconds since the Unix epoch, the form expiries take on disk. Times before the epoch
/// become 0 and times past `u64::MAX` ms saturate; neither occurs on a working clock.
pub(crate) fn to_unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// The inverse of [`to_unix_ms`]. A value no `SystemTime` can hold (only possible in a damaged
/// file) maps to the epoch, so the record reads as long expired rather than as immortal.
pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_ms_round_trips_at_millisecond_precision() {
        let time = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(from_unix_ms(to_unix_ms(time)), time);
        assert_eq!(to_unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
