//! The run loop: starts each task as soon as all its dependencies are done, within the
//! concurrency limit, applies the failure policy, and records outcomes and profiler spans.
//!
//! Each started task is a tokio task in a [`JoinSet`] owned by the run future, so dropping the run
//! future aborts every running async task; a cancellation token does the same and still returns
//! the report.

use super::graph::Graph;
use super::report::{GraphRun, TaskOutcome, TaskStatus, critical_path};
use super::task::{TaskBody, TaskError, TaskInputs};
use super::{FailurePolicy, OptimizerOptions};
use crate::profiler::{OwnedSpanGuard, Profiler};
use futures::FutureExt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a finished tokio task sends back to the loop.
struct Completion<T> {
    index: usize,
    start: Instant,
    end: Instant,
    result: Result<T, TaskError>,
    span_id: Option<String>,
}

tokio::task_local! {
    /// The running task's profiler and span id, for spans of its own under it.
    static CURRENT_SPAN: Option<(Arc<Profiler>, String)>;
}

/// The profiler span of the task whose body is running (on this tokio task), with its profiler:
/// a body can record its own phases as child spans under it. `None` outside a task body, in a
/// run without a profiler, and inside `spawn_blocking` (pass it along to a thread yourself).
pub fn current_span() -> Option<(Arc<Profiler>, String)> {
    CURRENT_SPAN.try_with(|s| s.clone()).ok().flatten()
}

/// A task's profiler span. Ends as succeeded or failed with the task; if the task future is
/// dropped first (abort, cancellation), ends as failed with "cancelled".
struct TaskSpan(Option<OwnedSpanGuard>);

impl TaskSpan {
    fn start(profiler: &Arc<Profiler>, name: &str, parent: Option<&str>) -> Self {
        // The parent was checked before the run; if it ended meanwhile, record a root span rather
        // than none. A span never fails the task.
        let guard = profiler
            .span_owned(name, parent)
            .or_else(|_| profiler.span_owned(name, None))
            .ok();
        Self(guard)
    }

    fn finish(mut self, error: Option<&TaskError>) -> Option<String> {
        let guard = self.0.take()?;
        let id = guard.id().to_string();
        match error {
            // Dropping the guard ends the span as succeeded without building a result.
            None => drop(guard),
            Some(e) => {
                let _ = guard.fail(&e.message);
            }
        }
        Some(id)
    }
}

impl Drop for TaskSpan {
    fn drop(&mut self) {
        if let Some(guard) = self.0.take() {
            let _ = guard.fail("cancelled");
        }
    }
}

/// Tasks whose dependencies are all done, waiting for a slot.
enum ReadyQueue {
    /// No limit: every ready task starts at once, in the order it became ready.
    Fifo(VecDeque<usize>),
    /// A limit: the task with the greatest height (longest chain of dependents, counting itself)
    /// first; ties in input order. The second field is each task's height.
    Longest(BinaryHeap<(u32, Reverse<usize>)>, Vec<u32>),
}

impl ReadyQueue {
    fn push(&mut self, i: usize) {
        match self {
            ReadyQueue::Fifo(q) => q.push_back(i),
            ReadyQueue::Longest(heap, height) => heap.push((height[i], Reverse(i))),
        }
    }

    fn pop(&mut self) -> Option<usize> {
        match self {
            ReadyQueue::Fifo(q) => q.pop_front(),
            ReadyQueue::Longest(heap, _) => heap.pop().map(|(_, Reverse(i))| i),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
}

/// Runs `graph` with `bodies` (index-aligned) under `options`.
///
/// Returns `Err` only when called outside a tokio runtime or when the parent span is not running;
/// task failures and cancellation are in the returned [`GraphRun`].
pub(crate) async fn execute<T>(
    graph: Graph,
    bodies: Vec<Arc<dyn TaskBody<T>>>,
    options: &OptimizerOptions,
) -> crate::Result<GraphRun<T>>
where
    T: Send + Sync + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(crate::Error::InvalidArgument(
            "the task graph must run inside a tokio runtime; use the *_blocking methods from \
             synchronous code"
                .into(),
        ));
    }
    if let (Some(profiler), Some(parent)) = (&options.profiler, &options.parent_span)
        && !profiler.is_running(parent)
    {
        return Err(crate::Error::NotFound(format!(
            "parent span '{parent}' of the task graph is not running in the optimizer's profiler"
        )));
    }
    let n = graph.len();
    let limit = options.concurrency.unwrap_or(usize::MAX);
    let stop_on_failure = options.failure_policy == FailurePolicy::Stop;
    let profiler = options.profiler.clone();
    let parent: Option<Arc<str>> = options.parent_span.as_deref().map(Arc::from);

