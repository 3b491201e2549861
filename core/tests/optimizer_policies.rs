//! Failure policies (stop, continue, optional tasks), cancellation and blocking bodies.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use vibetrees_core::optimizer::{
    CancellationToken, FailurePolicy, OptimizerOptions, PerformanceOptimizer, Task, TaskError,
    TaskStatus,
};

fn optimizer(concurrency: Option<usize>, failure_policy: FailurePolicy) -> PerformanceOptimizer {
    PerformanceOptimizer::new(OptimizerOptions {
        concurrency,
        failure_policy,
        ..Default::default()
    })
    .unwrap()
}

/// A task that records its name in `ran` and succeeds.
fn ok(name: &str, deps: &[&str], ran: &Arc<Mutex<Vec<String>>>) -> Task<String> {
    let ran = ran.clone();
    let me = name.to_string();
    Task::new(name, deps, move |_| {
        let (ran, me) = (ran.clone(), me.clone());
        async move {
            ran.lock().unwrap().push(me.clone());
            Ok::<_, TaskError>(me)
        }
    })
}

/// A task that records its name in `ran` and fails with `message`.
fn failing(
    name: &str,
    deps: &[&str],
    message: &'static str,
    ran: &Arc<Mutex<Vec<String>>>,
) -> Task<String> {
    let ran = ran.clone();
    let me = name.to_string();
    Task::new(name, deps, move |_| {
        let (ran, me) = (ran.clone(), me.clone());
        async move {
            ran.lock().unwrap().push(me);
            Err(TaskError::with_code("E_TEST", message))
        }
    })
}

