//! `vt_optimizer`: runs C tasks as a dependency graph (each starts as soon as its dependencies are
//! done), on the core's scheduler. A C task is a function pointer plus userdata; its output is JSON.

use crate::args::{
    into_c_string, optional_json, optional_out, required_out, required_ref, required_slice,
    required_str,
};
use crate::boundary::{Failure, FfiResult, ffi_call, ffi_call_or};
use crate::gate::{CallGate, UserData};
use crate::profiler::vt_profiler;
use crate::result::vt_result;
use serde::Deserialize;
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Arc;
use vibetrees_core::optimizer::{
    FailurePolicy, GraphRun, OptimizerOptions, PerformanceOptimizer, Task, TaskBody, TaskError,
    TaskFuture, TaskInputs, blocking_future,
};

/// A task graph runner (opaque). Thread-safe: several threads may run graphs on one optimizer at
/// once; `vt_optimizer_free` must not race with other calls on the same handle.
pub struct vt_optimizer {
    inner: PerformanceOptimizer,
}

/// What a running C task writes its output or error into (opaque). Valid only during the task
/// function's call, and only on the thread that runs it.
pub struct vt_task_context {
    output: Option<String>,
    error: Option<String>,
    bad_output: Option<String>,
}

/// The body of a C task.
///
/// Called with the task's `userdata`, the JSON object of its dependencies' outputs keyed by task
/// name (`"{}"` without dependencies; an optional dependency that failed is left out), and a
/// context for `vt_task_set_output` / `vt_task_set_error`. Return 0 (`VT_OK`) for success (the
/// output is what `vt_task_set_output` set, or JSON `null`), anything else for failure (the
/// message is what `vt_task_set_error` set, or one naming the returned value).
///
/// Threads: it is called on a worker thread of the library (never on the thread that called
/// `vt_optimizer_run_*`), at most once per run; tasks without a dependency path between them may
/// run at the same time on different threads (up to the optimizer's `concurrency`), so state
/// shared through `userdata` needs its own locking. It may block, and may call `vt_` functions.
/// It must return normally: no `longjmp` out of it, no C++ exception thrown through it (the
/// library's frames are not unwound; a foreign exception crossing them aborts the process).
/// `inputs_json` and `ctx` are valid only during the call.
pub type vt_task_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        inputs_json: *const c_char,
        ctx: *mut vt_task_context,
    ) -> c_int,
>;

/// One task of a graph, as C describes it. The strings and the dependency array are read during
/// the `vt_optimizer_*` call only (they are copied); `userdata` must stay valid until that call
/// returns: when it returns, no task function is running or will be called any more.
/// The same struct describes a worktree manager's host steps (`vt_worktree_manager_new`); their
/// `userdata` must stay valid until `vt_worktree_manager_free` returns.
#[repr(C)]
pub struct vt_task {
    /// The task's name (UTF-8, unique within a graph); also its profiler span name.
    pub name: *const c_char,
    /// The names of the tasks whose outputs it needs; NULL when `dependency_count` is 0.
    pub dependencies: *const *const c_char,
    /// How many names `dependencies` holds.
    pub dependency_count: usize,
    /// When true, its failure is reported but does not fail the graph, and its dependents run.
    pub optional: bool,
    /// The function to run (must not be NULL).
    pub run: vt_task_fn,
    /// Passed to `run` as is; may be NULL.
    pub userdata: *mut c_void,
}

/// The options JSON of `vt_optimizer_new`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OptimizerJsonOptions {
    concurrency: Option<usize>,
    failure_policy: Option<FailurePolicy>,
    parent_span: Option<String>,
}

/// Makes an optimizer. `options_json` may be NULL (defaults) or a JSON object
/// `{ "concurrency": 4, "failurePolicy": "stop" | "continue", "parentSpan": "op-3" }` (all optional:
/// no concurrency limit; `stop` starts nothing new after a failure; task spans are children of
/// `parentSpan`). `profiler` may be NULL; otherwise every task is recorded there as a span (the
/// optimizer keeps the profiler alive: the handle may be freed first).
/// On success `*optimizer_out` receives the handle; free it with `vt_optimizer_free`.
/// Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`, `VT_PARSE` (bad JSON, unknown key or policy),
/// `VT_INVALID_ARGUMENT` (concurrency 0).
///
/// # Safety
/// `options_json` is NULL or NUL-terminated; `profiler` is NULL or a live handle;
/// `optimizer_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_optimizer_new(
    options_json: *const c_char,
    profiler: *const vt_profiler,
    optimizer_out: *mut *mut vt_optimizer,
) -> vt_result {
    ffi_call(|| {
        let out = unsafe { required_out(optimizer_out, "optimizer_out") }?;
        let opts: OptimizerJsonOptions = unsafe { optional_json(options_json, "options_json") }?;
        // SAFETY: NULL or a live handle (caller's contract).
        let profiler = unsafe { profiler.as_ref() }.map(|p| Arc::clone(&p.inner));
        let inner = PerformanceOptimizer::new(OptimizerOptions {
            profiler,
            concurrency: opts.concurrency,
            failure_policy: opts.failure_policy.unwrap_or_default(),
            parent_span: opts.parent_span,
            cancel: None,
        })?;
        *out = Box::into_raw(Box::new(vt_optimizer { inner }));
        Ok(())
    })
}

