//! `PerformanceOptimizer` (native part): the core's scheduler runs JavaScript async functions.
//!
//! JavaScript values never cross into Rust: each task is a [`JsTaskBody`] holding the index of
//! the task and a threadsafe function (the "runner") of the JS wrapper in `index.js`. Starting a
//! task calls `runner(index)` on the JS thread; the wrapper calls the task's `fn` with its
//! dependencies' results (kept in a JS `Map`) and returns a promise that resolves to `null` on
//! success or to the error message on failure. The scheduler awaits that promise off the JS
//! thread, so the graph (order, concurrency, failure policy, profiler spans) is entirely native.

use std::sync::Arc;

use napi::bindgen_prelude::{External, Promise, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use vibetrees_core::optimizer::{
    CancellationToken, FailurePolicy, OptimizerOptions, PerformanceOptimizer, Task, TaskBody,
    TaskError, TaskFuture, TaskInputs,
};

use crate::errors::{core_error, invalid_argument, spawn};
use crate::profiler::JsProfiler;

/// `runner(index)`: starts task `index` in JS and resolves to `null` or its error message.
pub(crate) type Runner = ThreadsafeFunction<u32, Promise<Option<String>>, u32, Status, false>;

/// One task as the JS wrapper describes it (the function stays in JS).
#[napi(object)]
pub struct TaskSpec {
    /// Unique name (within a graph).
    pub name: String,
    /// Names of the tasks that must finish first.
    pub dependencies: Option<Vec<String>>,
    /// An optional task's failure does not fail the graph; its dependents still run.
    pub optional: Option<bool>,
}

/// Options of the native optimizer (the JS wrapper maps `{ profiler, concurrency }` onto them).
#[napi(object)]
pub struct NativeOptimizerOptions {
    /// Most tasks running at once; unset for no limit.
    pub concurrency: Option<u32>,
    /// `'stop'` (default: nothing new starts after a failure) or `'continue'`.
    pub failure_policy: Option<String>,
    /// A profiler span id every task span is a child of.
    pub parent_span: Option<String>,
}

/// A task body that runs JS task `index` through the runner and awaits its promise.
pub(crate) struct JsTaskBody {
    runner: Arc<Runner>,
    index: u32,
}

impl JsTaskBody {
    /// A body for task `index` of the runner's task list.
    pub(crate) fn new(runner: Arc<Runner>, index: u32) -> Self {
        Self { runner, index }
    }
}

impl<T: Default + Send + 'static> TaskBody<T> for JsTaskBody {
    fn run(&self, _inputs: TaskInputs<T>) -> TaskFuture<T> {
        let runner = self.runner.clone();
        let index = self.index;
        Box::pin(async move {
            let promise = runner
                .call_async(index)
                .await
                .map_err(|e| TaskError::with_code("INTERNAL", e.reason.clone()))?;
            match promise.await {
                Ok(None) => Ok(T::default()),
                Ok(Some(message)) => Err(TaskError::new(message)),
                Err(e) => Err(TaskError::new(e.reason.clone())),
            }
        })
    }
}

/// Builds core tasks (bodies calling `runner`) from the JS task specs.
pub(crate) fn tasks_from_specs(specs: Vec<TaskSpec>, runner: &Arc<Runner>) -> Vec<Task<()>> {
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            Task::from_body(
                spec.name,
                spec.dependencies.unwrap_or_default(),
                Arc::new(JsTaskBody::new(runner.clone(), i as u32)),
            )
            .with_optional(spec.optional.unwrap_or(false))
        })
        .collect()
}

/// A cancellation token for one run (the JS wrapper cancels it when its `AbortSignal` aborts).
pub struct CancelHandle(pub(crate) CancellationToken);

/// A new cancellation token for `runParallel` / `runGraph`.
#[napi(ts_return_type = "ExternalObject<unknown>")]
pub fn create_cancel_token() -> External<CancelHandle> {
    External::new(CancelHandle(CancellationToken::new()))
}

/// Cancels the run holding this token: nothing new starts, running JS tasks are no longer awaited.
#[napi(ts_args_type = "token: ExternalObject<unknown>")]
pub fn cancel_token(token: &External<CancelHandle>) {
    token.0.cancel();
}

/// The optimizer, bound to `cancel` when given.
fn with_cancel(
    optimizer: &PerformanceOptimizer,
    cancel: Option<&External<CancelHandle>>,
) -> PerformanceOptimizer {
    match cancel {
        Some(token) => optimizer.with_cancel(token.0.clone()),
        None => optimizer.clone(),
    }
}

