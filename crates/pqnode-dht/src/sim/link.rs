//! The simulated network's links: a fixed round-trip time per pair of nodes, drawn from a
//! lognormal distribution, and queueing jitter and loss per message.
//!
//! Real round-trip times are a property of the path between two hosts (mostly distance), with
//! queueing on top. So each pair of nodes gets one base RTT for the whole run, drawn from the
//! seed, and each message adds a random, occasionally large, delay to it. That is what lets a
//! node's RTT estimate of one contact mean something. Measured Internet RTTs are skewed: most
//! paths are short, a few cross oceans. A lognormal with a median of 40 ms and σ = 0.6 (p90
//! ≈ 86 ms, p99 ≈ 160 ms, capped at 300 ms) has that shape.

use std::time::Duration;

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

/// The distribution of base round-trip times over the pairs of nodes: lognormal, clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttModel {
    /// The median base RTT over all pairs.
    pub median: Duration,
    /// σ of the underlying normal: 0 gives every link the median; 0.6 puts p99 at 4× it.
    pub sigma: f64,
    /// No link is faster than this.
    pub min: Duration,
    /// No link is slower than this (the tail is cut here).
    pub max: Duration,
}

impl Default for RttModel {
    fn default() -> Self {
        Self {
            median: Duration::from_millis(40),
            sigma: 0.6,
            min: Duration::from_millis(2),
            max: Duration::from_millis(300),
        }
    }
}

/// What happens to a lost message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LossRecovery {
    /// It is gone (datagram semantics): a lost request or response is an unanswered request,
    /// and the requester pays its timeout.
    #[default]
    None,
    /// The sender resends it after a probe timeout, as QUIC does for a stream: a loss costs
    /// time, not the message. The probe timeout is `2 × RTT + 25 ms` (QUIC's
    /// `srtt + 4 × rttvar + max_ack_delay` on a steady path), doubling at each further loss;
    /// after [`MAX_RETRANSMITS`] resends the message is given up.
    Retransmit,
}

/// Resends of one message before [`LossRecovery::Retransmit`] gives it up.
pub const MAX_RETRANSMITS: u32 = 5;

/// QUIC's default `max_ack_delay`, part of the probe timeout.
const ACK_DELAY: Duration = Duration::from_millis(25);

/// The base RTT of the link between nodes `a` and `b` (symmetric), fixed for a given `seed`.
pub(crate) fn base_rtt(seed: u64, a: usize, b: usize, model: &RttModel) -> Duration {
    let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
    let h1 = splitmix64(seed ^ splitmix64(lo ^ splitmix64(hi)));
    let h2 = splitmix64(h1);
    // Box-Muller: two uniforms in (0, 1] and [0, 1) give one standard normal.
    let u1 = 1.0 - unit(h1);
    let u2 = unit(h2);
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let factor = (model.sigma.max(0.0) * z).exp();
    let max = model.max.max(model.min);
    let secs =
        (model.median.as_secs_f64() * factor).clamp(model.min.as_secs_f64(), max.as_secs_f64());
    Duration::from_secs_f64(secs)
}

/// One message's one-way latency: half the link's base RTT plus exponentially distributed
/// queueing delay with mean `jitter × (RTT / 2)` (capped at 20 × that, so a run cannot stall on
/// a freak draw).
pub(crate) fn message_latency(
    rng: &mut Xoshiro256PlusPlus,
    rtt: Duration,
    jitter: f64,
) -> Duration {
    let one_way = rtt / 2;
    if jitter <= 0.0 {
        return one_way;
    }
    let u: f64 = rng.random::<f64>();
    let exp = -(1.0 - u).max(f64::MIN_POSITIVE).ln();
    one_way + one_way.mul_f64((jitter * exp).min(20.0))
}

/// The first probe timeout of a message on a link with base RTT `rtt`.
pub(crate) fn probe_timeout(rtt: Duration) -> Duration {
    rtt * 2 + ACK_DELAY
}

/// The top 53 bits of `h` as a fraction in [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
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
    use crate::sim::Percentiles;

    #[test]
    fn links_are_symmetric_fixed_and_skewed_like_internet_paths() {
        let model = RttModel::default();
        assert_eq!(base_rtt(1, 3, 9, &model), base_rtt(1, 9, 3, &model));
        assert_ne!(base_rtt(1, 3, 9, &model), base_rtt(2, 3, 9, &model));
        let rtts: Vec<Duration> = (0..20_000).map(|b| base_rtt(1, 7, b + 8, &model)).collect();
        let p = Percentiles::of(&rtts);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert!((36.0..44.0).contains(&ms(p.p50)), "median {p}");
        assert!((75.0..100.0).contains(&ms(p.p90)), "p90 {p}");
        assert!((140.0..185.0).contains(&ms(p.p99)), "p99 {p}");
        assert!(
            ms(p.max) <= 300.0 && ms(p.max) >= 250.0,
            "tail cut at 300 ms: {p}"
        );
        assert!(rtts.iter().all(|d| *d >= model.min));

        let flat = RttModel {
            sigma: 0.0,
            ..model
        };
        assert_eq!(base_rtt(1, 3, 9, &flat), model.median);
    }

    #[test]
    fn jitter_adds_a_little_on_average_and_is_bounded() {
        let rtt = Duration::from_millis(40);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let samples: Vec<Duration> = (0..1000)
            .map(|_| message_latency(&mut rng, rtt, 0.25))
            .collect();
        let one_way = rtt / 2;
        assert!(samples.iter().all(|d| *d >= one_way && *d <= one_way * 6));
        let mean = samples.iter().sum::<Duration>() / 1000;
        assert!(
            mean > one_way && mean < one_way.mul_f64(1.4),
            "mean {mean:?} for one way {one_way:?}"
        );
        assert_eq!(message_latency(&mut rng, rtt, 0.0), one_way);
    }
}
