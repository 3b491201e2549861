//! The optimizer's scheduling rules, tested by ORDER (events, barriers, notifies), never by time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Barrier, Notify};
use vibetrees_core::optimizer::{OptimizerOptions, PerformanceOptimizer, Task, TaskError};

/// A shared, ordered log of events.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, e: &str) {
        self.0.lock().unwrap().push(e.to_string());
    }
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    fn position(&self, e: &str) -> usize {
        self.events()
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("event {e} missing from {:?}", self.events()))
    }
}

fn optimizer(concurrency: Option<usize>) -> PerformanceOptimizer {
    PerformanceOptimizer::new(OptimizerOptions {
        concurrency,
        ..Default::default()
    })
    .unwrap()
}

/// A deadlock guard only: a correct scheduler finishes in milliseconds; a wave scheduler never does.
async fn guard<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: the run never finished (deadlock)"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_starts_as_soon_as_its_own_dependencies_are_done() {
    // a -> c and b -> d; `a` only ends once `d` has started. A scheduler running in waves would
    // wait for `a` before starting `d`, and never finish.
    let log = Log::default();
    let release_a = Arc::new(Notify::new());
    let tasks = vec![
        Task::new("a", &[], {
            let (log, release_a) = (log.clone(), release_a.clone());
            move |_| {
                let (log, release_a) = (log.clone(), release_a.clone());
                async move {
                    log.push("a:start");
                    release_a.notified().await;
                    log.push("a:end");
                    Ok::<_, TaskError>("a".to_string())
                }
            }
        }),
        Task::new("b", &[], {
            let log = log.clone();
            move |_| {
                let log = log.clone();
                async move {
                    log.push("b:run");
                    Ok("b".to_string())
                }
            }
        }),
        Task::new("c", &["a"], {
            let log = log.clone();
            move |_| {
                let log = log.clone();
                async move {
                    log.push("c:run");
                    Ok("c".to_string())
                }
            }
        }),
        Task::new("d", &["b"], {
            let (log, release_a) = (log.clone(), release_a.clone());
            move |_| {
                let (log, release_a) = (log.clone(), release_a.clone());
                async move {
                    log.push("d:start");
                    release_a.notify_one();
                    Ok("d".to_string())
                }
            }
        }),
    ];
    let run = guard("a->c, b->d", optimizer(None).run_with_dependencies(tasks))
        .await
        .unwrap();
    assert!(log.position("d:start") < log.position("a:end"));
    assert!(log.position("b:run") < log.position("d:start"));
    assert!(log.position("a:end") < log.position("c:run"));
    assert_eq!(run.result("c").map(|s| s.as_str()), Some("c"));
}

