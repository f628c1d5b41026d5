//! Figures a simulation run reports: latency percentiles, and what a set of lookups or record
//! reads gave.

use std::fmt;
use std::time::Duration;

use crate::lookup::LookupStats;

/// Percentiles of a set of durations (nearest-rank), in simulated time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The longest sample.
    pub max: Duration,
}

impl Percentiles {
    /// Percentiles of `samples` (all zero for none).
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| -> Duration {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted.get(i).copied().unwrap_or_default()
        };
        Self {
            count: sorted.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// What a set of lookups gave. Means are over the lookups that finished.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LookupFigures {
    /// Lookups started.
    pub started: usize,
    /// Lookups that finished: the means below are over these.
    pub finished: usize,
    /// Fraction of the true K closest live nodes found.
    pub overlap: f64,
    /// Deepest hop that answered (the figure a round-counting simulator reports).
    pub rounds: f64,
    /// Mean requests sent per lookup.
    pub requests: f64,
    /// Requests past their soft timeout (the lookup moved on without them).
    pub stalled: f64,
    /// Requests that failed (hard timeout, or refused).
    pub failures: f64,
    /// Virtual time from start to end.
    pub latency: Percentiles,
    /// Latency of the lookups that had every answer in time.
    pub clean: Percentiles,
    /// Latency of the lookups that waited for at least one dead, lost or slow contact.
    pub hindered: Percentiles,
}

impl LookupFigures {
    /// Figures of `started` lookups, from what each finished one gave: its stats, its
    /// latency and its overlap with the true closest (`None` for one that did not finish).
    pub fn of(
        started: usize,
        lookups: impl IntoIterator<Item = Option<(LookupStats, Duration, f64)>>,
    ) -> Self {
        let done: Vec<(LookupStats, Duration, f64)> = lookups.into_iter().flatten().collect();
        let mean = |f: &dyn Fn(&(LookupStats, Duration, f64)) -> f64| -> f64 {
            done.iter().map(f).sum::<f64>() / done.len().max(1) as f64
        };
        let latencies = |clean: Option<bool>| -> Vec<Duration> {
            done.iter()
                .filter(|(s, _, _)| clean.is_none_or(|c| c == (s.stalled + s.failures == 0)))
                .map(|(_, l, _)| *l)
                .collect()
        };
        Self {
            started,
            finished: done.len(),
            overlap: mean(&|(_, _, o)| *o),
            rounds: mean(&|(s, _, _)| f64::from(s.rounds)),
            requests: mean(&|(s, _, _)| f64::from(s.requests)),
            stalled: mean(&|(s, _, _)| f64::from(s.stalled)),
            failures: mean(&|(s, _, _)| f64::from(s.failures)),
            latency: Percentiles::of(&latencies(None)),
            clean: Percentiles::of(&latencies(Some(true))),
            hindered: Percentiles::of(&latencies(Some(false))),
        }
    }
}

impl fmt::Display for LookupFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} finished, overlap {:.3}, rounds {:.2}, requests {:.1}, stalled {:.2}, failed {:.2}; latency {}; every answer in time: {} lookups, p50 {:.0} ms; some not: {} lookups, p50 {:.0} ms",
            self.finished,
            self.started,
            self.overlap,
            self.rounds,
            self.requests,
            self.stalled,
            self.failures,
            self.latency,
            self.clean.count,
            ms(self.clean.p50),
            self.hindered.count,
            ms(self.hindered.p50),
        )
    }
}

/// What reading every record once gave.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RecordFigures {
    /// Records read (one read each).
    pub records: usize,
    /// Mean nodes that stored the newest version when it was published.
    pub replicas: f64,
    /// Reads that finished: `found`, `newest` and the means are over these.
    pub finished: usize,
    /// Reads that returned the record, at any version.
    pub found: usize,
    /// Reads that returned its newest version.
    pub newest: usize,
    /// Mean deepest hop that answered, per finished read.
    pub rounds: f64,
    /// Virtual time of the reads from start to end.
    pub latency: Percentiles,
}

impl RecordFigures {
    /// Figures of reading `records` records whose newest version is `newest_seq`, stored on
    /// `replicas` nodes each, from what each finished read gave: its stats, latency and the
    /// version it returned.
    pub fn of(
        records: usize,
        replicas: &[usize],
        newest_seq: u64,
        reads: impl IntoIterator<Item = Option<(LookupStats, Duration, Option<u64>)>>,
    ) -> Self {
        let done: Vec<(LookupStats, Duration, Option<u64>)> = reads.into_iter().flatten().collect();
        let latencies: Vec<Duration> = done.iter().map(|(_, l, _)| *l).collect();
        Self {
            records,
            replicas: replicas.iter().sum::<usize>() as f64 / replicas.len().max(1) as f64,
            finished: done.len(),
            found: done.iter().filter(|(_, _, seq)| seq.is_some()).count(),
            newest: done
                .iter()
                .filter(|(_, _, seq)| *seq == Some(newest_seq))
                .count(),
            rounds: done
                .iter()
                .map(|(s, _, _)| f64::from(s.rounds))
                .sum::<f64>()
                / done.len().max(1) as f64,
            latency: Percentiles::of(&latencies),
        }
    }

    /// Percentage of the records found.
    pub fn found_percent(&self) -> f64 {
        100.0 * self.found as f64 / self.records.max(1) as f64
    }

    /// Percentage of the records found at their newest version.
    pub fn newest_percent(&self) -> f64 {
        100.0 * self.newest as f64 / self.records.max(1) as f64
    }
}

impl fmt::Display for RecordFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records on {:.1} nodes each: {} found ({:.1} %), {} newest ({:.1} %), rounds {:.2}; latency {}",
            self.records,
            self.replicas,
            self.found,
            self.found_percent(),
            self.newest,
            self.newest_percent(),
            self.rounds,
            self.latency,
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples);
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (
                100,
                Duration::from_millis(50),
                Duration::from_millis(90),
                Duration::from_millis(99),
                Duration::from_millis(100)
            )
        );
        assert_eq!(Percentiles::of(&[]), Percentiles::default());
        assert_eq!(p.to_string(), "p50 50 ms, p90 90 ms, p99 99 ms, max 100 ms");
    }
}