/// Frees an optimizer. `NULL` is a no-op.
///
/// # Safety
/// `optimizer` is NULL or a handle from `vt_optimizer_new`, not yet freed, not in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_optimizer_free(optimizer: *mut vt_optimizer) {
    ffi_call_or((), || {
        if !optimizer.is_null() {
            // SAFETY: from `Box::into_raw` in `vt_optimizer_new`.
            drop(unsafe { Box::from_raw(optimizer) });
        }
    })
}

/// Sets the output of the running task: `output_json` must be valid JSON (it is copied). Calling
/// it again replaces the output. Invalid JSON returns `VT_PARSE` and makes the task fail whatever
/// it returns, with a message saying so.
/// Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`, `VT_PARSE`.
///
/// # Safety
/// `ctx` is the context the task function received, during that call; `output_json` is
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_task_set_output(
    ctx: *mut vt_task_context,
    output_json: *const c_char,
) -> vt_result {
    ffi_call(|| {
        let ctx = unsafe { required_out(ctx, "ctx") }?;
        let text = match unsafe { required_str(output_json, "output_json") } {
            Ok(t) => t,
            Err(f) => {
                ctx.bad_output = Some(f.message.clone());
                return Err(f);
            }
        };
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
            let f = Failure::from(vibetrees_core::Error::Parse {
                what: "task output".into(),
                message: e.to_string(),
            });
            ctx.bad_output = Some(f.message.clone());
            return Err(f);
        }
        ctx.output = Some(text.to_owned());
        Ok(())
    })
}

/// Sets the error message of the running task (copied), used when the task function returns
/// non-zero. Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `ctx` is the context the task function received, during that call; `message` is
/// NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_task_set_error(
    ctx: *mut vt_task_context,
    message: *const c_char,
) -> vt_result {
    ffi_call(|| {
        let ctx = unsafe { required_out(ctx, "ctx") }?;
        let message = unsafe { required_str(message, "message") }?;
        ctx.error = Some(message.to_owned());
        Ok(())
    })
}

/// Runs independent tasks (no dependencies allowed; names need not be unique) and, on success,
/// gives their outputs as a JSON array in input order in `*results_json_out` (free it with
/// `vt_string_free`). Blocks until every started task has finished.
/// Errors: `VT_TASK_FAILED` (the first task to fail, by its own message; under the `stop` policy
/// nothing new starts after it), `VT_INVALID_ARGUMENT` (a task with dependencies), `VT_NULL_ARGUMENT`
/// (optimizer, tasks with count > 0, a name, a `run`, results_json_out), `VT_INVALID_UTF8`.
/// `count` may be 0 (the result is `[]`).
///
/// # Safety
/// `optimizer` is a live handle; `tasks` points to `count` valid `vt_task`s (see `vt_task`);
/// `results_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_optimizer_run_parallel(
    optimizer: *const vt_optimizer,
    tasks: *const vt_task,
    count: usize,
    results_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let opt = unsafe { required_ref(optimizer, "optimizer") }?;
        let specs = unsafe { required_slice(tasks, count, "tasks") }?;
        let out = unsafe { required_out(results_json_out, "results_json_out") }?;
        let gate = Arc::new(CallGate::default());
        let tasks = unsafe { c_tasks(specs, &gate) }?;
        let result = opt.inner.run_parallel_blocking(tasks);
        gate.close_and_wait();
        let outputs = result?;
        let mut json = String::from("[");
        for (i, o) in outputs.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(o);
        }
        json.push(']');
        *out = into_c_string(json)?;
        Ok(())
    })
}

