//! `Profiler`: the core's profiler as a JS class. Every method is synchronous and cheap (no JSON
//! round trip): `start`/`end` convert only the strings and the result object.

use std::sync::Arc;

use napi::Env;
use napi::bindgen_prelude::{Either, External, Float64Array};
use napi_derive::napi;
use vibetrees_core::profiler as core;

use crate::errors::{core_error, invalid_argument};

/// One ended operation: `{ id, name, duration, startTime, endTime, children }` plus
/// `parentId`, `failed` and `error` when they apply. Times are ms since the profiler was made.
#[napi(object)]
pub struct OperationResult {
    /// The id `start` returned, e.g. `op-17`.
    pub id: String,
    /// The operation's name.
    pub name: String,
    /// `endTime - startTime`, in ms.
    pub duration: f64,
    /// Start, in ms since the profiler was made.
    pub start_time: f64,
    /// End, in ms since the profiler was made.
    pub end_time: f64,
    /// The children that had ended when this operation ended, in start order.
    pub children: Vec<OperationResult>,
    /// The parent's id, for a nested operation.
    pub parent_id: Option<String>,
    /// True when ended with `endFailed`.
    pub failed: bool,
    /// The message given to `endFailed`.
    pub error: Option<String>,
}

impl From<core::OperationResult> for OperationResult {
    fn from(r: core::OperationResult) -> Self {
        Self {
            id: r.id,
            name: r.name,
            duration: r.duration,
            start_time: r.start_time,
            end_time: r.end_time,
            children: r.children.into_iter().map(Into::into).collect(),
            parent_id: r.parent_id,
            failed: r.failed,
            error: r.error,
        }
    }
}

/// Statistics of every ended operation of one name (ms).
#[napi(object)]
pub struct OperationStats {
    /// The operation name.
    pub name: String,
    /// How many ended.
    pub count: f64,
    /// How many of them ended as failed.
    pub failures: f64,
    /// Mean duration.
    pub avg: f64,
    /// Shortest duration.
    pub min: f64,
    /// Longest duration.
    pub max: f64,
    /// Sum of the durations.
    pub total: f64,
    /// Median (DDSketch, at most 0.5% relative error).
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl From<core::OperationStats> for OperationStats {
    fn from(s: core::OperationStats) -> Self {
        Self {
            name: s.name,
            count: s.count as f64,
            failures: s.failures as f64,
            avg: s.avg,
            min: s.min,
            max: s.max,
            total: s.total,
            p50: s.p50,
            p95: s.p95,
            p99: s.p99,
        }
    }
}

/// `generateReport()`: every name's statistics, largest total first.
#[napi(object)]
pub struct Report {
    /// Statistics per operation name, sorted by `total`, largest first.
    pub operations: Vec<OperationStats>,
    /// Sum of the durations of root operations, in ms.
    pub total_duration: f64,
}

/// One entry of `Metrics.operations`.
#[napi(object)]
pub struct MetricsOperation {
    /// The operation name.
    pub name: String,
    /// How many ended.
    pub count: f64,
    /// Mean duration, ms.
    pub avg: f64,
    /// Shortest duration, ms.
    pub min: f64,
    /// Longest duration, ms.
    pub max: f64,
    /// Sum of the durations, ms.
    pub total: f64,
}

/// What `GET /api/performance/metrics` returns.
#[napi(object, use_nullable = true)]
pub struct Metrics {
    /// One entry per operation name, largest total first.
    pub operations: Vec<MetricsOperation>,
    /// Sum of the durations of root operations, ms.
    pub total_time: f64,
    /// Average of `create-worktree-total`, or null when none ended.
    pub avg_worktree_creation: Option<f64>,
}

impl From<core::Metrics> for Metrics {
    fn from(m: core::Metrics) -> Self {
        Self {
            operations: m
                .operations
                .into_iter()
                .map(|o| MetricsOperation {
                    name: o.name,
                    count: o.count as f64,
                    avg: o.avg,
                    min: o.min,
                    max: o.max,
                    total: o.total,
                })
                .collect(),
            total_time: m.total_time,
            avg_worktree_creation: m.avg_worktree_creation,
        }
    }
}

/// Options of `new Profiler(options?)`.
#[napi(object)]
pub struct ProfilerOptions {
    /// How many completed results `getResult` can still find (a sliding window; statistics
    /// cover every operation regardless). Default 10,000.
    pub max_results: Option<u32>,
}

/// The native profiler behind the JS `Profiler` (index.js): `start(name, parentId?)` -> id,
/// `end(id)` -> result; statistics per name in constant memory; a bounded window of results.
///
/// The hot path (`profilerStartRoot` / `profilerEndNum`) passes operation numbers and writes times into a
/// `Float64Array` shared with the wrapper, so a start+end pair of a root operation creates no
/// object and no string on the native side: building objects property by property through
/// Node-API costs far more than the profiler itself.
#[napi(js_name = "NativeProfiler")]
pub struct JsProfiler {
    pub(crate) inner: Arc<core::Profiler>,
}

impl JsProfiler {
    /// Wraps a core profiler shared with other objects (a manager, an optimizer).
    pub(crate) fn from_arc(inner: Arc<core::Profiler>) -> Self {
        Self { inner }
    }
}

/// What the hot-path functions work on: the profiler and the wrapper's times array. Held by the
/// wrapper as an `External`, which is much cheaper to unwrap than a class instance.
pub struct ProfilerHandle {
    inner: Arc<core::Profiler>,
    times: Float64Array,
    /// Names interned by `profilerIntern`, so `profilerStartNamed` takes a number, not a string.
    names: Vec<String>,
}

/// Most names a handle interns; later names go through `profilerStartRoot`.
const MAX_INTERNED_NAMES: usize = 4096;

/// What every operation id starts with (the core's `OperationId::PREFIX`): the wrapper builds
/// `<prefix><number>` on its side of the hot path.
#[napi]
pub fn operation_id_prefix() -> &'static str {
    core::OperationId::PREFIX
}

