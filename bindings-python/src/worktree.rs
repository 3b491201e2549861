//! `vibetrees.WorktreeManager`: `create_worktree_optimized` and the rest of the worktree API.
//!
//! Calls block with the interpreter released (or are awaitable, `*_async`). Progress events and
//! host steps are Python callables called from the core's worker threads.
//!
//! The keyword arguments are the core's worktree settings: each snake_case name becomes its
//! camelCase key (`push_branch` -> `pushBranch`) and the core deserializes them, so this file
//! knows no option but the callbacks (and `mcp_extra`, the deprecated name of `mcp_servers`).
//!
//! A removal or a warm-up interrupted by Ctrl-C finishes before `KeyboardInterrupt` is raised.
//! Ctrl-C (or cancelling the awaiting task) during a creation cancels it in the core: no step
//! starts any more, the running install and containers are stopped, and the core undoes what the
//! creation made (containers, ports, registration, folder, the branch if it made it) before
//! `KeyboardInterrupt` (or `CancelledError`) is raised. A creation that finished just before it
//! saw the cancellation is undone by the core's `undo_creation`: nothing half-made is left.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use vibetrees_core::Error;
use vibetrees_core::optimizer::{TaskError, TaskFuture, blocking_future};
use vibetrees_core::progress::{ProgressEvent, ProgressSink};
use vibetrees_core::runtime::runtime;
use vibetrees_core::worktree::{
    CancellationToken, CreateOutcome, HostStep, HostStepFn, HostStepInput, WorktreeManager,
    WorktreeOptions, WorktreeSettings,
};

use crate::bridge;
use crate::convert::to_py;
use crate::errors::{IntoPyResult, invalid_argument, to_py_err};
use crate::profiler::PyProfiler;

/// A progress sink calling `callback({"name", "step", "message"})`; its exceptions are reported
/// as unraisable (they cannot stop a creation).
fn progress_sink(callback: Py<PyAny>) -> ProgressSink {
    Arc::new(move |event: &ProgressEvent| {
        Python::attach(|py| {
            let call = || -> PyResult<()> {
                let dict = PyDict::new(py);
                dict.set_item("name", &event.name)?;
                dict.set_item("step", &event.step)?;
                dict.set_item("message", &event.message)?;
                callback.call1(py, (dict,))?;
                Ok(())
            };
            if let Err(e) = call() {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        })
    })
}

/// A Python value as JSON, through `json.dumps` (non-JSON values become their `str`).
fn py_to_json(value: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let py = value.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", py.eval(c"str", None, None)?)?;
    let text: String = py
        .import("json")?
        .call_method("dumps", (value,), Some(&kwargs))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| invalid_argument(format!("not JSON: {e}")))
}

/// A host step: `fn(input)` with `input = {name, path, branch, dependencies}`, on a worker thread;
/// its return value (JSON-able) is the step's result.
fn host_step_fn(name: String, func: Arc<Py<PyAny>>) -> HostStepFn {
    Arc::new(
        move |input: HostStepInput| -> TaskFuture<serde_json::Value> {
            let func = Arc::clone(&func);
            let name = name.clone();
            blocking_future(move || {
                Python::attach(|py| {
                    let run = || -> PyResult<serde_json::Value> {
                        let arg = to_py(py, &input)?;
                        let out = func.bind(py).call1((arg,))?;
                        py_to_json(&out)
                    };
                    run().map_err(|e| {
                        let kind = e
                            .get_type(py)
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default();
                        let text = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
                        TaskError::with_code(
                            "PYTHON",
                            format!("host step '{name}': {kind}: {text}"),
                        )
                    })
                })
            })
        },
    )
}

fn parse_host_steps(steps: &Bound<'_, PyAny>) -> PyResult<Vec<HostStep>> {
    let mut out = Vec::new();
    for (index, item) in steps.try_iter()?.enumerate() {
        let item = item?;
        let step = item.cast::<PyMapping>().map_err(|_| {
            invalid_argument(format!(
                "host step #{index} must be a dict like {{'name': str, 'fn': callable, \
                 'dependencies': [str]}}"
            ))
        })?;
        let name: String = step
            .get_item("name")
            .and_then(|n| n.extract())
            .map_err(|_| invalid_argument(format!("host step #{index} needs a string 'name'")))?;
        let func = step
            .get_item("fn")
            .map_err(|_| invalid_argument(format!("host step '{name}' has no 'fn'")))?;
        if !func.is_callable() {
            return Err(invalid_argument(format!(
                "host step '{name}': 'fn' must be callable"
            )));
        }
        let dependencies: Vec<String> = match step.get_item("dependencies") {
            Ok(d) if !d.is_none() => d.extract().map_err(|_| {
                invalid_argument(format!(
                    "host step '{name}': 'dependencies' must be a list of step names"
                ))
            })?,
            _ => Vec::new(),
        };
        let optional = match step.get_item("optional") {
            Ok(o) => o.is_truthy()?,
            Err(_) => false,
        };
        out.push(HostStep {
            body: host_step_fn(name.clone(), Arc::new(func.unbind())),
            name,
            dependencies,
            optional,
        });
    }
    Ok(out)
}

