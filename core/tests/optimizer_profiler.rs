//! Every task is a profiler span, under the optimizer's parent span when one is given.

use std::sync::Arc;
use vibetrees_core::Profiler;
use vibetrees_core::optimizer::{OptimizerOptions, PerformanceOptimizer, Task, TaskError};

fn tasks() -> Vec<Task<u8>> {
    vec![
        Task::new("git", &[], |_| async { Ok::<_, TaskError>(1) }),
        Task::blocking("install", &["git"], |_| Ok(2)),
        Task::new("mcp", &["git"], |_| async {
            Err::<u8, _>(TaskError::new("no servers"))
        })
        .optional(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_spans_are_children_of_the_parent_span() {
    let profiler = Arc::new(Profiler::new());
    let parent = profiler.start("create-worktree-total", None).unwrap();
    let optimizer = PerformanceOptimizer::new(OptimizerOptions {
        profiler: Some(profiler.clone()),
        parent_span: Some(parent.clone()),
        ..Default::default()
    })
    .unwrap();
    let run = optimizer.run_with_dependencies(tasks()).await.unwrap();
    let total = profiler.end(&parent).unwrap();

    let mut children: Vec<(&str, bool)> = total
        .children
        .iter()
        .map(|c| (c.name.as_str(), c.failed))
        .collect();
    children.sort();
    assert_eq!(
        children,
        [("git", false), ("install", false), ("mcp", true)]
    );
    for outcome in run.outcomes() {
        let id = outcome
            .span_id
            .as_deref()
            .expect("every task that ran has a span");
        let span = profiler.get_result(id).unwrap();
        assert_eq!(span.name, outcome.name);
        assert_eq!(span.parent_id.as_deref(), Some(parent.as_str()));
    }
    let mcp = profiler
        .get_result(run.outcome("mcp").unwrap().span_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(mcp.error.as_deref(), Some("no servers"));
    assert_eq!(profiler.get_stats("install").unwrap().count, 1);
    assert_eq!(profiler.get_stats("mcp").unwrap().failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_parent_spans_are_roots_and_a_dead_parent_is_refused() {
    let profiler = Arc::new(Profiler::new());
    let optimizer = PerformanceOptimizer::new(OptimizerOptions {
        profiler: Some(profiler.clone()),
        ..Default::default()
    })
    .unwrap();
    let run = optimizer.run_with_dependencies(tasks()).await.unwrap();
    let git = profiler
        .get_result(run.outcome("git").unwrap().span_id.as_deref().unwrap())
        .unwrap();
    assert_eq!(git.parent_id, None);

    let ended = profiler.start("gone", None).unwrap();
    profiler.end(&ended).unwrap();
    let err = optimizer
        .with_parent_span(ended.clone())
        .run_with_dependencies(tasks())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    assert_eq!(
        err.to_string(),
        format!(
            "not found: parent span '{ended}' of the task graph is not running in the optimizer's profiler"
        )
    );
    assert_eq!(profiler.get_stats("git").unwrap().count, 1, "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_span_ends_as_failed() {
    let profiler = Arc::new(Profiler::new());
    let token = vibetrees_core::optimizer::CancellationToken::new();
    let optimizer = PerformanceOptimizer::new(OptimizerOptions {
        profiler: Some(profiler.clone()),
        ..Default::default()
    })
    .unwrap()
    .with_cancel(token.clone());
    let run = optimizer
        .run_graph(vec![Task::new("hang", &[], move |_| {
            let token = token.clone();
            async move {
                token.cancel();
                std::future::pending::<()>().await;
                Ok::<u8, TaskError>(0)
            }
        })])
        .await
        .unwrap();
    let outcome = run.outcome("hang").unwrap();
    assert_eq!(
        outcome.status,
        vibetrees_core::optimizer::TaskStatus::Cancelled
    );
    assert_eq!(profiler.running_count(), 0, "no span left running");
    let stats = profiler.get_stats("hang").unwrap();
    assert_eq!((stats.count, stats.failures), (1, 1));
}