    let run_start = Instant::now();
    let mut remaining: Vec<usize> = graph.deps.iter().map(Vec::len).collect();
    let mut state = vec![State::Waiting; n];
    let mut results: Vec<Option<Arc<T>>> = vec![None; n];
    let mut errors: Vec<Option<TaskError>> = vec![None; n];
    let mut reasons: Vec<Option<String>> = vec![None; n];
    let mut spans: Vec<Option<String>> = vec![None; n];
    let mut started: Vec<Option<Instant>> = vec![None; n];
    let mut ended: Vec<Option<Instant>> = vec![None; n];
    let mut statuses: Vec<TaskStatus> = vec![TaskStatus::Skipped; n];
    // A task is blocked once a (non-optional) dependency failed or was skipped: it never starts.
    let mut blocked = vec![false; n];

    // Under a limit, the ready task heading the longest chain starts first.
    let mut ready = if limit < n {
        ReadyQueue::Longest(BinaryHeap::new(), graph.heights())
    } else {
        ReadyQueue::Fifo(VecDeque::new())
    };
    for i in (0..n).filter(|&i| remaining[i] == 0) {
        ready.push(i);
    }
    let mut running: JoinSet<Completion<T>> = JoinSet::new();
    let mut first_failure: Option<usize> = None;
    let mut stopping = false;
    let mut cancelled = false;
    let cancel = options.cancel.clone();

    loop {
        if cancel.as_ref().is_some_and(CancellationToken::is_cancelled) {
            cancelled = true;
            break;
        }
        if !stopping {
            while running.len() < limit {
                let Some(i) = ready.pop() else { break };
                if blocked[i] {
                    continue;
                }
                state[i] = State::Running;
                started[i] = Some(Instant::now());
                let inputs = inputs_for(&graph, i, &results, &errors);
                let body = Arc::clone(&bodies[i]);
                let name = Arc::clone(&graph.names[i]);
                let profiler = profiler.clone();
                let parent = parent.clone();
                running.spawn(async move {
                    let span = profiler
                        .as_ref()
                        .map(|p| TaskSpan::start(p, &name, parent.as_deref()));
                    let current = profiler.as_ref().and_then(|p| {
                        let id = span.as_ref()?.0.as_ref()?.id().to_string();
                        Some((Arc::clone(p), id))
                    });
                    let start = Instant::now();
                    let outcome = CURRENT_SPAN
                        .scope(
                            current,
                            AssertUnwindSafe(async { body.run(inputs).await }).catch_unwind(),
                        )
                        .await;
                    let end = Instant::now();
                    let result = outcome.unwrap_or_else(|panic| Err(TaskError::from_panic(panic)));
                    let span_id = span.and_then(|s| s.finish(result.as_ref().err()));
                    Completion {
                        index: i,
                        start,
                        end,
                        result,
                        span_id,
                    }
                });
            }
        }
        if running.is_empty() {
            break;
        }
        let joined = match &cancel {
            Some(token) => tokio::select! {
                biased;
                joined = running.join_next() => joined,
                () = token.cancelled() => {
                    cancelled = true;
                    break;
                }
            },
            None => running.join_next().await,
        };
        let Some(joined) = joined else { break };
        let completion = match joined {
            Ok(c) => c,
            // Panics are caught inside the task; only an abort from outside lands here.
            Err(_) => continue,
        };
        let i = completion.index;
        let failed = completion.result.is_err();
        record(
            completion,
            &mut Records {
                state: &mut state,
                results: &mut results,
                errors: &mut errors,
                spans: &mut spans,
                started: &mut started,
                ended: &mut ended,
                statuses: &mut statuses,
            },
        );
        if failed && !graph.optional[i] {
            if first_failure.is_none() {
                first_failure = Some(i);
            }
            if stop_on_failure {
                stopping = true;
            }
            block_dependents(&graph, i, &mut blocked, &mut reasons);
        }
        // An optional task's failure releases its dependents like a success.
        for &j in &graph.dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 && !blocked[j] {
                ready.push(j);
            }
        }
    }

    if cancelled {
        running.abort_all();
        // Drain: tasks that had finished keep their result; the others end up cancelled.
        while let Some(joined) = running.join_next().await {
            if let Ok(c) = joined {
                if c.result.is_err() && !graph.optional[c.index] && first_failure.is_none() {
                    first_failure = Some(c.index);
                }
                record(
                    c,
                    &mut Records {
                        state: &mut state,
                        results: &mut results,
                        errors: &mut errors,
                        spans: &mut spans,
                        started: &mut started,
                        ended: &mut ended,
                        statuses: &mut statuses,
                    },
                );
            }
        }
    }

    let end_of_run = Instant::now();
    for i in 0..n {
        match state[i] {
            State::Done => {}
            State::Running => {
                statuses[i] = TaskStatus::Cancelled;
                ended[i] = Some(end_of_run);
                reasons[i] = Some("the run was cancelled while it ran".into());
            }
            State::Waiting => {
                statuses[i] = TaskStatus::Skipped;
                if reasons[i].is_none() {
                    reasons[i] = Some(if cancelled {
                        "the run was cancelled before it started".into()
                    } else if let Some(f) = first_failure {
                        format!(
                            "not started: the graph stopped after task '{}' failed",
                            graph.names[f]
                        )
                    } else {
                        "not started".into()
                    });
                }
            }
        }
    }

    let ms = |t: Option<Instant>| t.map(|t| t.duration_since(run_start).as_secs_f64() * 1000.0);
    let end_ms: Vec<Option<f64>> = (0..n)
        .map(|i| {
            if started[i].is_some() {
                ms(ended[i])
            } else {
                None
            }
        })
        .collect();
    let path = critical_path(&graph, &end_ms);
    let outcomes: Vec<TaskOutcome> = (0..n)
        .map(|i| {
            let start_ms = ms(started[i]);
            let end_ms = end_ms[i];
            TaskOutcome {
                name: graph.names[i].to_string(),
                status: statuses[i],
                optional: graph.optional[i],
                dependencies: graph.deps[i]
                    .iter()
                    .map(|&d| graph.names[d].to_string())
                    .collect(),
                start_ms,
                end_ms,
                duration_ms: start_ms.zip(end_ms).map(|(s, e)| e - s),
                error: errors[i].take(),
                reason: reasons[i].take(),
                span_id: spans[i].take(),
            }
        })
        .collect();
    Ok(GraphRun {
        outcomes,
        results,
        index: graph.index,
        critical_path: path,
        total_ms: end_of_run.duration_since(run_start).as_secs_f64() * 1000.0,
        cancelled,
        first_failure,
    })
}