/// Undoes (in the core) a creation that finished after its caller gave up on it.
async fn undo_creation(
    manager: &WorktreeManager,
    outcome: &CreateOutcome,
) -> vibetrees_core::Result<()> {
    match outcome {
        CreateOutcome::Created(made) => manager.undo_creation(made).await,
        CreateOutcome::Existed { .. } => Ok(()), // it existed before this call: not ours to undo
    }
}

/// The settings key of a Python keyword: `push_branch` -> `pushBranch` (names only).
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The Python keyword of a settings key: `pushBranch` -> `push_branch` (names only).
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The core's settings from Python's arguments: `(name, value)` pairs with snake_case names,
/// `None` meaning the default. Values go through JSON (`json.dumps`, paths as strings).
fn settings_from(py: Python<'_>, args: &[(&str, Bound<'_, PyAny>)]) -> PyResult<WorktreeSettings> {
    let dict = PyDict::new(py);
    for (name, value) in args {
        dict.set_item(camel_case(name), value)?;
    }
    WorktreeSettings::from_value(py_to_json(dict.as_any())?).py()
}

/// Creates, lists and removes the git worktrees of one Node project.
#[pyclass(name = "WorktreeManager", module = "vibetrees", frozen)]
pub struct PyWorktreeManager {
    inner: WorktreeManager,
    profiler: Py<PyProfiler>,
}

