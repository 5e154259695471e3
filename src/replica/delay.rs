//! How long peer messages take, sender's queue to handled and durable here: the figure Δ
//! must bound (NOTEBOOK, "Choosing Δ"). Each frame carries when its oldest message was
//! queued (sender's clock, unix µs); the driver records, after the fsync of the batch that
//! handled it, how long ago that was. Every `REPORT_EVERY` the log gets one line with the
//! percentiles (`peer delay`), at debug level (`RUST_LOG=info,quintet::replica::delay=debug`
//! shows them; `scripts/measure-delta.sh` does). Across hosts the figure includes the
//! clocks' offset.

use std::time::{Duration, Instant};

use super::peers::unix_us;

const REPORT_EVERY: Duration = Duration::from_secs(10);
/// Samples kept per report (a bound on memory; beyond it, samples are skipped).
const SAMPLES_MAX: usize = 200_000;

pub struct Delays {
    samples: Vec<u64>,
    since: Instant,
}

impl Default for Delays {
    fn default() -> Self {
        Delays { samples: Vec::new(), since: Instant::now() }
    }
}

/// Percentiles of a set of delays in µs: (count, p50, p90, p99, p99.9, max).
pub fn summary(samples: &mut [u64]) -> Option<(usize, u64, u64, u64, u64, u64)> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    Some((samples.len(), at(0.5), at(0.9), at(0.99), at(0.999), samples[samples.len() - 1]))
}

impl Delays {
    /// Records the frames handled in one batch (their `sent_at_us`), and reports when due.
    pub fn record(&mut self, sent_at: &[u64]) {
        let now = unix_us();
        for t in sent_at {
            if self.samples.len() < SAMPLES_MAX {
                self.samples.push(now.saturating_sub(*t));
            }
        }
        if self.since.elapsed() >= REPORT_EVERY {
            self.since = Instant::now();
            if let Some((count, p50, p90, p99, p999, max)) = summary(&mut self.samples) {
                let ms = |us: u64| us as f64 / 1000.0;
                tracing::debug!(
                    frames = count,
                    p50_ms = ms(p50),
                    p90_ms = ms(p90),
                    p99_ms = ms(p99),
                    p999_ms = ms(p999),
                    max_ms = ms(max),
                    "peer delay"
                );
            }
            self.samples.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn percentiles_are_read_off_the_sorted_samples() {
        assert_eq!(summary(&mut []), None);
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        assert_eq!(summary(&mut samples), Some((1000, 500, 900, 990, 999, 1000)));
        assert_eq!(summary(&mut [7]), Some((1, 7, 7, 7, 7, 7)));
    }
}
