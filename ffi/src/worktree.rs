//! `vt_worktree_manager`: creates, lists and removes the git worktrees of one Node project
//! (`vt_create_worktree_optimized`), with progress events to a C callback.

use crate::args::required_slice;
use crate::args::{json_c_string, optional_str, required_out, required_ref, required_str};
use crate::boundary::{Failure, FfiResult, ffi_call, ffi_call_or};
use crate::gate::{CallGate, UserData};
use crate::optimizer::{call_c_task, vt_task};
use crate::profiler::vt_profiler;
use crate::result::vt_result;
use std::ffi::{CString, c_char, c_void};
use std::sync::{Arc, Mutex};
use vibetrees_core::optimizer::{TaskError, blocking_future};
use vibetrees_core::progress::{ProgressEvent, ProgressSink};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{
    CancellationToken, HostStep, HostStepFn, HostStepInput, WorktreeManager, WorktreeOptions,
    WorktreeSettings,
};

/// The worktree manager of one project (opaque). Thread-safe: several threads may create worktrees
/// with one manager at once; `vt_worktree_manager_free` must not race with other calls on it.
pub struct vt_worktree_manager {
    pub(crate) inner: WorktreeManager,
    progress_gate: Arc<CallGate>,
}

/// Receives progress events as JSON `{ "name": "<worktree>", "step": "git" | "ports" | "mcp" |
/// "install" | "bootstrap" | "containers" | "database" | "complete" | "error" | ...,
/// "message": "..." }` (a message starting with `✓` marks its step done). `event_json` is valid
/// only during the call.
///
/// Threads: called on library worker threads (never on the thread that called a `vt_` function,
/// `complete` and `error` events included), never two calls at once for one manager (events of
/// a step arrive in order). It must return quickly and must not call functions of the same
/// manager. It must return normally: no `longjmp` out of it, no C++ exception thrown through it
/// (the library's frames are not unwound by either: locks stay held, memory leaks, and a foreign
/// exception crossing an `extern "C"` Rust frame aborts the process). Background work after a
/// creation (cache populate, non-critical services) may still send events after
/// `vt_create_worktree_optimized` returns; none is sent once
/// `vt_worktree_manager_free` has returned, so `userdata` may be freed then.
pub type vt_progress_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event_json: *const c_char)>;

/// Opens the project whose main git worktree is `rootDir`. `options_json` is a JSON object, the
/// core's worktree settings (the same keys as the Node and Python packages; `null` means the
/// default): `{ "rootDir": "/path/to/project" (required), "worktreeBase": "<rootDir>/.worktrees",
/// "cacheDir": "~/.vibetrees/cache", "composeFile": "docker-compose.yml",
/// "runtime": "auto" | "docker" | "podman" | "none", "criticalServices": ["postgres"],
/// "pushBranch": false, "pushTimeout": 60000 (ms), "useCache": true, "install": true,
/// "cacheMethod": "auto" | "clone" | "clone-or-copy" | "copy" | "hardlink",
/// "installTimeout": 900000 (ms),
/// "restoreWorkers": null (chosen per creation), "historyPath": "~/.vibetrees/history.sqlite",
/// "recordHistory": true, "mcpServers": { "<id>": { "command": "...", "args": [] } },
/// "checkout": "git2" | "cli", "checkoutThreads": null (one per core, at most 8),
/// "gitProgram": "git", "poolSize": 1, "poolMaxBytes": 1073741824,
/// "poolNearMaxChanges": 2000 }` (all but rootDir optional, shown with their defaults). `on_progress` may be NULL; otherwise it gets every progress event with
/// `userdata`, as `vt_progress_fn` says.
///
/// `host_steps` (may be NULL when `host_step_count` is 0) are the host's own steps, run in every
/// creation's graph: each `vt_task` names the built-in steps (`read-inputs`, `git-worktree-add`,
/// `cache-restore`, `compose-services`, `allocate-ports`, `pull-images`, `write-env`,
/// `mcp-discovery`, `npm-bootstrap`, `docker-compose-up`) or other host steps it waits for. Its
/// function receives `{ "name", "path", "branch", "dependencies": { step: result } }` as
/// `inputs_json` and works as `vt_task_fn` says; its output appears in the result's `steps`. A
/// non-optional host step that fails fails the creation. The step descriptions are copied; their
/// `userdata` must stay valid until `vt_worktree_manager_free` returns (no call after that).
///
/// On success `*manager_out` receives the handle; free it with `vt_worktree_manager_free`.
/// Errors: `VT_PARSE` (bad JSON, unknown key, a wrong type, missing rootDir; the message names
/// the key), `VT_INVALID_ARGUMENT` (unknown runtime, a value out of range), `VT_IO` (rootDir cannot be opened), `VT_GIT` / `VT_NOT_FOUND` (not a git repository),
/// `VT_INVALID_GRAPH` (a host step with an unknown dependency or a duplicate name, found at the
/// first creation), `VT_NULL_ARGUMENT` (also a host step's NULL name or function),
/// `VT_INVALID_UTF8`.
///
/// # Safety
/// `options_json` is NUL-terminated; `on_progress`, if not NULL, is safe to call from other
/// threads with `userdata`; `host_steps` points to `host_step_count` valid `vt_task`s;
/// `manager_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_new(
    options_json: *const c_char,
    on_progress: vt_progress_fn,
    userdata: *mut c_void,
    host_steps: *const vt_task,
    host_step_count: usize,
    manager_out: *mut *mut vt_worktree_manager,
) -> vt_result {
    ffi_call(|| {
        // SAFETY: forwarded contract; no profiler.
        unsafe {
            new_manager(
                options_json,
                std::ptr::null(),
                on_progress,
                userdata,
                host_steps,
                host_step_count,
                manager_out,
            )
        }
    })
}

