//! A dependency-graph executor on tokio: each task starts as soon as all of its dependencies are
//! done (never in waves), within an optional concurrency limit, under a failure policy, with every
//! task recorded as a profiler span.
//!
//! ```no_run
//! use vibetrees_core::optimizer::{OptimizerOptions, PerformanceOptimizer, Task, TaskError};
//! # async fn demo() -> vibetrees_core::Result<()> {
//! let optimizer = PerformanceOptimizer::new(OptimizerOptions::default())?;
//! let run = optimizer
//!     .run_with_dependencies(vec![
//!         Task::new("a", &[], |_| async { Ok::<u32, TaskError>(1) }),
//!         Task::new("b", &["a"], |inputs| async move { Ok(**inputs.get("a").unwrap() + 1) }),
//!     ])
//!     .await?;
//! assert_eq!(**run.result("b").unwrap(), 2);
//! println!("{}", run.to_dot());
//! # Ok(()) }
//! ```
//!
//! # Bindings
//! A binding implements [`TaskBody<T>`] for its callable (a JS function returning a promise, a
//! Python callable, a C function pointer) and builds tasks with [`Task::from_body`]; blocking
//! callables go through [`blocking_future`]. Synchronous callers use the `*_blocking` methods.
//!
//! # Cancellation
//! Dropping the future of a run aborts every running async task at its next `.await` and starts
//! nothing more; a [`CancellationToken`] (see [`PerformanceOptimizer::with_cancel`]) does the same
//! but still returns the run's report, with the running tasks marked `cancelled` and the others
//! `skipped`. A blocking body (a thread) cannot be stopped from outside: it runs to its end and its
//! result is dropped.

mod graph;
mod report;
mod scheduler;
mod task;

pub use report::{GraphPlan, GraphRun, PlannedTask, RunReport, TaskOutcome, TaskStatus};
pub use scheduler::current_span;
pub use task::{Task, TaskBody, TaskError, TaskFuture, TaskInputs, blocking_future};
pub use tokio_util::sync::CancellationToken;

use crate::profiler::Profiler;
use crate::{Error, Result};
use graph::{Graph, TaskSpec};
use std::sync::Arc;

/// What happens to the rest of the graph when a (non-optional) task fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Nothing new starts; running tasks finish; every task not started is reported as skipped.
    #[default]
    Stop,
    /// Every task that does not depend on a failed task still runs; dependents of failures are
    /// skipped. The run still counts as failed.
    Continue,
}

impl std::str::FromStr for FailurePolicy {
    type Err = Error;

    /// Parses `"stop"` or `"continue"` (the bindings' spelling).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "stop" => Ok(FailurePolicy::Stop),
            "continue" => Ok(FailurePolicy::Continue),
            other => Err(Error::InvalidArgument(format!(
                "unknown failure policy '{other}' (expected 'stop' or 'continue')"
            ))),
        }
    }
}

/// Settings of a [`PerformanceOptimizer`].
#[derive(Clone, Default)]
pub struct OptimizerOptions {
    /// Where each task's span is recorded; none by default.
    pub profiler: Option<Arc<Profiler>>,
    /// The most tasks running at once; `None` (the default) means no limit. `Some(0)` is refused.
    pub concurrency: Option<usize>,
    /// What a failure does to the rest of the graph.
    pub failure_policy: FailurePolicy,
    /// A profiler span id every task span is a child of.
    pub parent_span: Option<String>,
    /// Cancels the runs of this optimizer when triggered (see the module docs).
    pub cancel: Option<CancellationToken>,
}

impl std::fmt::Debug for OptimizerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OptimizerOptions")
            .field("profiler", &self.profiler.is_some())
            .field("concurrency", &self.concurrency)
            .field("failure_policy", &self.failure_policy)
            .field("parent_span", &self.parent_span)
            .field("cancel", &self.cancel.as_ref().map(|c| c.is_cancelled()))
            .finish()
    }
}

/// Runs task graphs. Cheap to clone; one optimizer can run many graphs, also at once.
#[derive(Clone, Debug, Default)]
pub struct PerformanceOptimizer {
    options: OptimizerOptions,
}

impl PerformanceOptimizer {
    /// An optimizer with these options; a concurrency of 0 is an [`Error::InvalidArgument`].
    pub fn new(options: OptimizerOptions) -> Result<Self> {
        if options.concurrency == Some(0) {
            return Err(Error::InvalidArgument(
                "concurrency must be at least 1 (or unset for no limit)".into(),
            ));
        }
        Ok(Self { options })
    }

    /// Its options.
    pub fn options(&self) -> &OptimizerOptions {
        &self.options
    }

    /// The profiler tasks are recorded in, if any.
    pub fn profiler(&self) -> Option<&Arc<Profiler>> {
        self.options.profiler.as_ref()
    }

    /// A copy of this optimizer whose runs stop when `token` is cancelled.
    pub fn with_cancel(&self, token: CancellationToken) -> Self {
        let mut options = self.options.clone();
        options.cancel = Some(token);
        Self { options }
    }