#[pymethods]
impl PyWorktreeManager {
    /// A manager for the project whose main git worktree is `root_dir`. Worktrees go to
    /// `worktree_base` (default `<root>/.worktrees`), the node_modules cache is `cache_dir`
    /// (default `~/.vibetrees/cache`), services come from `compose_file` (default
    /// `docker-compose.yml`), containers run with `runtime` (`auto`, `docker`, `podman`, `none`).
    /// `on_progress({"name", "step", "message"})` is called from worker threads during creations.
    /// `profiler` (a `Profiler`) records every creation there instead of a profiler of its own.
    /// Every other keyword is a setting of the core, in snake_case (`push_branch`,
    /// `use_cache`, `install`, `critical_services`, `mcp_servers`, `checkout`, ...; see the
    /// README); an unknown one is a `ParseError` naming it. `mcp_extra` is the deprecated name of
    /// `mcp_servers`.
    #[new]
    #[pyo3(signature = (
        root_dir, worktree_base=None, cache_dir=None, compose_file=None, runtime=None,
        on_progress=None, *, host_steps=None, profiler=None, mcp_extra=None, **settings
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        root_dir: Bound<'_, PyAny>,
        worktree_base: Option<Bound<'_, PyAny>>,
        cache_dir: Option<Bound<'_, PyAny>>,
        compose_file: Option<Bound<'_, PyAny>>,
        runtime: Option<Bound<'_, PyAny>>,
        on_progress: Option<Py<PyAny>>,
        host_steps: Option<Bound<'_, PyAny>>,
        profiler: Option<Py<PyProfiler>>,
        mcp_extra: Option<Bound<'_, PyAny>>,
        settings: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let none = || py.None().into_bound(py);
        let mut args = vec![
            ("root_dir", root_dir),
            ("worktree_base", worktree_base.unwrap_or_else(none)),
            ("cache_dir", cache_dir.unwrap_or_else(none)),
            ("compose_file", compose_file.unwrap_or_else(none)),
            ("runtime", runtime.unwrap_or_else(none)),
        ];
        let mut keywords: Vec<(String, Bound<'_, PyAny>)> = Vec::new();
        if let Some(extra) = mcp_extra.filter(|e| !e.is_none()) {
            let warnings = py.import("warnings")?;
            warnings.call_method1(
                "warn",
                (
                    "mcp_extra is deprecated: use mcp_servers",
                    py.get_type::<pyo3::exceptions::PyDeprecationWarning>(),
                    2,
                ),
            )?;
            keywords.push(("mcp_servers".into(), extra));
        }
        for (k, v) in settings.iter().flat_map(|d| d.iter()) {
            keywords.push((k.extract()?, v));
        }
        args.extend(keywords.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let mut opts = WorktreeOptions::from(settings_from(py, &args)?);
        if let Some(cb) = on_progress {
            if !cb.bind(py).is_callable() {
                return Err(invalid_argument("on_progress must be callable"));
            }
            opts.on_progress = Some(progress_sink(cb));
        }
        if let Some(steps) = host_steps {
            opts.host_steps = parse_host_steps(&steps)?;
        }
        // the host's profiler: every creation is recorded there, and `manager.profiler` is it
        if let Some(p) = &profiler {
            opts.profiler = Some(p.get().inner.clone());
        }
        let inner = bridge::wait_blocking(py, "opening the worktree manager", move || {
            WorktreeManager::new(opts)
        })?
        .py()?;
        let profiler = match profiler {
            Some(p) => p,
            None => Py::new(py, PyProfiler::from_arc(inner.profiler()))?,
        };
        Ok(Self { inner, profiler })
    }

    /// The keywords that are settings of the core (snake_case), in the core's order: every
    /// argument of `WorktreeManager(...)` but `on_progress`, `host_steps` and `mcp_extra`.
    #[staticmethod]
    fn setting_names() -> Vec<String> {
        WorktreeSettings::keys()
            .iter()
            .map(|k| snake_case(k))
            .collect()
    }

    /// The project root (canonical path).
    #[getter]
    fn root_dir(&self) -> PathBuf {
        self.inner.root().to_path_buf()
    }

    /// The folder worktrees are made in.
    #[getter]
    fn worktree_base(&self) -> PathBuf {
        self.inner.worktree_base().to_path_buf()
    }

    /// The profiler every creation's steps are recorded in.
    #[getter]
    fn profiler(&self, py: Python<'_>) -> Py<PyProfiler> {
        self.profiler.clone_ref(py)
    }

    /// Creates the worktree of `branch` (slugged: lower-case, `/` as `-`) from `from_branch`, as
    /// one dependency graph, and returns when it is usable:
    /// `{"success": True, "worktree": {name, path, branch, ports, dockerStatus, totalMs, timings,
    /// criticalPath, cache, ...}}`, or `{"success": True, "name", "path", "branch", "existed":
    /// True, "message"}` if it was all there already. Failures raise (`InvalidArgumentError` for a
    /// bad name, `NotFoundError` for an unknown ref, `GitError`, ...).
    #[pyo3(signature = (branch, from_branch="main"))]
    fn create_worktree_optimized<'py>(
        &self,
        py: Python<'py>,
        branch: String,
        from_branch: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.clone();
        let from = from_branch.to_string();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime().spawn(async move {
            let out = manager
                .create_worktree_cancellable(&branch, &from, token)
                .await;
            let _ = tx.send((out, manager));
        });
        let rx = parking_lot::Mutex::new(rx);
        let mut interrupt: Option<PyErr> = None;
        loop {
            match py.detach(|| rx.lock().recv_timeout(bridge::SIGNAL_POLL)) {
                Ok((out, manager)) => {
                    // A Ctrl-C that came while the last step ran is still pending: honour it
                    // here, where the creation can be undone, not after returning.
                    if interrupt.is_none()
                        && let Err(e) = py.check_signals()
                    {
                        interrupt = Some(e);
                    }
                    let Some(interrupt) = interrupt else {
                        let outcome = out.py()?;
                        return to_py(py, &outcome);
                    };
                    // Cancelled: the core undid it. Finished before it saw the cancellation:
                    // undo it now.
                    let undone = match &out {
                        Ok(outcome) => {
                            py.detach(|| runtime().block_on(undo_creation(&manager, outcome)))
                        }
                        Err(Error::Cancelled(_)) => Ok(()),
                        Err(e) => Err(Error::Internal(e.full_message())),
                    };
                    if let Err(e) = undone {
                        interrupt.set_cause(py, Some(to_py_err(e)));
                    }
                    return Err(interrupt);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt.is_none()
                        && let Err(e) = py.check_signals()
                    {
                        interrupt = Some(e);
                        cancel.cancel();
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(to_py_err(Error::Internal(
                        "create_worktree_optimized panicked; the creation was abandoned".into(),
                    )));
                }
            }
        }
    }

    /// Awaitable `create_worktree_optimized`: `await manager.create_worktree_optimized_async(b)`.
    /// Several can run at once (`asyncio.gather`). Cancelling the awaiting task cancels the
    /// creation in the core, which stops it and undoes it (in the background).
    #[pyo3(signature = (branch, from_branch="main"))]
    fn create_worktree_optimized_async<'py>(
        &self,
        py: Python<'py>,
        branch: String,
        from_branch: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let event_loop = bridge::running_loop(py)?;
        let manager = self.inner.clone();
        let from = from_branch.to_string();
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        bridge::to_asyncio_future_cancellable(py, event_loop, cancel, async move {
            let out = manager
                .create_worktree_cancellable(&branch, &from, token)
                .await;
            let hook: Option<bridge::OrphanHook> = match &out {
                Ok(outcome @ CreateOutcome::Created(_)) => {
                    let outcome = outcome.clone();
                    Some(Box::new(move || {
                        // It finished before it saw the cancellation: undo it in the background.
                        runtime().spawn(async move {
                            let _ = undo_creation(&manager, &outcome).await;
                        });
                    }))
                }
                _ => None,
            };
            let value = Python::attach(|py| match out {
                Ok(outcome) => Ok(to_py(py, &outcome)?.unbind()),
                Err(e) => Err(to_py_err(e)),
            });
            (value, hook)
        })
    }