fn sorted(v: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    let mut v = v.lock().unwrap().clone();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_policy_starts_nothing_new_and_skips_the_rest() {
    // With one slot, `fail` runs first; after it nothing starts.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let tasks = vec![
        failing("fail", &[], "exit 1", &ran),
        ok("independent", &[], &ran),
        ok("dependent", &["fail"], &ran),
        ok("grandchild", &["dependent"], &ran),
    ];
    let opt = optimizer(Some(1), FailurePolicy::Stop);
    let run = opt.run_graph(tasks).await.unwrap();
    assert_eq!(sorted(&ran), ["fail"]);
    assert!(!run.is_success());
    let status = |n: &str| run.outcome(n).unwrap().status;
    assert_eq!(status("fail"), TaskStatus::Failed);
    assert_eq!(status("independent"), TaskStatus::Skipped);
    assert_eq!(status("dependent"), TaskStatus::Skipped);
    assert_eq!(status("grandchild"), TaskStatus::Skipped);
    let reason = |n: &str| run.outcome(n).unwrap().reason.clone().unwrap();
    assert_eq!(
        reason("independent"),
        "not started: the graph stopped after task 'fail' failed"
    );
    assert_eq!(
        reason("grandchild"),
        "skipped: depends on failed task 'fail'"
    );
    let failed = run.outcome("fail").unwrap();
    assert_eq!(
        failed.error.as_ref().unwrap().code.as_deref(),
        Some("E_TEST")
    );
    assert!(failed.start_ms.is_some() && failed.end_ms.is_some());
    assert!(run.outcome("independent").unwrap().start_ms.is_none());
    let err = run.into_result().unwrap_err();
    assert_eq!(err.to_string(), "task 'fail' failed: exit 1");

    // run_with_dependencies reports the same failure as an error.
    let ran = Arc::new(Mutex::new(Vec::new()));
    let err = opt
        .run_with_dependencies(vec![
            failing("fail", &[], "exit 1", &ran),
            ok("x", &["fail"], &ran),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TASK_FAILED");
    assert_eq!(err.to_string(), "task 'fail' failed: exit 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_policy_lets_running_tasks_finish() {
    // `slow` is running when `fail` fails (fail only fails once slow has started); slow finishes.
    let started = Arc::new(Notify::new());
    let ran = Arc::new(Mutex::new(Vec::new()));
    let slow = {
        let (started, ran) = (started.clone(), ran.clone());
        Task::new("slow", &[], move |_| {
            let (started, ran) = (started.clone(), ran.clone());
            async move {
                started.notify_one();
                tokio::task::yield_now().await;
                ran.lock().unwrap().push("slow".to_string());
                Ok::<_, TaskError>("slow".to_string())
            }
        })
    };
    let fail = {
        let started = started.clone();
        Task::new("fail", &[], move |_| {
            let started = started.clone();
            async move {
                started.notified().await;
                Err::<String, _>(TaskError::new("late failure"))
            }
        })
    };
    let run = optimizer(None, FailurePolicy::Stop)
        .run_graph(vec![slow, fail, ok("after", &["slow"], &ran)])
        .await
        .unwrap();
    assert_eq!(run.outcome("slow").unwrap().status, TaskStatus::Ok);
    assert_eq!(run.outcome("fail").unwrap().status, TaskStatus::Failed);
    assert_eq!(
        run.error().unwrap().to_string(),
        "task 'fail' failed: late failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_policy_runs_every_branch_that_does_not_depend_on_the_failure() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let tasks = vec![
        failing("fail", &[], "broken", &ran),
        ok("child", &["fail"], &ran),
        ok("grandchild", &["child"], &ran),
        ok("i1", &[], &ran),
        ok("i2", &["i1"], &ran),
        ok("i3", &["i2"], &ran),
        ok("mixed", &["i3", "child"], &ran),
    ];
    let opt = optimizer(Some(1), FailurePolicy::Continue);
    let run = opt.run_graph(tasks).await.unwrap();
    assert_eq!(sorted(&ran), ["fail", "i1", "i2", "i3"]);
    for skipped in ["child", "grandchild", "mixed"] {
        let o = run.outcome(skipped).unwrap();
        assert_eq!(o.status, TaskStatus::Skipped, "{skipped}");
        assert_eq!(
            o.reason.as_deref(),
            Some("skipped: depends on failed task 'fail'")
        );
    }
    assert_eq!(run.outcome("i3").unwrap().status, TaskStatus::Ok);
    assert_eq!(run.result("i3").map(|s| s.as_str()), Some("i3"));
    let report = run.report();
    assert!(!report.success);
    assert_eq!(report.failed_task.as_deref(), Some("fail"));
    // The call itself still fails, naming the first failure.
    let ran2 = Arc::new(Mutex::new(Vec::new()));
    let err = opt
        .run_with_dependencies(vec![
            failing("f", &[], "broken", &ran2),
            ok("g", &[], &ran2),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "task 'f' failed: broken");
    assert_eq!(sorted(&ran2), ["f", "g"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_failure_is_reported_and_its_dependents_still_run() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let saw = Arc::new(Mutex::new(None));
    let child = {
        let saw = saw.clone();
        Task::new("child", &["opt", "base"], move |inputs| {
            let saw = saw.clone();
            async move {
                let failed: Vec<(String, String)> = inputs
                    .failed()
                    .map(|(n, e)| (n.to_string(), e.message.clone()))
                    .collect();
                *saw.lock().unwrap() = Some((inputs.get("opt").is_none(), failed, inputs.len()));
                Ok::<_, TaskError>("child".to_string())
            }
        })
    };
    let tasks = vec![
        failing("opt", &[], "mcp discovery failed", &ran).optional(),
        ok("base", &[], &ran),
        child,
    ];
    for policy in [FailurePolicy::Stop, FailurePolicy::Continue] {
        let run = optimizer(None, policy)
            .run_with_dependencies(tasks.clone())
            .await
            .expect("an optional failure does not fail the run");
        let opt = run.outcome("opt").unwrap();
        assert_eq!(opt.status, TaskStatus::Failed);
        assert!(opt.optional);
        assert_eq!(opt.error.as_ref().unwrap().message, "mcp discovery failed");
        assert_eq!(run.outcome("child").unwrap().status, TaskStatus::Ok);
        assert!(run.report().success);
        let (opt_missing, failed, n) = saw.lock().unwrap().take().unwrap();
        assert!(opt_missing);
        assert_eq!(
            failed,
            [("opt".to_string(), "mcp discovery failed".to_string())]
        );
        assert_eq!(n, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_token_stops_the_run_and_keeps_the_report() {
    let token = CancellationToken::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(Mutex::new(Vec::new()));
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let waiting = {
        let (token, dropped) = (token.clone(), dropped.clone());
        Task::new("waiting", &["first"], move |_| {
            let (token, dropped) = (token.clone(), dropped.clone());
            async move {
                let _guard = SetOnDrop(dropped);
                token.cancel(); // cancel the run from inside, then wait forever
                std::future::pending::<()>().await;
                Ok::<_, TaskError>("never".to_string())
            }
        })
    };
    let tasks = vec![
        ok("first", &[], &ran),
        waiting,
        ok("after", &["waiting"], &ran),
    ];
    let run = tokio::time::timeout(
        Duration::from_secs(30),
        optimizer(None, FailurePolicy::Stop)
            .with_cancel(token)
            .run_graph(tasks),
    )
    .await
    .expect("cancellation ends the run")
    .unwrap();
    assert!(run.is_cancelled());
    assert!(
        dropped.load(Ordering::SeqCst),
        "the running task's future was dropped"
    );
    assert_eq!(run.outcome("first").unwrap().status, TaskStatus::Ok);
    assert_eq!(
        run.outcome("waiting").unwrap().status,
        TaskStatus::Cancelled
    );
    assert_eq!(run.outcome("after").unwrap().status, TaskStatus::Skipped);
    assert_eq!(sorted(&ran), ["first"]);
    let err = run.into_result().unwrap_err();
    assert_eq!(err.code(), "CANCELLED");
    assert_eq!(
        err.to_string(),
        "cancelled: task graph cancelled; 2 task(s) did not finish"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_future_aborts_running_tasks_and_starts_nothing_more() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let dropped_tx = Arc::new(Mutex::new(Some(dropped_tx)));
    let started = Arc::new(Notify::new());
    let later_ran = Arc::new(AtomicUsize::new(0));
    /// Signals when the task's future is dropped.
    struct SignalOnDrop(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for SignalOnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let tasks = vec![
        {
            let (dropped_tx, started) = (dropped_tx.clone(), started.clone());
            Task::new("forever", &[], move |_| {
                let (dropped_tx, started) = (dropped_tx.clone(), started.clone());
                async move {
                    let _guard = SignalOnDrop(dropped_tx.lock().unwrap().take());
                    started.notify_one();
                    std::future::pending::<()>().await;
                    Ok::<_, TaskError>(())
                }
            })
        },
        {
            let later_ran = later_ran.clone();
            Task::new("later", &["forever"], move |_| {
                let later_ran = later_ran.clone();
                async move {
                    later_ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
        },
    ];
    let opt = PerformanceOptimizer::default();
    let run = opt.run_graph(tasks);
    tokio::select! {
        _ = run => panic!("the run cannot finish"),
        _ = started.notified() => {} // leaving the select drops the run future
    }
    // The runtime drops the aborted task's future soon after; the guard signals it.
    tokio::time::timeout(Duration::from_secs(30), dropped_rx)
        .await
        .expect("the running task was aborted")
        .unwrap();
    assert_eq!(later_ran.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn blocking_bodies_do_not_stall_the_scheduler() {
    // One worker thread. `waiter` blocks its thread until `sender` (an async task) has run: if
    // blocking bodies ran on the worker, `sender` could never run.
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let rx = Arc::new(Mutex::new(rx));
    let tasks = vec![
        Task::blocking("waiter", &[], move |_| {
            let got = rx
                .lock()
                .unwrap()
                .recv()
                .map_err(|e| TaskError::new(e.to_string()))?;
            Ok(got)
        }),
        Task::new("sender", &[], move |_| {
            let tx = tx.clone();
            async move {
                tokio::task::yield_now().await;
                tx.send(7).unwrap();
                Ok::<_, TaskError>(0)
            }
        }),
        Task::blocking("nested", &["waiter"], |inputs| {
            // A blocking body that itself runs a whole graph with the blocking API.
            let inner = PerformanceOptimizer::default().run_with_dependencies_blocking(vec![
                Task::new("x", &[], |_| async { Ok::<u32, TaskError>(1) }),
                Task::blocking("y", &["x"], |i| Ok(**i.get("x").unwrap() + 1)),
            ])?;
            Ok(**inputs.get("waiter").unwrap() * 10 + **inner.result("y").unwrap())
        }),
    ];
    let run = tokio::time::timeout(
        Duration::from_secs(30),
        PerformanceOptimizer::default().run_with_dependencies(tasks),
    )
    .await
    .expect("no deadlock")
    .unwrap();
    assert_eq!(**run.result("nested").unwrap(), 72);
}

#[test]
fn synchronous_callers_use_the_blocking_wrappers() {
    let opt = PerformanceOptimizer::default();
    let results = opt
        .run_parallel_blocking(vec![
            Task::blocking("a", &[], |_| Ok::<_, TaskError>(1)),
            Task::new("b", &[], |_| async { Ok(2) }),
        ])
        .unwrap();
    assert_eq!(results.iter().map(|r| **r).collect::<Vec<_>>(), [1, 2]);
    let run = opt
        .run_graph_blocking(vec![Task::blocking("a", &[], |_| {
            Err::<u8, _>(TaskError::new("no"))
        })])
        .unwrap();
    assert_eq!(run.error().unwrap().to_string(), "task 'a' failed: no");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cancelled_before_the_run_starts_nothing() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let token = CancellationToken::new();
    token.cancel();
    let run = PerformanceOptimizer::default()
        .with_cancel(token)
        .run_graph(vec![ok("a", &[], &ran), ok("b", &["a"], &ran)])
        .await
        .unwrap();
    assert!(ran.lock().unwrap().is_empty());
    assert!(run.is_cancelled());
    for o in run.outcomes() {
        assert_eq!(o.status, TaskStatus::Skipped);
        assert_eq!(
            o.reason.as_deref(),
            Some("the run was cancelled before it started")
        );
    }
    assert_eq!(run.error().unwrap().code(), "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_graph_is_a_successful_run() {
    let opt = PerformanceOptimizer::default();
    let run = opt
        .run_with_dependencies(Vec::<Task<u8>>::new())
        .await
        .unwrap();
    assert!(run.is_success() && run.outcomes().is_empty() && run.critical_path().is_empty());
    assert!(
        opt.run_parallel(Vec::<Task<u8>>::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_wrappers_work_inside_a_current_thread_runtime() {
    // A synchronous API called from async code on a single-threaded runtime must not deadlock.
    let run = PerformanceOptimizer::default()
        .run_with_dependencies_blocking(vec![
            Task::new("a", &[], |_| async { Ok::<u8, TaskError>(1) }),
            Task::blocking("b", &["a"], |i| Ok(**i.get("a").unwrap() + 1)),
        ])
        .unwrap();
    assert_eq!(**run.result("b").unwrap(), 2);
}