/// The per-task vectors a completion is written into.
struct Records<'a, T> {
    state: &'a mut [State],
    results: &'a mut [Option<Arc<T>>],
    errors: &'a mut [Option<TaskError>],
    spans: &'a mut [Option<String>],
    started: &'a mut [Option<Instant>],
    ended: &'a mut [Option<Instant>],
    statuses: &'a mut [TaskStatus],
}

fn record<T>(c: Completion<T>, r: &mut Records<'_, T>) {
    let i = c.index;
    r.state[i] = State::Done;
    r.started[i] = Some(c.start);
    r.ended[i] = Some(c.end);
    r.spans[i] = c.span_id;
    match c.result {
        Ok(value) => {
            r.results[i] = Some(Arc::new(value));
            r.statuses[i] = TaskStatus::Ok;
        }
        Err(e) => {
            r.errors[i] = Some(e);
            r.statuses[i] = TaskStatus::Failed;
        }
    }
}

/// Marks every task that depends (transitively) on `failed` as blocked, naming the failure.
fn block_dependents(
    graph: &Graph,
    failed: usize,
    blocked: &mut [bool],
    reasons: &mut [Option<String>],
) {
    let mut stack: Vec<usize> = graph.dependents[failed].clone();
    while let Some(j) = stack.pop() {
        if blocked[j] {
            continue;
        }
        blocked[j] = true;
        reasons[j] = Some(format!(
            "skipped: depends on failed task '{}'",
            graph.names[failed]
        ));
        stack.extend_from_slice(&graph.dependents[j]);
    }
}

/// The inputs of task `i`: its dependencies' results (and optional dependencies' errors).
fn inputs_for<T>(
    graph: &Graph,
    i: usize,
    results: &[Option<Arc<T>>],
    errors: &[Option<TaskError>],
) -> TaskInputs<T> {
    let deps = &graph.deps[i];
    if deps.is_empty() {
        return TaskInputs::empty();
    }
    let mut ok = Vec::with_capacity(deps.len());
    let mut failed = Vec::new();
    for &d in deps {
        if let Some(v) = &results[d] {
            ok.push((Arc::clone(&graph.names[d]), Arc::clone(v)));
        } else if let Some(e) = &errors[d] {
            failed.push((Arc::clone(&graph.names[d]), e.clone()));
        }
    }
    TaskInputs::from_parts(ok, failed)
}