/// Runs a dependency graph: each task starts as soon as all of its dependencies are done, and
/// receives their outputs. The graph is checked before anything runs. On success
/// `*results_json_out` receives a JSON object mapping each task that produced an output to it (in
/// input order), and, if `report_json_out` is not NULL, `*report_json_out` the run report
/// `{ success, cancelled, failedTask, totalMs, criticalPath, criticalPathMs, tasks: [{ name,
/// status, optional, dependencies, startMs, endMs, durationMs, error, reason, spanId }] }`
/// (free both with `vt_string_free`). Blocks until every started task has finished.
/// Errors: `VT_CYCLE` (the message shows the path `a -> b -> a`), `VT_INVALID_GRAPH` (duplicate
/// name, unknown or self dependency), `VT_TASK_FAILED` (the first non-optional task to fail),
/// `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`. For the report of a failed run use `vt_optimizer_run_graph`.
///
/// # Safety
/// As `vt_optimizer_run_parallel`; `report_json_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_optimizer_run_with_dependencies(
    optimizer: *const vt_optimizer,
    tasks: *const vt_task,
    count: usize,
    results_json_out: *mut *mut c_char,
    report_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let opt = unsafe { required_ref(optimizer, "optimizer") }?;
        let specs = unsafe { required_slice(tasks, count, "tasks") }?;
        let out = unsafe { required_out(results_json_out, "results_json_out") }?;
        let report_out = unsafe { optional_out(report_json_out) };
        let gate = Arc::new(CallGate::default());
        let tasks = unsafe { c_tasks(specs, &gate) }?;
        let result = opt.inner.run_with_dependencies_blocking(tasks);
        gate.close_and_wait();
        let run = result?;
        // Both strings are made before either is handed out, so a failure leaks nothing.
        let results = c_string(results_json_text(&run))?;
        let report = match report_out {
            Some(slot) => Some((slot, c_string(run.to_json())?)),
            None => None,
        };
        *out = results.into_raw();
        if let Some((slot, report)) = report {
            *slot = report.into_raw();
        }
        Ok(())
    })
}

/// Runs a dependency graph like `vt_optimizer_run_with_dependencies`, but a failed task does not
/// fail the call: on success (the graph was valid and ran) `*run_json_out` receives
/// `{ "results": { name: output, ... }, "report": <run report> }` (free it with `vt_string_free`),
/// whose `report.success`, `report.failedTask` and per-task `error`s tell what failed.
/// Errors: `VT_CYCLE`, `VT_INVALID_GRAPH`, `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// As `vt_optimizer_run_parallel`, with `run_json_out` valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_optimizer_run_graph(
    optimizer: *const vt_optimizer,
    tasks: *const vt_task,
    count: usize,
    run_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let opt = unsafe { required_ref(optimizer, "optimizer") }?;
        let specs = unsafe { required_slice(tasks, count, "tasks") }?;
        let out = unsafe { required_out(run_json_out, "run_json_out") }?;
        let gate = Arc::new(CallGate::default());
        let tasks = unsafe { c_tasks(specs, &gate) }?;
        let result = opt.inner.run_graph_blocking(tasks);
        gate.close_and_wait();
        let run = result?;
        let report = serde_json::to_string(&run.report()).map_err(|e| {
            Failure::new(
                vt_result::VT_INTERNAL,
                format!("internal error: cannot serialize the run report: {e}"),
            )
        })?;
        let results = results_json_text(&run);
        *out = into_c_string(format!("{{\"results\":{results},\"report\":{report}}}"))?;
        Ok(())
    })
}

/// Checks a graph without running anything and gives its plan JSON `{ tasks: [{ name,
/// dependencies, optional, level }], order, levels, longestChain }` in `*plan_json_out` (free it
/// with `vt_string_free`); task functions are not called (`run` may be NULL here).
/// Errors: `VT_CYCLE` (with the path), `VT_INVALID_GRAPH`, `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// As `vt_optimizer_run_parallel`, with `plan_json_out` valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_optimizer_plan(
    optimizer: *const vt_optimizer,
    tasks: *const vt_task,
    count: usize,
    plan_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let opt = unsafe { required_ref(optimizer, "optimizer") }?;
        let specs = unsafe { required_slice(tasks, count, "tasks") }?;
        let out = unsafe { required_out(plan_json_out, "plan_json_out") }?;
        let gate = Arc::new(CallGate::default());
        gate.close_and_wait(); // a plan never calls a task
        let tasks = unsafe { task_list(specs, &gate, false) }?;
        let plan = opt.inner.dry_run(&tasks)?;
        *out = into_c_string(plan.to_json())?;
        Ok(())
    })
}

/// The JSON object `{ name: output }` of the tasks that produced an output, in input order.
fn results_json_text(run: &GraphRun<String>) -> String {
    let mut json = String::from("{");
    for (i, (name, output)) in run.results().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&serde_json::to_string(name).expect("a string serializes"));
        json.push(':');
        json.push_str(output);
    }
    json.push('}');
    json
}

/// `text` as an owned C string (JSON never holds a NUL byte).
fn c_string(text: String) -> FfiResult<CString> {
    CString::new(text).map_err(|_| {
        Failure::new(
            vt_result::VT_INTERNAL,
            "internal error: a result holds a NUL byte",
        )
    })
}