/// `vt_worktree_manager_new`, recording every creation into `profiler` (a handle of the host's,
/// e.g. the profiler its metrics endpoint reads) instead of a profiler of the manager's own.
/// `vt_worktree_manager_profiler` then returns a handle sharing that same profiler. `profiler`
/// stays the caller's: free it with `vt_profiler_free` whenever (the manager keeps the profiler
/// alive while it needs it). Errors: as `vt_worktree_manager_new`; `VT_NULL_ARGUMENT` for a NULL
/// `profiler`.
///
/// # Safety
/// As `vt_worktree_manager_new`; `profiler` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_new_with_profiler(
    options_json: *const c_char,
    profiler: *const vt_profiler,
    on_progress: vt_progress_fn,
    userdata: *mut c_void,
    host_steps: *const vt_task,
    host_step_count: usize,
    manager_out: *mut *mut vt_worktree_manager,
) -> vt_result {
    ffi_call(|| {
        if profiler.is_null() {
            return Err(Failure::null("profiler"));
        }
        // SAFETY: forwarded contract.
        unsafe {
            new_manager(
                options_json,
                profiler,
                on_progress,
                userdata,
                host_steps,
                host_step_count,
                manager_out,
            )
        }
    })
}

/// Both constructors: `profiler` NULL means the manager's own.
///
/// # Safety
/// As `vt_worktree_manager_new`; `profiler` is NULL or a live handle.
unsafe fn new_manager(
    options_json: *const c_char,
    profiler: *const vt_profiler,
    on_progress: vt_progress_fn,
    userdata: *mut c_void,
    host_steps: *const vt_task,
    host_step_count: usize,
    manager_out: *mut *mut vt_worktree_manager,
) -> FfiResult<()> {
    let text = unsafe { required_str(options_json, "options_json") }?;
    let steps = unsafe { required_slice(host_steps, host_step_count, "host_steps") }?;
    let out = unsafe { required_out(manager_out, "manager_out") }?;
    let mut opts = WorktreeOptions::from(WorktreeSettings::from_json(text)?);
    // SAFETY: NULL or a live handle (caller's contract).
    opts.profiler = unsafe { profiler.as_ref() }.map(|p| Arc::clone(&p.inner));
    // One gate for every callback of this manager: closed by vt_worktree_manager_free.
    let progress_gate = Arc::new(CallGate::default());
    if let Some(f) = on_progress {
        opts.on_progress = Some(progress_sink(f, UserData(userdata), &progress_gate));
    }
    opts.host_steps = unsafe { c_host_steps(steps, &progress_gate) }?;
    let inner = WorktreeManager::new(opts)?;
    *out = Box::into_raw(Box::new(vt_worktree_manager {
        inner,
        progress_gate,
    }));
    Ok(())
}