/// Starts a root operation and returns its number (the id is `op-<number>`).
#[napi(ts_args_type = "handle: ExternalObject<unknown>, name: string")]
pub fn profiler_start_root(
    env: Env,
    handle: &External<ProfilerHandle>,
    name: String,
) -> napi::Result<f64> {
    let id = handle
        .inner
        .start_op(&name, None)
        .map_err(|e| core_error(&env, &e))?;
    Ok(id.get() as f64)
}

/// Interns `name` for `profilerStartNamed` and returns its number, or -1 when the handle holds
/// the most names it interns.
#[napi(ts_args_type = "handle: ExternalObject<unknown>, name: string")]
pub fn profiler_intern(handle: &mut External<ProfilerHandle>, name: String) -> i32 {
    if handle.names.len() >= MAX_INTERNED_NAMES {
        return -1;
    }
    handle.names.push(name);
    (handle.names.len() - 1) as i32
}

/// Starts a root operation named by an interned name number; returns the operation number.
#[napi(ts_args_type = "handle: ExternalObject<unknown>, nameNumber: number")]
pub fn profiler_start_named(
    env: Env,
    handle: &External<ProfilerHandle>,
    name_number: u32,
) -> napi::Result<f64> {
    let Some(name) = handle.names.get(name_number as usize) else {
        return Err(invalid_argument(
            &env,
            format!("unknown interned name {name_number}"),
        ));
    };
    let id = handle
        .inner
        .start_op(name, None)
        .map_err(|e| core_error(&env, &e))?;
    Ok(id.get() as f64)
}

/// Ends operation `op-<n>`. For a root without children that succeeded (the common case),
/// writes `[startTime, endTime, duration]` into the handle's array and returns `0`, or the
/// operation's name when `wantName`; otherwise returns the whole result object.
#[napi(
    ts_args_type = "handle: ExternalObject<unknown>, n: number, wantName: boolean",
    ts_return_type = "number | string | OperationResult"
)]
pub fn profiler_end_num(
    env: Env,
    handle: &mut External<ProfilerHandle>,
    n: f64,
    want_name: bool,
) -> napi::Result<Either<Either<u32, String>, OperationResult>> {
    let result = handle
        .inner
        .end_op(core::OperationId::new(n as u64))
        .map_err(|e| core_error(&env, &e))?;
    let simple = result.children.is_empty()
        && result.parent_id.is_none()
        && !result.failed
        && result.running_children.is_empty();
    if !simple {
        return Ok(Either::B(result.into()));
    }
    // SAFETY: called on the JS thread, the only one touching the array.
    let slots = unsafe { handle.times.as_mut() };
    slots[0] = result.start_time;
    slots[1] = result.end_time;
    slots[2] = result.duration;
    Ok(Either::A(if want_name {
        Either::B(result.name)
    } else {
        Either::A(0)
    }))
}