/// The body of a task that is only planned (`dryRun`), never run.
struct PlanOnly;

impl TaskBody<()> for PlanOnly {
    fn run(&self, _inputs: TaskInputs<()>) -> TaskFuture<()> {
        Box::pin(async { Ok(()) })
    }
}

/// The scheduler behind the JS `PerformanceOptimizer`. Not meant to be used directly.
#[napi]
pub struct NativeOptimizer {
    inner: PerformanceOptimizer,
}

#[napi]
impl NativeOptimizer {
    /// An optimizer recording into `profiler` (if given).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        profiler: Option<&JsProfiler>,
        options: Option<NativeOptimizerOptions>,
    ) -> napi::Result<Self> {
        let mut opts = OptimizerOptions {
            profiler: profiler.map(|p| p.inner.clone()),
            ..Default::default()
        };
        if let Some(o) = options {
            opts.concurrency = o.concurrency.map(|c| c as usize);
            if let Some(policy) = o.failure_policy {
                opts.failure_policy = policy
                    .parse::<FailurePolicy>()
                    .map_err(|e| core_error(&env, &e))?;
            }
            opts.parent_span = o.parent_span;
        }
        let inner = PerformanceOptimizer::new(opts).map_err(|e| core_error(&env, &e))?;
        Ok(Self { inner })
    }

    /// Runs independent tasks; resolves when all succeeded, rejects with `TASK_FAILED` (naming
    /// the first task to fail) otherwise. Results stay in JS.
    #[napi(
        ts_args_type = "tasks: Array<TaskSpec>, runner: (index: number) => Promise<string | null>, cancel?: ExternalObject<unknown>"
    )]
    pub fn run_parallel<'env>(
        &self,
        env: &'env Env,
        tasks: Vec<TaskSpec>,
        runner: Runner,
        cancel: Option<&External<CancelHandle>>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let runner = Arc::new(runner);
        let tasks = tasks_from_specs(tasks, &runner);
        let optimizer = with_cancel(&self.inner, cancel);
        spawn(
            env,
            async move { optimizer.run_parallel(tasks).await.map(|_| ()) },
            |_, ()| Ok(()),
        )
    }

    /// Runs a dependency graph; resolves with `{ report, error }`: the run report (`success`
    /// false when a task failed) and the error the run stands for (`{ message, code }`, null on
    /// success). Rejects only for an invalid graph (`INVALID_GRAPH`, `CYCLE` with its path).
    #[napi(
        ts_args_type = "tasks: Array<TaskSpec>, runner: (index: number) => Promise<string | null>, cancel?: ExternalObject<unknown>",
        ts_return_type = "Promise<any>"
    )]
    pub fn run_graph<'env>(
        &self,
        env: &'env Env,
        tasks: Vec<TaskSpec>,
        runner: Runner,
        cancel: Option<&External<CancelHandle>>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let runner = Arc::new(runner);
        let tasks = tasks_from_specs(tasks, &runner);
        let optimizer = with_cancel(&self.inner, cancel);
        spawn(
            env,
            async move {
                let run = optimizer.run_graph(tasks).await?;
                // The error the run stands for is the core's own (`GraphRun::error`), so its
                // text and code are written once, there.
                let error = run
                    .error()
                    .map(|e| serde_json::json!({ "message": e.to_string(), "code": e.code() }));
                Ok(serde_json::json!({ "report": run.report(), "error": error }))
            },
            |_, run| Ok(run),
        )
    }

    /// Checks a graph and returns its plan (order, levels, longest chain) without running it.
    #[napi(ts_return_type = "any")]
    pub fn dry_run(&self, env: Env, tasks: Vec<TaskSpec>) -> napi::Result<serde_json::Value> {
        let tasks: Vec<Task<()>> = tasks
            .into_iter()
            .map(|spec| {
                Task::from_body(
                    spec.name,
                    spec.dependencies.unwrap_or_default(),
                    Arc::new(PlanOnly),
                )
                .with_optional(spec.optional.unwrap_or(false))
            })
            .collect();
        let plan = self
            .inner
            .dry_run(&tasks)
            .map_err(|e| core_error(&env, &e))?;
        serde_json::to_value(plan).map_err(|e| invalid_argument(&env, e.to_string()))
    }
}
