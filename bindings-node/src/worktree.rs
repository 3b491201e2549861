//! `WorktreeManager` (native part): the whole creation as one native graph.
//!
//! The options are the core's [`WorktreeSettings`], deserialized from the JS object as they are
//! (no mapping here). Progress events reach JavaScript through a weak threadsafe function called
//! without blocking, in the order the core emits them; a creation's promise settles only after
//! its last event was delivered (the events and an end-of-events call share one queue). Host
//! steps (JavaScript async functions) are core [`HostStep`]s whose bodies call one threadsafe
//! "runner" function with the step's index and its input; the JS wrapper runs the step's function
//! and resolves to `{ ok, value | error }`.

use std::sync::Arc;

use napi::bindgen_prelude::{External, Promise, PromiseRaw};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use vibetrees_core::optimizer::TaskError;
use vibetrees_core::progress::{ProgressEvent, ProgressSink};
use vibetrees_core::worktree::{
    CancellationToken, HostStep, HostStepFn, HostStepInput, STEP_NAMES, WorktreeManager,
    WorktreeOptions, WorktreeSettings, failure_json,
};

use crate::errors::{core_error, invalid_argument, spawn, spawn_blocking};
use crate::optimizer::CancelHandle;
use crate::profiler::{JsProfiler, Metrics};

/// One progress event: `{ name, step, message }`.
#[napi(object)]
pub struct ProgressEventJs {
    /// The worktree's name (slug).
    pub name: String,
    /// The step (`git`, `ports`, `mcp`, `install`, `bootstrap`, `containers`, `database`,
    /// `complete`, `error`, `cache`, or a host step's name).
    pub step: String,
    /// Text; a message starting with `✓` marks the step done.
    pub message: String,
}

/// `onProgress(event)`, weak (does not keep Node alive) and not waited for; `onProgress(null)` is
/// the end-of-events call a creation awaits before it settles (the JS side ignores it).
type ProgressFn =
    ThreadsafeFunction<Option<ProgressEventJs>, (), Option<ProgressEventJs>, Status, false, true>;

/// `runner(index, input)` -> `{ ok: true, value } | { ok: false, error, code? }`.
type HostRunner = ThreadsafeFunction<
    (u32, serde_json::Value),
    Promise<serde_json::Value>,
    (u32, serde_json::Value),
    Status,
    false,
    true,
>;

/// A host step as the JS wrapper describes it (its function stays in JS).
#[napi(object)]
pub struct HostStepSpec {
    /// Unique step name (also its profiler span name and progress step).
    pub name: String,
    /// Built-in step names or other host steps it waits for.
    pub dependencies: Option<Vec<String>>,
    /// When true, its failure is reported as progress and does not fail the creation.
    pub optional: Option<bool>,
}

/// The keys of the core's worktree settings, camelCase (what `WorktreeManager` accepts besides
/// `onProgress` and `hostSteps`).
#[napi]
pub fn worktree_setting_keys() -> Vec<String> {
    WorktreeSettings::keys()
}

fn host_step_error(value: &serde_json::Value) -> TaskError {
    let message = value
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("host step failed")
        .to_string();
    match value.get("code").and_then(|c| c.as_str()) {
        Some(code) => TaskError::with_code(code, message),
        None => TaskError::new(message),
    }
}

fn host_step_body(runner: Arc<HostRunner>, index: u32) -> HostStepFn {
    Arc::new(move |input: HostStepInput| {
        let runner = runner.clone();
        Box::pin(async move {
            let input = serde_json::to_value(&input)?;
            let promise = runner
                .call_async((index, input))
                .await
                .map_err(|e| TaskError::with_code("INTERNAL", e.reason.clone()))?;
            let reply = promise
                .await
                .map_err(|e| TaskError::new(e.reason.clone()))?;
            if reply.get("ok").and_then(|v| v.as_bool()) == Some(true) {
                Ok(reply
                    .get("value")
                    .cloned()
                    .unwrap_or(serde_json::Value::Null))
            } else {
                Err(host_step_error(&reply))
            }
        })
    })
}