#[napi]
impl JsProfiler {
    /// A new profiler.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<ProfilerOptions>) -> napi::Result<Self> {
        let inner = match options.and_then(|o| o.max_results) {
            None => core::Profiler::new(),
            Some(0) => return Err(invalid_argument(&env, "maxResults must be at least 1")),
            Some(n) => core::Profiler::with_config(core::ProfilerConfig {
                max_results: n as usize,
                ..Default::default()
            }),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The handle of the hot path (`profilerStartRoot` / `profilerEndNum`), writing times into
    /// `times` (a `Float64Array` of at least 3 slots owned by the wrapper).
    #[napi(ts_return_type = "ExternalObject<unknown>")]
    pub fn fast_handle(
        &self,
        env: Env,
        times: Float64Array,
    ) -> napi::Result<External<ProfilerHandle>> {
        if times.len() < 3 {
            return Err(invalid_argument(&env, "the times array needs 3 slots"));
        }
        Ok(External::new(ProfilerHandle {
            inner: self.inner.clone(),
            times,
            names: Vec::new(),
        }))
    }

    /// Starts an operation (under `parentId` if given) and returns its id.
    #[napi]
    pub fn start(&self, env: Env, name: String, parent_id: Option<String>) -> napi::Result<String> {
        self.inner
            .start(&name, parent_id.as_deref())
            .map_err(|e| core_error(&env, &e))
    }

    /// Ends an operation and returns its result. An unknown or already ended id throws
    /// (`code: 'NOT_FOUND'`, the message names the id).
    #[napi]
    pub fn end(&self, env: Env, id: String) -> napi::Result<OperationResult> {
        self.inner
            .end(&id)
            .map(Into::into)
            .map_err(|e| core_error(&env, &e))
    }

    /// Ends an operation as failed with `error` as its message.
    #[napi]
    pub fn end_failed(&self, env: Env, id: String, error: String) -> napi::Result<OperationResult> {
        self.inner
            .end_failed(&id, &error)
            .map(Into::into)
            .map_err(|e| core_error(&env, &e))
    }

    /// True while the operation is started and not ended.
    #[napi]
    pub fn is_running(&self, id: String) -> bool {
        self.inner.is_running(&id)
    }

    /// The result of an ended operation still in the window, or null.
    #[napi]
    pub fn get_result(&self, id: String) -> Option<OperationResult> {
        self.inner.get_result(&id).map(Into::into)
    }

    /// Statistics of every ended operation named `name`, or null if none ended.
    #[napi]
    pub fn get_stats(&self, name: String) -> Option<OperationStats> {
        self.inner.get_stats(&name).map(Into::into)
    }

    /// Every name's statistics, largest total first, and the total duration of root operations.
    #[napi]
    pub fn generate_report(&self) -> Report {
        let report = self.inner.generate_report();
        Report {
            operations: report.operations.into_iter().map(Into::into).collect(),
            total_duration: report.total_duration,
        }
    }

    /// The `/api/performance/metrics` shape: `{ operations, totalTime, avgWorktreeCreation }`.
    #[napi]
    pub fn get_metrics(&self) -> Metrics {
        self.inner.metrics().into()
    }

    /// The completed operations as Trace Event Format JSON (Perfetto, chrome://tracing).
    #[napi]
    pub fn to_chrome_trace(&self) -> String {
        self.inner.to_chrome_trace()
    }

    /// Milliseconds since the profiler was made (monotonic clock).
    #[napi]
    pub fn now(&self) -> f64 {
        self.inner.now_ms()
    }

    /// Forgets every running and completed operation and every statistic.
    #[napi]
    pub fn clear(&self) {
        self.inner.clear()
    }
}