    /// A copy of this optimizer whose task spans are children of profiler span `parent`.
    pub fn with_parent_span(&self, parent: impl Into<String>) -> Self {
        let mut options = self.options.clone();
        options.parent_span = Some(parent.into());
        Self { options }
    }

    /// Runs independent tasks (no dependencies allowed; names need not be unique) and returns
    /// their results in input order. The first task to fail (in time) fails the call with
    /// [`Error::TaskFailed`] naming it and carrying its own message; under the default stop
    /// policy nothing new starts after it and the running tasks finish first.
    pub async fn run_parallel<T: Send + Sync + 'static>(
        &self,
        tasks: Vec<Task<T>>,
    ) -> Result<Vec<Arc<T>>> {
        let graph = Graph::independent(&specs(&tasks))?;
        let bodies = tasks.into_iter().map(|t| t.body).collect();
        let run = scheduler::execute(graph, bodies, &self.options)
            .await?
            .into_result()?;
        run.into_parts()
            .into_iter()
            .map(|(o, r)| {
                r.ok_or_else(|| Error::Internal(format!("task '{}' has no result", o.name)))
            })
            .collect()
    }

    /// Runs a dependency graph and returns every result by name plus the run report.
    ///
    /// The graph is checked before anything runs (duplicate names, unknown or self dependencies:
    /// [`Error::InvalidGraph`]; cycles: [`Error::Cycle`] with the path `a -> b -> a`). The call
    /// fails with [`Error::TaskFailed`] (the first non-optional task to fail) or
    /// [`Error::Cancelled`]; use [`PerformanceOptimizer::run_graph`] to get the full report of a
    /// failed run as well.
    pub async fn run_with_dependencies<T: Send + Sync + 'static>(
        &self,
        tasks: Vec<Task<T>>,
    ) -> Result<GraphRun<T>> {
        self.run_graph(tasks).await?.into_result()
    }

    /// Runs a dependency graph and returns its [`GraphRun`] whether tasks fail or not: `Err` only
    /// for an invalid graph (or a call outside a tokio runtime). Check
    /// [`GraphRun::is_success`] / [`GraphRun::error`], or call [`GraphRun::into_result`].
    pub async fn run_graph<T: Send + Sync + 'static>(
        &self,
        tasks: Vec<Task<T>>,
    ) -> Result<GraphRun<T>> {
        let graph = Graph::build(&specs(&tasks))?;
        let bodies = tasks.into_iter().map(|t| t.body).collect();
        scheduler::execute(graph, bodies, &self.options).await
    }

    /// Validates the graph and returns its plan (topological order, levels, DOT/JSON) without
    /// running anything.
    pub fn dry_run<T>(&self, tasks: &[Task<T>]) -> Result<GraphPlan> {
        let graph = Graph::build(&specs(tasks))?;
        Ok(GraphPlan::from_graph(&graph))
    }

    /// [`PerformanceOptimizer::run_parallel`] for synchronous callers (C, Python, CLI), on the
    /// shared runtime ([`crate::runtime::block_on`]). The run is driven from a runtime worker, not
    /// from the calling thread, so no completion needs a thread wake-up to reach the scheduler.
    pub fn run_parallel_blocking<T: Send + Sync + 'static>(
        &self,
        tasks: Vec<Task<T>>,
    ) -> Result<Vec<Arc<T>>> {
        let this = self.clone();
        block_on_worker(async move { this.run_parallel(tasks).await })
    }

    /// [`PerformanceOptimizer::run_with_dependencies`] for synchronous callers.
    pub fn run_with_dependencies_blocking<T: Send + Sync + 'static>(
        &self,
        tasks: Vec<Task<T>>,
    ) -> Result<GraphRun<T>> {
        let this = self.clone();
        block_on_worker(async move { this.run_with_dependencies(tasks).await })
    }

    /// [`PerformanceOptimizer::run_graph`] for synchronous callers.
    pub fn run_graph_blocking<T: Send + Sync + 'static>(
        &self,
        tasks: Vec<Task<T>>,
    ) -> Result<GraphRun<T>> {
        let this = self.clone();
        block_on_worker(async move { this.run_graph(tasks).await })
    }
}

/// Blocks on `fut` run as a task of the runtime (a worker thread drives it, so the scheduler and
/// the tasks it starts meet on the runtime's own threads). A panic is passed on to the caller.
fn block_on_worker<R, F>(fut: F) -> Result<R>
where
    R: Send + 'static,
    F: std::future::Future<Output = Result<R>> + Send + 'static,
{
    crate::runtime::block_on(async move {
        match tokio::spawn(fut).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Cancelled(
                "the task graph's runtime shut down before the run finished".into(),
            )),
        }
    })
}

fn specs<T>(tasks: &[Task<T>]) -> Vec<TaskSpec<'_>> {
    tasks
        .iter()
        .map(|t| TaskSpec {
            name: &t.name,
            dependencies: &t.dependencies,
            optional: t.optional,
        })
        .collect()
}