/// Tasks whose bodies call the C functions, through `gate`.
///
/// # Safety
/// Every `vt_task` is valid as documented on [`vt_task`].
unsafe fn c_tasks(specs: &[vt_task], gate: &Arc<CallGate>) -> FfiResult<Vec<Task<String>>> {
    unsafe { task_list(specs, gate, true) }
}

/// Reads the C task descriptions; `need_run` requires a non-NULL `run` in each.
///
/// # Safety
/// Every `vt_task` is valid as documented on [`vt_task`].
unsafe fn task_list(
    specs: &[vt_task],
    gate: &Arc<CallGate>,
    need_run: bool,
) -> FfiResult<Vec<Task<String>>> {
    let mut tasks = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let name = unsafe { required_str(spec.name, &format!("tasks[{i}].name")) }?;
        let dep_ptrs = unsafe {
            required_slice(
                spec.dependencies,
                spec.dependency_count,
                &format!("tasks[{i}].dependencies"),
            )
        }?;
        let mut dependencies = Vec::with_capacity(dep_ptrs.len());
        for (j, d) in dep_ptrs.iter().enumerate() {
            let dep = unsafe { required_str(*d, &format!("tasks[{i}].dependencies[{j}]")) }?;
            dependencies.push(dep.to_owned());
        }
        let run = match spec.run {
            Some(f) => Some(f),
            None if need_run => return Err(Failure::null(&format!("tasks[{i}].run ('{name}')"))),
            None => None,
        };
        let body = CTaskBody {
            name: name.to_owned(),
            run,
            userdata: UserData(spec.userdata),
            gate: Arc::clone(gate),
        };
        tasks
            .push(Task::from_body(name, dependencies, Arc::new(body)).with_optional(spec.optional));
    }
    Ok(tasks)
}

/// A [`TaskBody`] that calls a C task function on a blocking worker thread.
struct CTaskBody {
    name: String,
    run: vt_task_fn,
    userdata: UserData,
    gate: Arc<CallGate>,
}

impl TaskBody<String> for CTaskBody {
    fn run(&self, inputs: TaskInputs<String>) -> TaskFuture<String> {
        let mut inputs_json = String::from("{");
        for (i, (name, output)) in inputs.iter().enumerate() {
            if i > 0 {
                inputs_json.push(',');
            }
            inputs_json.push_str(&serde_json::to_string(name).expect("a string serializes"));
            inputs_json.push(':');
            inputs_json.push_str(output);
        }
        inputs_json.push('}');
        let run = self.run;
        let userdata = self.userdata;
        let gate = Arc::clone(&self.gate);
        let name = self.name.clone();
        blocking_future(move || {
            let Some(_ticket) = gate.enter() else {
                return Err(TaskError::with_code(
                    "CANCELLED",
                    format!("task '{name}' was not started: its run had already returned"),
                ));
            };
            let Some(f) = run else {
                return Err(TaskError::with_code(
                    "NULL_ARGUMENT",
                    format!("task '{name}' has no function"),
                ));
            };
            call_c_task(f, userdata, &inputs_json)
        })
    }
}

/// Calls the C function and turns what it did into the task's result (its output JSON text).
pub(crate) fn call_c_task(
    f: unsafe extern "C" fn(*mut c_void, *const c_char, *mut vt_task_context) -> c_int,
    userdata: UserData,
    inputs_json: &str,
) -> Result<String, TaskError> {
    // Inputs are JSON built from validated JSON texts and serialized names: no interior NUL.
    let inputs = CString::new(inputs_json)
        .map_err(|_| TaskError::with_code("INTERNAL", "task inputs hold a NUL byte"))?;
    let mut ctx = vt_task_context {
        output: None,
        error: None,
        bad_output: None,
    };
    // SAFETY: the C contract of `vt_task_fn`; `inputs` and `ctx` outlive the call.
    let rc = unsafe { f(userdata.get(), inputs.as_ptr(), &mut ctx) };
    if let Some(bad) = ctx.bad_output {
        return Err(TaskError::with_code("PARSE", bad));
    }
    if rc == 0 {
        return Ok(ctx.output.unwrap_or_else(|| "null".to_owned()));
    }
    let code = u32::try_from(rc)
        .ok()
        .and_then(vt_result::from_u32)
        .map(vt_result::code);
    let message = ctx.error.unwrap_or_else(|| match code {
        Some(c) => format!("the task function returned {rc} ({c})"),
        None => format!("the task function returned {rc}"),
    });
    Err(match code {
        Some(c) => TaskError::with_code(c, message),
        None => TaskError::new(message),
    })
}