/// `n` independent tasks that meet at a barrier of `group` and count how many run at once.
fn barrier_tasks(
    n: usize,
    group: usize,
    in_flight: &Arc<AtomicUsize>,
    max: &Arc<AtomicUsize>,
) -> Vec<Task<usize>> {
    let barrier = Arc::new(Barrier::new(group));
    (0..n)
        .map(|i| {
            let (barrier, in_flight, max) = (barrier.clone(), in_flight.clone(), max.clone());
            Task::new(format!("t{i}"), &[], move |_| {
                let (barrier, in_flight, max) = (barrier.clone(), in_flight.clone(), max.clone());
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    barrier.wait().await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(i)
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_is_respected() {
    // Groups of 3 meet at a barrier: the run only finishes if 3 run at once, and never more may.
    let (in_flight, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks = barrier_tasks(21, 3, &in_flight, &max);
    let results = guard("limit 3", optimizer(Some(3)).run_parallel(tasks))
        .await
        .unwrap();
    assert_eq!(max.load(Ordering::SeqCst), 3);
    assert_eq!(
        results.iter().map(|r| **r).collect::<Vec<_>>(),
        (0..21).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_limit_every_ready_task_runs_at_once() {
    let (in_flight, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks = barrier_tasks(64, 64, &in_flight, &max);
    guard("unlimited", optimizer(None).run_with_dependencies(tasks))
        .await
        .unwrap();
    assert_eq!(max.load(Ordering::SeqCst), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_receive_their_dependencies_results_by_name() {
    let tasks = vec![
        Task::new("d", &["c", "b"], |inputs| async move {
            let names: Vec<&str> = inputs.iter().map(|(n, _)| n).collect();
            assert_eq!(names, ["c", "b"], "declaration order");
            Ok::<_, TaskError>(**inputs.get("b").unwrap() * 100 + **inputs.get("c").unwrap())
        }),
        Task::new("a", &[], |inputs| async move {
            assert!(inputs.is_empty());
            Ok(1)
        }),
        Task::new("b", &["a"], |inputs| async move {
            Ok(**inputs.get("a").unwrap() + 1)
        }),
        Task::blocking("c", &["a"], |inputs| Ok(**inputs.get("a").unwrap() + 2)),
    ];
    let run = optimizer(None).run_with_dependencies(tasks).await.unwrap();
    assert_eq!(**run.result("d").unwrap(), 203);
    let all = run.into_results();
    assert_eq!(all.len(), 4);
    assert_eq!(*all["b"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_parallel_keeps_input_order_whatever_the_finishing_order() {
    // t0 waits for t1, t1 waits for t2: they finish in reverse input order.
    let gates: Vec<Arc<Notify>> = (0..3).map(|_| Arc::new(Notify::new())).collect();
    let log = Log::default();
    let tasks: Vec<Task<String>> = (0..3)
        .map(|i| {
            let (gates, log) = (gates.clone(), log.clone());
            Task::new(format!("t{i}"), &[], move |_| {
                let (gates, log) = (gates.clone(), log.clone());
                async move {
                    if i < 2 {
                        gates[i].notified().await;
                    }
                    log.push(&format!("t{i}"));
                    if i > 0 {
                        gates[i - 1].notify_one();
                    }
                    Ok::<_, TaskError>(format!("result {i}"))
                }
            })
        })
        .collect();
    let results = guard("run_parallel", optimizer(None).run_parallel(tasks))
        .await
        .unwrap();
    assert_eq!(log.events(), ["t2", "t1", "t0"]);
    let results: Vec<&str> = results.iter().map(|s| s.as_str()).collect();
    assert_eq!(results, ["result 0", "result 1", "result 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_parallel_fails_with_the_first_failure_by_its_own_message() {
    let ran = Arc::new(AtomicUsize::new(0));
    let make = |name: &str, fail: Option<&'static str>| {
        let ran = ran.clone();
        Task::new(name, &[], move |_| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                match fail {
                    Some(m) => Err(TaskError::new(m)),
                    None => Ok(1u8),
                }
            }
        })
    };
    let tasks = vec![
        make("ok0", None),
        make("bad1", Some("boom 1")),
        make("bad2", Some("boom 2")),
    ];
    let err = optimizer(Some(1)).run_parallel(tasks).await.unwrap_err();
    assert_eq!(err.code(), "TASK_FAILED");
    assert_eq!(err.to_string(), "task 'bad1' failed: boom 1");
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "nothing starts after the first failure"
    );

    let with_deps = vec![
        make("x", None),
        Task::new("y", &["x"], |_| async { Ok(0u8) }),
    ];
    let err = optimizer(None).run_parallel(with_deps).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument: run_parallel: task 'y' has dependencies; use run_with_dependencies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_task_fails_with_the_panic_message() {
    let tasks = vec![Task::new("p", &[], |_| async {
        if true {
            panic!("kaboom");
        }
        Ok::<u8, TaskError>(0)
    })];
    let err = optimizer(None)
        .run_with_dependencies(tasks)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "task 'p' failed: task panicked: kaboom");
    let tasks = vec![Task::<u8>::blocking("q", &[], |_| {
        panic!("blocking kaboom")
    })];
    let run = optimizer(None).run_graph(tasks).await.unwrap();
    let outcome = run.outcome("q").unwrap();
    assert_eq!(
        outcome.error.as_ref().unwrap().message,
        "task panicked: blocking kaboom"
    );
    assert_eq!(
        outcome.error.as_ref().unwrap().code.as_deref(),
        Some("PANIC")
    );
}

#[test]
fn task_errors_keep_core_codes() {
    let e: TaskError = vibetrees_core::Error::NotFound("branch 'x'".into()).into();
    assert_eq!(e.code.as_deref(), Some("NOT_FOUND"));
    assert_eq!(e.message, "not found: branch 'x'");
    let e = TaskError::with_code("E42", "bad");
    assert_eq!(
        (e.code.as_deref(), e.to_string().as_str()),
        (Some("E42"), "bad")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_limit_the_task_heading_the_longest_chain_starts_first() {
    // One slot. Ready at first: a (nothing after it) and b (b -> c -> d): b goes first. Then a
    // and c are ready: c heads the longer chain. Then a and d tie: input order.
    let log = Log::default();
    let step = |name: &str, deps: &[&str]| {
        let log = log.clone();
        let me = name.to_string();
        Task::new(name, deps, move |_| {
            let (log, me) = (log.clone(), me.clone());
            async move {
                log.push(&me);
                Ok::<_, TaskError>(())
            }
        })
    };
    let tasks = vec![
        step("a", &[]),
        step("b", &[]),
        step("c", &["b"]),
        step("d", &["c"]),
    ];
    optimizer(Some(1))
        .run_with_dependencies(tasks)
        .await
        .unwrap();
    assert_eq!(log.events(), ["b", "c", "a", "d"]);
}