/// The engine behind the JS `WorktreeManager`. Not meant to be used directly.
#[napi]
pub struct NativeWorktreeManager {
    inner: WorktreeManager,
    progress: Option<Arc<ProgressFn>>,
}

#[napi]
impl NativeWorktreeManager {
    /// Opens the project at `options.rootDir` (a git repository's main worktree), recording into
    /// `profiler` when given (else a profiler of its own).
    #[napi(
        constructor,
        ts_args_type = "settings: Record<string, unknown>, onProgress?: (event: ProgressEventJs | null) => void, hostSteps?: Array<HostStepSpec>, hostRunner?: (call: [number, any]) => Promise<any>, profiler?: NativeProfiler"
    )]
    pub fn new(
        env: Env,
        settings: serde_json::Value,
        on_progress: Option<ProgressFn>,
        host_steps: Option<Vec<HostStepSpec>>,
        host_runner: Option<HostRunner>,
        profiler: Option<&JsProfiler>,
    ) -> napi::Result<Self> {
        let settings = WorktreeSettings::from_value(settings).map_err(|e| core_error(&env, &e))?;
        let mut opts = WorktreeOptions::from(settings);
        // the host's profiler (the server's `manager.profiler`): every creation is recorded there
        opts.profiler = profiler.map(|p| p.inner.clone());
        let progress = on_progress.map(Arc::new);
        if let Some(tsfn) = &progress {
            let tsfn = tsfn.clone();
            let sink: ProgressSink = Arc::new(move |event: &ProgressEvent| {
                tsfn.call(
                    Some(ProgressEventJs {
                        name: event.name.clone(),
                        step: event.step.clone(),
                        message: event.message.clone(),
                    }),
                    ThreadsafeFunctionCallMode::NonBlocking,
                );
            });
            opts.on_progress = Some(sink);
        }
        let specs = host_steps.unwrap_or_default();
        if !specs.is_empty() {
            let Some(runner) = host_runner else {
                return Err(invalid_argument(&env, "host steps need a runner"));
            };
            let runner = Arc::new(runner);
            opts.host_steps = specs
                .into_iter()
                .enumerate()
                .map(|(i, spec)| HostStep {
                    name: spec.name,
                    dependencies: spec.dependencies.unwrap_or_default(),
                    optional: spec.optional.unwrap_or(false),
                    body: host_step_body(runner.clone(), i as u32),
                })
                .collect();
        }
        let inner = WorktreeManager::new(opts).map_err(|e| core_error(&env, &e))?;
        Ok(Self { inner, progress })
    }

    /// The built-in step names host steps may depend on.
    #[napi]
    pub fn step_names() -> Vec<&'static str> {
        STEP_NAMES.to_vec()
    }

    /// The project root (canonical path).
    #[napi(getter)]
    pub fn root_dir(&self) -> String {
        self.inner.root().to_string_lossy().into_owned()
    }

    /// The folder worktrees are made in.
    #[napi(getter)]
    pub fn worktree_base(&self) -> String {
        self.inner.worktree_base().to_string_lossy().into_owned()
    }

    /// The profiler every creation's spans go into (shared with the manager).
    #[napi(getter)]
    pub fn profiler(&self) -> JsProfiler {
        JsProfiler::from_arc(self.inner.profiler())
    }

    /// Creates the worktree; resolves to the contract's result, never rejects for a failed
    /// creation (`{ success: false, error, code }`), and only after the creation's last progress
    /// event was delivered. `cancel` (a token of `createCancelToken`) stops and undoes it.
    #[napi(
        ts_args_type = "branchName: string, fromBranch: string, cancel?: ExternalObject<unknown>",
        ts_return_type = "Promise<any>"
    )]
    pub fn create_worktree_optimized<'env>(
        &self,
        env: &'env Env,
        branch_name: String,
        from_branch: String,
        cancel: Option<&External<CancelHandle>>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        let progress = self.progress.clone();
        let cancel = cancel.map_or_else(CancellationToken::new, |c| c.0.clone());
        spawn(
            env,
            async move {
                let outcome = manager
                    .create_worktree_cancellable(&branch_name, &from_branch, cancel)
                    .await;
                if let Some(tsfn) = progress {
                    // Queued after every event of this creation: once JS has run it, they were
                    // all delivered. (An error means Node is shutting down: nobody waits.)
                    let _ = tsfn.call_async(None).await;
                }
                Ok(match outcome {
                    Ok(created) => created.to_json(),
                    Err(err) => failure_json(&err),
                })
            },
            |_, v| Ok(v),
        )
    }

    /// Removes a registered worktree (refuses a locked, dirty or unregistered one unless
    /// `options` (`{ force?, forceLocked? }`) says so): containers down, ports released,
    /// unregistered, folder deleted (or kept in the trash when it held changes).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn remove_worktree<'env>(
        &self,
        env: &'env Env,
        name: String,
        options: Option<serde_json::Value>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move {
                let opts: vibetrees_core::worktree::RemoveOptions = match options {
                    None | Some(serde_json::Value::Null) => Default::default(),
                    Some(v) => {
                        serde_json::from_value(v).map_err(|e| vibetrees_core::Error::Parse {
                            what: "removeWorktree options".into(),
                            message: e.to_string(),
                        })?
                    }
                };
                Ok(serde_json::to_value(
                    manager.remove_worktree_with(&name, opts).await?,
                )?)
            },
            |_, v| Ok(v),
        )
    }

    /// The worktrees kept in the trash, oldest first.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn trash_list<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move { Ok(serde_json::to_value(manager.trash_list()?)?) },
            |_, v| Ok(v),
        )
    }

    /// Brings the newest trash entry of `name` back (folder and registration).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn trash_restore<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move { Ok(serde_json::to_value(manager.trash_restore(&name).await?)?) },
            |_, v| Ok(v),
        )
    }

    /// Fills the pool of spare worktrees for `from` (a ref; null: the main worktree's branch) up
    /// to `poolSize` within `poolMaxBytes`, now, on a low-priority thread. Resolves to the fill
    /// report `{ from, made, discarded, stopped }`; an unknown `from` rejects with `NOT_FOUND`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn fill_pool<'env>(
        &self,
        env: &'env Env,
        from: Option<String>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move {
                Ok(serde_json::to_value(
                    manager.fill_pool(from.as_deref()).await?,
                )?)
            },
            |_, v| Ok(v),
        )
    }

    /// Deletes every spare of the pool nobody is claiming (and dead fills' debris); resolves to
    /// how many were removed.
    #[napi]
    pub fn clear_pool<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, u32>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move {
                let removed = manager.clear_pool().await?;
                Ok(u32::try_from(removed).unwrap_or(u32::MAX))
            },
            |_, v| Ok(v),
        )
    }

    /// The pool's spares and settings `{ dir, size, maxBytes, bytes, spares }` (reads the pool's
    /// folder off the JS thread).
    #[napi(ts_return_type = "Promise<any>")]
    pub fn pool_status<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        spawn_blocking(
            env,
            move || Ok(serde_json::to_value(manager.pool_status())?),
            |_, v| Ok(v),
        )
    }

    /// The project's worktrees with their ports.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn list_worktrees<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move { Ok(serde_json::to_value(manager.list_worktrees().await?)?) },
            |_, v| Ok(v),
        )
    }

    /// Starts the warm-up jobs (cache populate from the main worktree, image pulls).
    #[napi]
    pub fn warm<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Vec<String>>> {
        let manager = self.inner.clone();
        spawn(env, async move { manager.warm().await }, |_, v| Ok(v))
    }

    /// Resolves when every background job started so far has finished.
    #[napi]
    pub fn wait_background<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let manager = self.inner.clone();
        spawn(
            env,
            async move {
                manager.wait_background().await;
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }

    /// Names of the background jobs still running.
    #[napi]
    pub fn background_jobs(&self) -> Vec<String> {
        self.inner.background_jobs()
    }

    /// `{ operations: [{ name, count, avg, min, max, total }], totalTime, avgWorktreeCreation }`.
    #[napi]
    pub fn get_performance_metrics(&self) -> Metrics {
        self.inner.get_performance_metrics().into()
    }
}
