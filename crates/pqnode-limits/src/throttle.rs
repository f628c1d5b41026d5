//! At most one log line per interval for an event outside input can repeat.
//!
//! Every bad QUIC Initial, malformed frame or refused connection used to
//! write its own line: one sender produced tens of thousands of lines a
//! second. A [`LogThrottle`] lets the first event of an interval through and
//! counts the rest, so the next line that gets through says how many were
//! left out. It decides *whether* to log, never logs itself: the caller
//! writes the line with its own fields and level, and counts each event in
//! its stats or metrics regardless (the exact figures live there, not in the
//! log).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Admits one event per `interval` to the log and counts the ones it holds back.
///
/// ```
/// use std::time::{Duration, Instant};
/// use pqnode_limits::LogThrottle;
///
/// let throttle = LogThrottle::new(Duration::from_secs(10));
/// let start = Instant::now();
/// // The first event is logged, with nothing held back before it.
/// assert_eq!(throttle.admit(start).map(|s| s.count), Some(0));
/// // The next 999 within the interval are only counted.
/// for _ in 0..999 {
///     assert!(throttle.admit(start + Duration::from_secs(1)).is_none());
/// }
/// // The first one after the interval is logged and reports them.
/// let later = throttle.admit(start + Duration::from_secs(11));
/// assert_eq!(later.map(|s| s.count), Some(999));
/// ```
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When the last admitted line was written; `None` before the first.
    last: Option<Instant>,
    held_back: u64,
}

/// The events left out of the log since the previous admitted line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "an admitted event should be logged, with the count of those held back"]
pub struct Suppressed {
    /// Events counted but not logged since the previous admitted line.
    pub count: u64,
}

impl LogThrottle {
    /// A throttle that admits at most one line per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                last: None,
                held_back: 0,
            }),
        }
    }

    /// Records one event; `Some` if it should be logged now, with how many
    /// events were held back since the last line that was.
    pub fn admit(&self, now: impl Into<Instant>) -> Option<Suppressed> {
        let now = now.into();
        // A panic elsewhere while holding this lock leaves two plain numbers
        // behind, never a broken invariant: poisoning is ignored.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let due = state
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            state.last = Some(now);
            Some(Suppressed {
                count: std::mem::take(&mut state.held_back),
            })
        } else {
            state.held_back = state.held_back.saturating_add(1);
            None
        }
    }

    /// Events held back since the last admitted line (for stats).
    pub fn held_back(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .held_back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_whatever_the_rate() {
        let throttle = LogThrottle::new(Duration::from_secs(1));
        let start = Instant::now();
        // 100 000 events a second for 10 seconds.
        let admitted: Vec<u64> = (0..1_000_000u64)
            .filter_map(|i| throttle.admit(start + Duration::from_micros(i * 10)))
            .map(|s| s.count)
            .collect();
        assert_eq!(admitted.len(), 10);
        assert_eq!(admitted[0], 0);
        // Every event is either logged or counted in a later line (the last
        // interval's are still held back).
        let reported: u64 = admitted.iter().sum::<u64>() + admitted.len() as u64;
        assert_eq!(reported + throttle.held_back(), 1_000_000);
    }

    #[test]
    fn time_going_backwards_does_not_admit_more() {
        let throttle = LogThrottle::new(Duration::from_secs(5));
        let start = tokio::time::Instant::now() + Duration::from_secs(60);
        assert!(throttle.admit(start).is_some());
        assert!(throttle.admit(start - Duration::from_secs(30)).is_none());
        assert_eq!(throttle.held_back(), 1);
    }

    #[test]
    fn is_usable_from_a_static() {
        static THROTTLE: LogThrottle = LogThrottle::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(THROTTLE.admit(now).is_some());
        assert!(THROTTLE.admit(now).is_none());
    }
}
