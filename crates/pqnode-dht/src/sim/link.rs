//! The simulated network's links: a fixed base latency per pair of nodes, jitter per message.
//!
//! Real round-trip times are a property of the path between two hosts (mostly distance), with
//! queueing on top. So each pair of nodes gets one base one-way latency for the whole run,
//! drawn from the seed, and each message adds a random, occasionally large, delay to it. That
//! is what lets a node's RTT estimate of one contact mean something.

use std::time::Duration;

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

/// The base one-way latency of the link between nodes `a` and `b` (symmetric), uniform in
/// `[min, max]` and fixed for a given `seed`.
pub(crate) fn base_latency(
    seed: u64,
    a: usize,
    b: usize,
    min: Duration,
    max: Duration,
) -> Duration {
    let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
    let h = splitmix64(seed ^ splitmix64(lo ^ splitmix64(hi)));
    // The top 53 bits as a fraction in [0, 1).
    let fraction = (h >> 11) as f64 / (1u64 << 53) as f64;
    let max = max.max(min);
    min + (max - min).mul_f64(fraction)
}

/// One message's one-way latency: the link's base plus exponentially distributed queueing
/// delay with mean `jitter × base` (capped at 20 × base, so a run cannot stall on a freak draw).
pub(crate) fn message_latency(
    rng: &mut Xoshiro256PlusPlus,
    base: Duration,
    jitter: f64,
) -> Duration {
    if jitter <= 0.0 {
        return base;
    }
    let u: f64 = rng.random::<f64>();
    let exp = -(1.0 - u).max(f64::MIN_POSITIVE).ln();
    base + base.mul_f64((jitter * exp).min(20.0))
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn links_are_symmetric_fixed_and_in_range() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(80));
        let ab = base_latency(1, 3, 9, min, max);
        assert_eq!(ab, base_latency(1, 9, 3, min, max));
        assert!(ab >= min && ab <= max);
        let spread: Vec<Duration> = (0..100).map(|b| base_latency(1, 0, b, min, max)).collect();
        assert!(spread.iter().any(|d| *d < Duration::from_millis(30)));
        assert!(spread.iter().any(|d| *d > Duration::from_millis(60)));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let samples: Vec<Duration> = (0..1000)
            .map(|_| message_latency(&mut rng, ab, 0.25))
            .collect();
        assert!(samples.iter().all(|d| *d >= ab && *d <= ab * 21));
        let mean = samples.iter().sum::<Duration>() / 1000;
        assert!(
            mean > ab && mean < ab.mul_f64(1.4),
            "mean {mean:?} for base {ab:?}"
        );
    }
}