    /// The contract's metrics: `{operations: [{name, count, avg, min, max, total}], totalTime,
    /// avgWorktreeCreation}` (milliseconds).
    fn get_performance_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.get_performance_metrics())
    }

    /// Removes a registered worktree: containers down, ports released, unregistered, folder
    /// deleted. The branch is kept. Raises `WorktreeLockedError` (locked; `force_locked=True`
    /// removes it), `WorktreeDirtyError` (changes; `force=True` keeps it in the trash for
    /// `trash_grace`), `LockError` (being created), `NotFoundError` (not a registered worktree:
    /// never deleted). Returns `{success, name, releasedPorts, trashedTo, containers, kept}`.
    #[pyo3(signature = (name, *, force=false, force_locked=false))]
    fn remove_worktree<'py>(
        &self,
        py: Python<'py>,
        name: String,
        force: bool,
        force_locked: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.clone();
        let opts = vibetrees_core::worktree::RemoveOptions {
            force,
            force_locked,
        };
        let out = bridge::wait_to_end(py, "remove_worktree", async move {
            manager.remove_worktree_with(&name, opts).await
        })?
        .py()?;
        to_py(py, &out)
    }

    /// The worktrees kept in the trash (removed with changes), oldest first.
    fn trash_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = self.inner.trash_list().map_err(to_py_err)?;
        to_py(py, &list)
    }

    /// Brings the newest trash entry of `name` back: its folder and its registration.
    fn trash_restore<'py>(&self, py: Python<'py>, name: String) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.clone();
        let out = bridge::wait(py, "trash_restore", async move {
            manager.trash_restore(&name).await
        })?
        .py()?;
        to_py(py, &out)
    }

    /// The project's worktrees: the main one, then every registered one:
    /// `[{name, path, branch, ports, isMain, missing, halfMade}]`.
    fn list_worktrees<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.clone();
        let out = bridge::wait(py, "list_worktrees", async move {
            manager.list_worktrees().await
        })?
        .py()?;
        to_py(py, &out)
    }

    /// Starts the warm-up (cache populate from the main worktree's node_modules, image pulls) in
    /// the background; returns the names of the jobs started.
    fn warm(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let manager = self.inner.clone();
        bridge::wait_to_end(py, "warm", async move { manager.warm().await })?.py()
    }

    /// Waits for every background job started so far (cache populate, services, push, deletions).
    fn wait_background(&self, py: Python<'_>) -> PyResult<()> {
        let manager = self.inner.clone();
        bridge::wait(py, "wait_background", async move {
            manager.wait_background().await
        })
    }

    /// Fills the pool of spare worktrees for `from_` (a ref; `None`: the main worktree's branch)
    /// up to `pool_size` within `pool_max_bytes`, now, on a low-priority thread. Returns
    /// `{from, made, discarded, stopped}`; raises `NotFoundError` for an unknown ref. A Ctrl-C
    /// lets the fill finish (each spare is published whole), then raises `KeyboardInterrupt`.
    #[pyo3(signature = (from_=None))]
    fn fill_pool<'py>(
        &self,
        py: Python<'py>,
        from_: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.clone();
        let report = bridge::wait_to_end(py, "fill_pool", async move {
            manager.fill_pool(from_.as_deref()).await
        })?
        .py()?;
        to_py(py, &report)
    }

    /// Deletes every spare of the pool nobody is claiming (and dead fills' debris); returns how
    /// many were removed.
    fn clear_pool(&self, py: Python<'_>) -> PyResult<usize> {
        let manager = self.inner.clone();
        bridge::wait_to_end(py, "clear_pool", async move { manager.clear_pool().await })?.py()
    }

    /// The pool: `{dir, size, maxBytes, bytes, spares: [{path, commit, from, cacheKey,
    /// nodeModules, bytes, files, ageMs}]}` (spares oldest first).
    fn pool_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let manager = self.inner.clone();
        let status = py.detach(move || manager.pool_status());
        to_py(py, &status)
    }

    /// Names of the background jobs still running.
    fn background_jobs(&self) -> Vec<String> {
        self.inner.background_jobs()
    }

    fn __repr__(&self) -> String {
        format!(
            "WorktreeManager(root_dir={:?})",
            self.inner.root().display().to_string()
        )
    }
}
