//! The core's notion of time: a monotonic instant supplied by whoever drives it.
//!
//! The core never reads a clock. The network driver passes `Instant::from_elapsed(start.elapsed())`
//! and the simulator passes its virtual clock, so both run the same code.

use std::ops::Add;
use std::time::Duration;

/// A point on the driver's monotonic clock: the time elapsed since an origin the driver chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The driver's origin.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The instant `elapsed` after the driver's origin.
    pub const fn from_elapsed(elapsed: Duration) -> Self {
        Self(elapsed)
    }

    /// Time since the driver's origin.
    pub const fn elapsed(self) -> Duration {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    /// `self - duration`, or the origin if that would be before it.
    pub fn saturating_sub(self, duration: Duration) -> Self {
        Self(self.0.saturating_sub(duration))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(rhs))
    }
}
