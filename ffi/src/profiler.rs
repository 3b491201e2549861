//! `vt_profiler`: timed, nested operations with per-name statistics, metrics and a Chrome trace.

use crate::args::{
    into_c_string, json_c_string, optional_json, optional_out, optional_str, required_out,
    required_ref, required_str,
};
use crate::boundary::{Failure, ffi_call, ffi_call_or};
use crate::result::vt_result;
use serde::Deserialize;
use std::ffi::c_char;
use std::sync::Arc;
use vibetrees_core::Profiler;
use vibetrees_core::profiler::ProfilerConfig;

/// A profiler (opaque). Thread-safe: one handle may be used from many threads at once, except
/// `vt_profiler_free`, which must not race with other calls on the same handle.
pub struct vt_profiler {
    pub(crate) inner: Arc<Profiler>,
}

impl vt_profiler {
    /// A new handle sharing `profiler` (as returned for a worktree manager's profiler).
    pub(crate) fn share(profiler: Arc<Profiler>) -> *mut vt_profiler {
        Box::into_raw(Box::new(vt_profiler { inner: profiler }))
    }
}

/// The options JSON of `vt_profiler_new`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProfilerOptions {
    max_results: Option<usize>,
    max_names: Option<usize>,
}

/// Makes a profiler. `options_json` may be NULL (defaults) or a JSON object
/// `{ "maxResults": 10000, "maxNames": 4096 }` (both optional): how many ended operations are kept
/// for `vt_profiler_result` and the trace, and how many distinct names get statistics of their own.
/// On success `*profiler_out` receives the handle; free it with `vt_profiler_free`.
/// Errors: `VT_NULL_ARGUMENT` (profiler_out), `VT_INVALID_UTF8`, `VT_PARSE` (bad JSON or unknown key).
///
/// # Safety
/// `options_json` is NULL or a NUL-terminated string; `profiler_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_new(
    options_json: *const c_char,
    profiler_out: *mut *mut vt_profiler,
) -> vt_result {
    ffi_call(|| {
        let out = unsafe { required_out(profiler_out, "profiler_out") }?;
        let opts: ProfilerOptions = unsafe { optional_json(options_json, "options_json") }?;
        let defaults = ProfilerConfig::default();
        let config = ProfilerConfig {
            max_results: opts.max_results.unwrap_or(defaults.max_results),
            max_names: opts.max_names.unwrap_or(defaults.max_names),
        };
        *out = vt_profiler::share(Arc::new(Profiler::with_config(config)));
        Ok(())
    })
}

/// Frees a profiler handle. `NULL` is a no-op. Handles that share one profiler (see
/// `vt_worktree_manager_profiler`) keep it alive until the last one is freed.
///
/// # Safety
/// `profiler` is NULL or a handle from this library, not yet freed, not in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_free(profiler: *mut vt_profiler) {
    ffi_call_or((), || {
        if !profiler.is_null() {
            // SAFETY: the handle came from `Box::into_raw` in `vt_profiler::share`.
            drop(unsafe { Box::from_raw(profiler) });
        }
    })
}

/// Starts an operation named `name`, under the running operation `parent_id` when that is not NULL.
/// On success `*id_out` receives the new id (e.g. `"op-17"`; free it with `vt_string_free`).
/// Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`, `VT_NOT_FOUND` (parent unknown or ended: nothing
/// is started).
///
/// # Safety
/// `profiler` is a live handle; strings are NUL-terminated; `id_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_start(
    profiler: *const vt_profiler,
    name: *const c_char,
    parent_id: *const c_char,
    id_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let name = unsafe { required_str(name, "name") }?;
        let parent = unsafe { optional_str(parent_id, "parent_id") }?;
        let out = unsafe { required_out(id_out, "id_out") }?;
        let id = p.inner.start(name, parent)?;
        *out = into_c_string(id)?;
        Ok(())
    })
}

/// Ends the running operation `id` as succeeded. If `result_json_out` is not NULL it receives the
/// OperationResult JSON `{ id, name, duration, startTime, endTime, children, failed, ... }`
/// (milliseconds; free it with `vt_string_free`).
/// Errors: `VT_NOT_FOUND` naming the id when it is unknown or already ended; `VT_NULL_ARGUMENT`,
/// `VT_INVALID_UTF8`.
///
/// # Safety
/// `profiler` is a live handle; `id` is NUL-terminated; `result_json_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_end(
    profiler: *const vt_profiler,
    id: *const c_char,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let id = unsafe { required_str(id, "id") }?;
        let result = p.inner.end(id)?;
        if let Some(out) = unsafe { optional_out(result_json_out) } {
            *out = json_c_string(&result)?;
        }
        Ok(())
    })
}

