//! The shapes the profiler hands out. They serialize in camelCase, as the VibeTrees server and the
//! bindings expect (`startTime`, `endTime`, `totalDuration`, `avgWorktreeCreation`, ...).
//! Every time and duration is in milliseconds as `f64`, measured from the moment the profiler
//! was made (like `performance.now()`).

use serde::{Deserialize, Serialize};

/// One ended operation, with the results of its children that had ended before it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    /// The operation's id, as returned by `start` (e.g. `op-17`).
    pub id: String,
    /// The operation's name (e.g. `git-worktree-add`).
    pub name: String,
    /// `end_time - start_time`, in milliseconds.
    pub duration: f64,
    /// When the operation started, in ms since the profiler was made.
    pub start_time: f64,
    /// When the operation ended, in ms since the profiler was made.
    pub end_time: f64,
    /// Results of the children that had ended when this operation ended (and are still in the
    /// profiler's window of completed results), in the order they were started.
    pub children: Vec<OperationResult>,
    /// The parent's id, when the operation was started under a parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// True when the operation was ended with `end_failed` (or a span guard's `fail`).
    #[serde(default)]
    pub failed: bool,
    /// The failure message given to `end_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Ids of children that were still running when this operation ended. Empty (and left out of
    /// the JSON) when every child had ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running_children: Vec<String>,
}

/// Statistics of every ended operation of one name, since the profiler was made or cleared.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperationStats {
    /// The operation name.
    pub name: String,
    /// How many operations of this name ended (failed ones included).
    pub count: u64,
    /// How many of them ended as failed.
    pub failures: u64,
    /// Mean duration in ms (exact).
    pub avg: f64,
    /// Shortest duration in ms (exact).
    pub min: f64,
    /// Longest duration in ms (exact).
    pub max: f64,
    /// Sum of the durations in ms (exact to the nanosecond before conversion).
    pub total: f64,
    /// Median duration in ms, from a DDSketch (relative error at most 0.5%).
    pub p50: f64,
    /// 95th percentile duration in ms, from a DDSketch (relative error at most 0.5%).
    pub p95: f64,
    /// 99th percentile duration in ms, from a DDSketch (relative error at most 0.5%).
    pub p99: f64,
}

/// The profiler's report: every operation name's statistics, largest total first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Statistics per operation name, sorted by `total`, largest first (ties: by name).
    pub operations: Vec<OperationStats>,
    /// Sum of the durations of root operations (those started without a parent), in ms: the
    /// time the profiled work took without counting nested operations twice.
    pub total_duration: f64,
}

/// One entry of [`Metrics::operations`]: the server's `{ name, count, avg, min, max, total }`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricsOperation {
    /// The operation name.
    pub name: String,
    /// How many operations of this name ended.
    pub count: u64,
    /// Mean duration in ms.
    pub avg: f64,
    /// Shortest duration in ms.
    pub min: f64,
    /// Longest duration in ms.
    pub max: f64,
    /// Sum of the durations in ms.
    pub total: f64,
}

/// What `GET /api/performance/metrics` returns:
/// `{ operations: [{ name, count, avg, min, max, total }], totalTime, avgWorktreeCreation }`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// One entry per operation name, largest total first (ties: by name).
    pub operations: Vec<MetricsOperation>,
    /// Sum of the durations of root operations (started without a parent), in ms; nested
    /// operations are not counted twice. Same value as [`Report::total_duration`].
    pub total_time: f64,
    /// Average duration of the operation named `create-worktree-total`, or `null` when none ended.
    pub avg_worktree_creation: Option<f64>,
}