/// The host steps C describes, each calling its C function through `gate`.
///
/// # Safety
/// Every `vt_task` is valid as documented on [`vt_task`].
unsafe fn c_host_steps(specs: &[vt_task], gate: &Arc<CallGate>) -> Result<Vec<HostStep>, Failure> {
    let mut steps = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let name = unsafe { required_str(spec.name, &format!("host_steps[{i}].name")) }?;
        let dep_ptrs = unsafe {
            required_slice(
                spec.dependencies,
                spec.dependency_count,
                &format!("host_steps[{i}].dependencies"),
            )
        }?;
        let mut dependencies = Vec::with_capacity(dep_ptrs.len());
        for (j, d) in dep_ptrs.iter().enumerate() {
            let dep = unsafe { required_str(*d, &format!("host_steps[{i}].dependencies[{j}]")) }?;
            dependencies.push(dep.to_owned());
        }
        let f = spec
            .run
            .ok_or_else(|| Failure::null(&format!("host_steps[{i}].run ('{name}')")))?;
        let userdata = UserData(spec.userdata);
        let gate = Arc::clone(gate);
        let step_name = name.to_owned();
        let body: HostStepFn = Arc::new(move |input: HostStepInput| {
            let gate = Arc::clone(&gate);
            let step_name = step_name.clone();
            let input_json = serde_json::to_string(&input);
            blocking_future(move || {
                let Some(_ticket) = gate.enter() else {
                    return Err(TaskError::with_code(
                        "CANCELLED",
                        format!("host step '{step_name}' was not started: its manager was freed"),
                    ));
                };
                let output = call_c_task(f, userdata, &input_json?)?;
                Ok(serde_json::from_str(&output)?)
            })
        });
        steps.push(HostStep {
            name: name.to_owned(),
            dependencies,
            optional: spec.optional,
            body,
        });
    }
    Ok(steps)
}

/// A progress sink calling `f` with each event as JSON, one call at a time, through `gate`.
fn progress_sink(
    f: unsafe extern "C" fn(*mut c_void, *const c_char),
    userdata: UserData,
    gate: &Arc<CallGate>,
) -> ProgressSink {
    let gate = Arc::clone(gate);
    let one_at_a_time = Arc::new(Mutex::new(()));
    Arc::new(move |event: &ProgressEvent| {
        let Ok(json) = serde_json::to_string(event) else {
            return;
        };
        let Ok(json) = CString::new(json) else {
            return;
        };
        let Some(_ticket) = gate.enter() else {
            return;
        };
        let _serial = one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: the C contract of `vt_progress_fn`; `json` outlives the call.
        unsafe { f(userdata.get(), json.as_ptr()) }
    })
}

/// Frees a manager: first waits for its background work (cache populate, non-critical services,
/// branch push), then stops progress events: after it returns the progress callback is never
/// called again. Worktrees on disk stay. `NULL` is a no-op.
///
/// # Safety
/// `manager` is NULL or a handle from `vt_worktree_manager_new`, not yet freed, not in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_free(manager: *mut vt_worktree_manager) {
    ffi_call_or((), || {
        if manager.is_null() {
            return;
        }
        // SAFETY: from `Box::into_raw` in `vt_worktree_manager_new`.
        let m = unsafe { Box::from_raw(manager) };
        block_on(m.inner.wait_background());
        m.progress_gate.close_and_wait();
        drop(m);
    })
}

/// Creates the worktree of `branch` from the ref `from` (NULL means `"main"`), the whole creation
/// as one dependency graph (git checkout, node_modules from the cache or an install, ports, .env,
/// MCP config, containers). Blocks until the worktree is usable; background work goes on
/// (`vt_worktree_manager_wait_background`). The worktree's name and new branch is the branch name
/// slugged (`Feature/Login Page` -> `feature-login-page`), at `<worktreeBase>/<slug>`.
///
/// On success `*result_json_out` receives the contract's result (free it with `vt_string_free`):
/// `{ "success": true, "worktree": { name, path, branch, from, createdBranch, ports: { service:
/// port }, dockerStatus: [], totalMs, timings, criticalPath, cache: { outcome, ... }, steps,
/// background, creationId } }`, or, when branch, folder and registration all exist already,
/// `{ "success": true, name, path, branch, "existed": true, "message": "Worktree already exists" }`.
/// Errors (nothing is created or left half-made): `VT_INVALID_ARGUMENT` (a name that slugs to
/// nothing, `.`/`..`, or is not a valid ref), `VT_NOT_FOUND` (unknown `from`), `VT_GIT`, `VT_IO`,
/// `VT_PROCESS`, `VT_LOCK`, `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`. An `error` progress event
/// carries the message too.
///
/// # Safety
/// `manager` is a live handle; `branch` and `from` (if not NULL) are NUL-terminated;
/// `result_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_create_worktree_optimized(
    manager: *const vt_worktree_manager,
    branch: *const c_char,
    from: *const c_char,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        // SAFETY: the same contract, without a token.
        unsafe { create_optimized(manager, branch, from, std::ptr::null(), result_json_out) }
    })
}