/// Ends the running operation `id` as failed with the message `error` (counted as a failure in the
/// name's statistics). `result_json_out` as in `vt_profiler_end` (its `failed` is true and `error`
/// holds the message). Errors as `vt_profiler_end`.
///
/// # Safety
/// As `vt_profiler_end`; `error` is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_end_failed(
    profiler: *const vt_profiler,
    id: *const c_char,
    error: *const c_char,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let id = unsafe { required_str(id, "id") }?;
        let error = unsafe { required_str(error, "error") }?;
        let result = p.inner.end_failed(id, error)?;
        if let Some(out) = unsafe { optional_out(result_json_out) } {
            *out = json_c_string(&result)?;
        }
        Ok(())
    })
}

/// Sets `*running_out` to whether `id` names an operation that started and has not ended
/// (an unknown id is simply not running). Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `profiler` is a live handle; `id` is NUL-terminated; `running_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_is_running(
    profiler: *const vt_profiler,
    id: *const c_char,
    running_out: *mut bool,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let id = unsafe { required_str(id, "id") }?;
        let out = unsafe { required_out(running_out, "running_out") }?;
        *out = p.inner.is_running(id);
        Ok(())
    })
}

/// Gives the OperationResult JSON of the ended operation `id` in `*result_json_out` (free it with
/// `vt_string_free`). Errors: `VT_NOT_FOUND` when `id` is unknown, still running, or evicted from
/// the kept results; `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `profiler` is a live handle; `id` is NUL-terminated; `result_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_result(
    profiler: *const vt_profiler,
    id: *const c_char,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let id = unsafe { required_str(id, "id") }?;
        let out = unsafe { required_out(result_json_out, "result_json_out") }?;
        let result = p.inner.get_result(id).ok_or_else(|| {
            let why = if p.inner.is_running(id) {
                "it is still running"
            } else {
                "it is unknown or no longer among the kept results"
            };
            Failure::from(vibetrees_core::Error::NotFound(format!(
                "no ended operation '{id}': {why}"
            )))
        })?;
        *out = json_c_string(&result)?;
        Ok(())
    })
}

/// Gives the statistics of the operations named `name` as JSON
/// `{ name, count, failures, avg, min, max, total, p50, p95, p99 }` (ms) in `*stats_json_out`
/// (free it with `vt_string_free`). Errors: `VT_NOT_FOUND` when no operation of that name has
/// ended; `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `profiler` is a live handle; `name` is NUL-terminated; `stats_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_stats(
    profiler: *const vt_profiler,
    name: *const c_char,
    stats_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let name = unsafe { required_str(name, "name") }?;
        let out = unsafe { required_out(stats_json_out, "stats_json_out") }?;
        let stats = p.inner.get_stats(name).ok_or_else(|| {
            Failure::from(vibetrees_core::Error::NotFound(format!(
                "no ended operation named '{name}'"
            )))
        })?;
        *out = json_c_string(&stats)?;
        Ok(())
    })
}

/// Gives the report JSON `{ operations: [stats, largest total first], totalDuration }` in
/// `*report_json_out` (free it with `vt_string_free`). Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `profiler` is a live handle; `report_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_report(
    profiler: *const vt_profiler,
    report_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let out = unsafe { required_out(report_json_out, "report_json_out") }?;
        *out = json_c_string(&p.inner.generate_report())?;
        Ok(())
    })
}

/// Gives the server's metrics JSON `{ operations: [{ name, count, avg, min, max, total }],
/// totalTime, avgWorktreeCreation }` (`avgWorktreeCreation` is null until an operation named
/// `create-worktree-total` ended) in `*metrics_json_out` (free it with `vt_string_free`).
/// Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `profiler` is a live handle; `metrics_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_metrics(
    profiler: *const vt_profiler,
    metrics_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let out = unsafe { required_out(metrics_json_out, "metrics_json_out") }?;
        *out = json_c_string(&p.inner.metrics())?;
        Ok(())
    })
}

/// Gives the kept ended operations as a Chrome Trace Event Format JSON document (opens in
/// Perfetto or chrome://tracing) in `*trace_json_out` (free it with `vt_string_free`).
/// Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `profiler` is a live handle; `trace_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_chrome_trace(
    profiler: *const vt_profiler,
    trace_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let out = unsafe { required_out(trace_json_out, "trace_json_out") }?;
        *out = into_c_string(p.inner.to_chrome_trace())?;
        Ok(())
    })
}

/// Sets `*ms_out` to the milliseconds since the profiler was made (monotonic clock; the time base
/// of every `startTime` / `endTime`). Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `profiler` is a live handle; `ms_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_now_ms(
    profiler: *const vt_profiler,
    ms_out: *mut f64,
) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        let out = unsafe { required_out(ms_out, "ms_out") }?;
        *out = p.inner.now_ms();
        Ok(())
    })
}

/// Forgets every ended result and all statistics; running operations keep running.
/// Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `profiler` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_profiler_clear(profiler: *const vt_profiler) -> vt_result {
    ffi_call(|| {
        let p = unsafe { required_ref(profiler, "profiler") }?;
        p.inner.clear();
        Ok(())
    })
}
