//! Streaming statistics of one operation name: exact count / failures / total / min / max, and
//! percentiles from a DDSketch. Memory per name is bounded whatever the number of operations.

use sketches_ddsketch::{Config, DDSketch};

use super::types::{MetricsOperation, OperationStats};

/// Relative accuracy of the quantile sketch: a reported percentile is within 0.5% of the true
/// value at that rank (the issue asks for 1%; half of it leaves room for float rounding).
pub(crate) const SKETCH_RELATIVE_ACCURACY: f64 = 0.005;
/// Most bins a sketch may grow to. With 0.5% accuracy, 4096 bins span durations from 1 ns to
/// about 8.5 days without collapsing; a sketch never takes more than 4096 * 8 bytes (32 KiB).
pub(crate) const SKETCH_MAX_BINS: u32 = 4096;
/// Durations at or below this (in ms, i.e. 1 ns) count as zero in the sketch.
const SKETCH_MIN_VALUE_MS: f64 = 1e-6;

fn new_sketch() -> DDSketch {
    DDSketch::new(Config::new(
        SKETCH_RELATIVE_ACCURACY,
        SKETCH_MAX_BINS,
        SKETCH_MIN_VALUE_MS,
    ))
}

const NS_PER_MS: f64 = 1_000_000.0;

/// Aggregates of every ended operation of one name.
pub(crate) struct NameStats {
    count: u64,
    failures: u64,
    total_ns: u128,
    root_total_ns: u128,
    min_ns: u64,
    max_ns: u64,
    sketch: DDSketch,
}

impl NameStats {
    pub(crate) fn new() -> Self {
        Self {
            count: 0,
            failures: 0,
            total_ns: 0,
            root_total_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            sketch: new_sketch(),
        }
    }

    /// Records one ended operation.
    #[inline]
    pub(crate) fn record(&mut self, duration_ns: u64, failed: bool, is_root: bool) {
        self.count += 1;
        self.failures += failed as u64;
        self.total_ns += duration_ns as u128;
        if is_root {
            self.root_total_ns += duration_ns as u128;
        }
        self.min_ns = self.min_ns.min(duration_ns);
        self.max_ns = self.max_ns.max(duration_ns);
        self.sketch.add(duration_ns as f64 / NS_PER_MS);
    }

    /// Forgets everything (the profiler's `clear`).
    pub(crate) fn reset(&mut self) {
        *self = Self::new();
    }

    pub(crate) fn root_total_ns(&self) -> u128 {
        self.root_total_ns
    }

    fn total_ms(&self) -> f64 {
        self.total_ns as f64 / NS_PER_MS
    }

    fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.total_ns as f64 / self.count as f64) / NS_PER_MS
        }
    }

    fn quantile(&self, q: f64) -> f64 {
        // The sketch is never asked for an out-of-range q; empty sketches are filtered earlier.
        let v = self.sketch.quantile(q).ok().flatten().unwrap_or(0.0);
        // The sketch returns a bucket's representative value, which may lie a hair outside the
        // exact [min, max]; clamp so p50 <= max and p99 >= min always hold.
        v.clamp(
            self.min_ns as f64 / NS_PER_MS,
            self.max_ns as f64 / NS_PER_MS,
        )
    }

    /// The public statistics, or `None` when nothing of this name ended.
    pub(crate) fn to_stats(&self, name: &str) -> Option<OperationStats> {
        if self.count == 0 {
            return None;
        }
        Some(OperationStats {
            name: name.to_owned(),
            count: self.count,
            failures: self.failures,
            avg: self.avg_ms(),
            min: self.min_ns as f64 / NS_PER_MS,
            max: self.max_ns as f64 / NS_PER_MS,
            total: self.total_ms(),
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
        })
    }

    /// The server's metrics entry, or `None` when nothing of this name ended.
    pub(crate) fn to_metrics(&self, name: &str) -> Option<MetricsOperation> {
        if self.count == 0 {
            return None;
        }
        Some(MetricsOperation {
            name: name.to_owned(),
            count: self.count,
            avg: self.avg_ms(),
            min: self.min_ns as f64 / NS_PER_MS,
            max: self.max_ns as f64 / NS_PER_MS,
            total: self.total_ms(),
        })
    }

    pub(crate) fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.avg_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_aggregates_and_failures() {
        let mut s = NameStats::new();
        s.record(1_000_000, false, true); // 1 ms
        s.record(3_000_000, true, false); // 3 ms, failed, nested
        let st = s.to_stats("x").unwrap();
        assert_eq!(st.count, 2);
        assert_eq!(st.failures, 1);
        assert_eq!(st.min, 1.0);
        assert_eq!(st.max, 3.0);
        assert_eq!(st.total, 4.0);
        assert_eq!(st.avg, 2.0);
        assert_eq!(s.root_total_ns(), 1_000_000);
    }

    #[test]
    fn empty_stats_are_none_and_reset_empties() {
        let mut s = NameStats::new();
        assert!(s.to_stats("x").is_none());
        s.record(5, false, true);
        assert!(s.to_stats("x").is_some());
        s.reset();
        assert!(s.to_stats("x").is_none());
        assert!(s.to_metrics("x").is_none());
        assert_eq!(s.avg(), None);
    }

    #[test]
    fn zero_durations_do_not_break_percentiles() {
        let mut s = NameStats::new();
        for _ in 0..10 {
            s.record(0, false, true);
        }
        let st = s.to_stats("z").unwrap();
        assert_eq!((st.p50, st.p95, st.p99, st.max), (0.0, 0.0, 0.0, 0.0));
    }
}