/// A cancellation token for a creation (opaque): `vt_cancel_token_new`, then
/// `vt_create_worktree_optimized_cancellable(..., token, ...)`, and `vt_cancel_token_cancel`
/// from any thread (a progress callback, a signal-handling thread) to stop that creation. One
/// token may serve several calls; once cancelled it stays cancelled. Free it with
/// `vt_cancel_token_free` once no call uses it.
pub struct vt_cancel_token {
    inner: CancellationToken,
}

/// Makes a cancellation token in `*token_out` (free it with `vt_cancel_token_free`).
/// Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `token_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cancel_token_new(token_out: *mut *mut vt_cancel_token) -> vt_result {
    ffi_call(|| {
        let out = unsafe { required_out(token_out, "token_out") }?;
        *out = Box::into_raw(Box::new(vt_cancel_token {
            inner: CancellationToken::new(),
        }));
        Ok(())
    })
}

/// Cancels every creation given this token: no step starts any more, the running install, image
/// pulls and `compose up` are stopped, and once the running steps ended everything the creation
/// made is undone (containers, ports, registration, folder, the branch if it made it); the
/// creation call then returns `VT_CANCELLED`. Safe to call from any thread, also from a progress
/// callback, and more than once. Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `token` is a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cancel_token_cancel(token: *const vt_cancel_token) -> vt_result {
    ffi_call(|| {
        let t = unsafe { required_ref(token, "token") }?;
        t.inner.cancel();
        Ok(())
    })
}

/// Frees a token. `NULL` is a no-op.
///
/// # Safety
/// `token` is NULL or a token from `vt_cancel_token_new`, not yet freed, used by no running call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cancel_token_free(token: *mut vt_cancel_token) {
    ffi_call_or((), || {
        if !token.is_null() {
            // SAFETY: from `Box::into_raw` in `vt_cancel_token_new`.
            drop(unsafe { Box::from_raw(token) });
        }
    })
}

/// `vt_create_worktree_optimized` that `token` (may be NULL: not cancellable) can stop with
/// `vt_cancel_token_cancel`: then it returns `VT_CANCELLED` once the creation is undone (nothing
/// of it is left: no folder, registration, ports, containers, nor the branch if it made it). A
/// token cancelled before the call makes it return `VT_CANCELLED` at once. Other results as
/// `vt_create_worktree_optimized`.
///
/// # Safety
/// As `vt_create_worktree_optimized`; `token` is NULL or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_create_worktree_optimized_cancellable(
    manager: *const vt_worktree_manager,
    branch: *const c_char,
    from: *const c_char,
    token: *const vt_cancel_token,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        // SAFETY: the caller keeps the contract above.
        unsafe { create_optimized(manager, branch, from, token, result_json_out) }
    })
}

/// The body of both creation exports (called inside their panic boundary).
///
/// # Safety
/// As `vt_create_worktree_optimized_cancellable`.
unsafe fn create_optimized(
    manager: *const vt_worktree_manager,
    branch: *const c_char,
    from: *const c_char,
    token: *const vt_cancel_token,
    result_json_out: *mut *mut c_char,
) -> FfiResult<()> {
    let m = unsafe { required_ref(manager, "manager") }?;
    let branch = unsafe { required_str(branch, "branch") }?;
    let from = unsafe { optional_str(from, "from") }?.unwrap_or("main");
    let cancel = match unsafe { token.as_ref() } {
        Some(t) => t.inner.clone(),
        None => CancellationToken::new(),
    };
    let out = unsafe { required_out(result_json_out, "result_json_out") }?;
    // The creation runs on a worker thread of the library, never on the caller's: every progress
    // event (`complete` and `error` included) comes from a library thread, as `vt_progress_fn`
    // says.
    let (manager, branch, from) = (m.inner.clone(), branch.to_string(), from.to_string());
    let job = vibetrees_core::runtime::runtime().spawn(async move {
        manager
            .create_worktree_cancellable(&branch, &from, cancel)
            .await
    });
    let outcome = block_on(job).map_err(|e| {
        vibetrees_core::Error::Internal(format!("the creation's thread failed: {e}"))
    })??;
    *out = json_c_string(&outcome)?;
    Ok(())
}

/// Waits until the background work of every creation so far has finished (cache populate after an
/// install, non-critical services, branch push): the "settled" point. Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `manager` is a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_wait_background(
    manager: *const vt_worktree_manager,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        block_on(m.inner.wait_background());
        Ok(())
    })
}

/// Removes the registered worktree `name` as `git worktree remove` would: stops its containers,
/// releases its ports, unregisters it and deletes its folder (in the background). The branch is
/// kept. On success `*result_json_out` receives `{ success, name, releasedPorts, trashedTo,
/// containers, kept }` (free it with `vt_string_free`). Errors: `VT_NOT_FOUND` (no such
/// worktree, or a folder that is not one: never deleted), `VT_WORKTREE_LOCKED`,
/// `VT_WORKTREE_DIRTY`, `VT_LOCK` (being created) (see [`vt_worktree_manager_remove_with`]),
/// `VT_INVALID_ARGUMENT`, `VT_GIT`, `VT_IO`, `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `manager` is a live handle; `name` is NUL-terminated; `result_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_remove(
    manager: *const vt_worktree_manager,
    name: *const c_char,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let name = unsafe { required_str(name, "name") }?;
        let out = unsafe { required_out(result_json_out, "result_json_out") }?;
        let outcome = block_on(m.inner.remove_worktree(name))?;
        *out = json_c_string(&outcome)?;
        Ok(())
    })
}

/// [`vt_worktree_manager_remove`] with options: `options_json` is `{"force": bool,
/// "forceLocked": bool}` or NULL (both false). A worktree with changes is refused with
/// `VT_WORKTREE_DIRTY` unless `force` (it is then kept in the trash for `trashGrace`, reported as
/// `kept` in the result); a locked one with `VT_WORKTREE_LOCKED` unless `forceLocked`; one being
/// created with `VT_LOCK`; a folder that is not a registered worktree with `VT_NOT_FOUND` (never
/// deleted). Other errors as [`vt_worktree_manager_remove`], plus `VT_PARSE` for bad options.
///
/// # Safety
/// `manager` is a live handle; `name` and `options_json` (if not NULL) are NUL-terminated;
/// `result_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_remove_with(
    manager: *const vt_worktree_manager,
    name: *const c_char,
    options_json: *const c_char,
    result_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let name = unsafe { required_str(name, "name") }?;
        let opts: vibetrees_core::worktree::RemoveOptions =
            unsafe { crate::args::optional_json(options_json, "options_json") }?;
        let out = unsafe { required_out(result_json_out, "result_json_out") }?;
        let outcome = block_on(m.inner.remove_worktree_with(name, opts))?;
        *out = json_c_string(&outcome)?;
        Ok(())
    })
}

/// Gives the project's worktrees as a JSON array `[{ name, path, branch, ports, isMain, missing,
/// halfMade }]` (the main worktree first) in `*list_json_out` (free it with `vt_string_free`).
/// Errors: `VT_GIT`, `VT_IO`, `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `manager` is a live handle; `list_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_list(
    manager: *const vt_worktree_manager,
    list_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { required_out(list_json_out, "list_json_out") }?;
        let list = block_on(m.inner.list_worktrees())?;
        *out = json_c_string(&list)?;
        Ok(())
    })
}

/// Gives the server's metrics (`GET /api/performance/metrics`) of this manager's creations:
/// `{ operations: [{ name, count, avg, min, max, total }], totalTime, avgWorktreeCreation }` in
/// `*metrics_json_out` (free it with `vt_string_free`). Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `manager` is a live handle; `metrics_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_metrics(
    manager: *const vt_worktree_manager,
    metrics_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { required_out(metrics_json_out, "metrics_json_out") }?;
        *out = json_c_string(&m.inner.get_performance_metrics())?;
        Ok(())
    })
}

/// Gives a new profiler handle sharing the manager's profiler (every creation's spans: stats,
/// report, Chrome trace) in `*profiler_out`; free it with `vt_profiler_free` (the manager is not
/// affected). Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `manager` is a live handle; `profiler_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_profiler(
    manager: *const vt_worktree_manager,
    profiler_out: *mut *mut vt_profiler,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { required_out(profiler_out, "profiler_out") }?;
        *out = vt_profiler::share(m.inner.profiler());
        Ok(())
    })
}

/// Starts the warm-up for a server's start in the background (populates the cache from the main
/// worktree's node_modules if its key is not cached, pre-pulls images) and gives the names of the
/// jobs started as a JSON array in `*jobs_json_out` (free it with `vt_string_free`);
/// `vt_worktree_manager_wait_background` waits for them. Errors: `VT_NULL_ARGUMENT`, `VT_IO`.
///
/// # Safety
/// `manager` is a live handle; `jobs_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_warm(
    manager: *const vt_worktree_manager,
    jobs_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { required_out(jobs_json_out, "jobs_json_out") }?;
        let jobs = block_on(m.inner.warm())?;
        *out = json_c_string(&jobs)?;
        Ok(())
    })
}
