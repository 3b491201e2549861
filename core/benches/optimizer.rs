//! Optimizer benchmarks (criterion): scheduling overhead per task on 10,000-task graphs of no-op
//! tasks: a chain, a wide fan-out and a random DAG. Throughput is in tasks, so criterion's
//! "time per element" is the overhead per task (target: under 5 µs).
//!
//! `driven_from_caller_thread` awaits the run on the calling (non-runtime) thread, as opposed to
//! the `*_blocking` wrappers used elsewhere, which drive it from a runtime worker.
//! For scale, `raw_tokio_joinset` spawns the same number of no-op tokio tasks into a `JoinSet`
//! with no graph at all, and `*_with_profiler` records every task as a profiler span.
//!
//! `cargo bench -p vibetrees-core --bench optimizer` runs everything;
//! `cargo bench -p vibetrees-core --bench optimizer -- chain` one shape.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use vibetrees_core::optimizer::{OptimizerOptions, PerformanceOptimizer, Task, TaskError};
use vibetrees_core::{Profiler, runtime};

const TASKS: usize = 10_000;

/// Builds one graph shape.
type MakeGraph = fn() -> Vec<Task<()>>;

fn noop(name: String, deps: Vec<String>) -> Task<()> {
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    Task::new(name, &deps, |_| async { Ok::<_, TaskError>(()) })
}

fn name(i: usize) -> String {
    format!("t{i}")
}

/// t0 <- t1 <- t2 <- ... : every task waits for the one before.
fn chain() -> Vec<Task<()>> {
    (0..TASKS)
        .map(|i| noop(name(i), if i == 0 { vec![] } else { vec![name(i - 1)] }))
        .collect()
}

/// One root and 9,999 tasks that all depend on it.
fn fan_out() -> Vec<Task<()>> {
    (0..TASKS)
        .map(|i| noop(name(i), if i == 0 { vec![] } else { vec![name(0)] }))
        .collect()
}

/// Each task depends on up to 3 earlier tasks picked by a fixed-seed generator.
fn random_dag() -> Vec<Task<()>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: usize| {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % bound
    };
    (0..TASKS)
        .map(|i| {
            let mut deps: Vec<String> = Vec::new();
            if i > 0 {
                for _ in 0..next(4) {
                    let d = name(next(i));
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
            }
            noop(name(i), deps)
        })
        .collect()
}

fn graphs(c: &mut Criterion) {
    let plain = PerformanceOptimizer::default();
    let mut g = c.benchmark_group("optimizer_10k");
    g.throughput(Throughput::Elements(TASKS as u64));
    g.sample_size(20);
    let shapes: [(&str, MakeGraph); 3] = [
        ("chain", chain),
        ("fan_out", fan_out),
        ("random_dag", random_dag),
    ];
    for (shape, make) in shapes {
        g.bench_with_input(BenchmarkId::new("run_graph", shape), &make, |b, make| {
            b.iter_batched(
                make,
                |tasks| {
                    let run = plain.run_graph_blocking(tasks).unwrap();
                    assert!(run.is_success());
                    black_box(run)
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.bench_function(
        BenchmarkId::new("run_graph_with_profiler", "random_dag"),
        |b| {
            let profiler = Arc::new(Profiler::new());
            let profiled = PerformanceOptimizer::new(OptimizerOptions {
                profiler: Some(profiler),
                ..Default::default()
            })
            .unwrap();
            b.iter_batched(
                random_dag,
                |tasks| black_box(profiled.run_graph_blocking(tasks).unwrap()),
                BatchSize::LargeInput,
            )
        },
    );
    g.bench_function(BenchmarkId::new("run_parallel", "independent"), |b| {
        b.iter_batched(
            || {
                (0..TASKS)
                    .map(|i| noop(name(i), vec![]))
                    .collect::<Vec<_>>()
            },
            |tasks| black_box(plain.run_parallel_blocking(tasks).unwrap()),
            BatchSize::LargeInput,
        )
    });
    g.bench_function(
        BenchmarkId::new("driven_from_caller_thread", "chain"),
        |b| {
            // The async API awaited directly by a non-runtime thread: every completion wakes that
            // thread (the *_blocking wrappers avoid this by driving the run from a worker).
            b.iter_batched(
                chain,
                |tasks| black_box(runtime::runtime().block_on(plain.run_graph(tasks)).unwrap()),
                BatchSize::LargeInput,
            )
        },
    );
    g.bench_function(BenchmarkId::new("raw_tokio_joinset", "independent"), |b| {
        b.iter(|| {
            runtime::block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..TASKS {
                    set.spawn(async { black_box(()) });
                }
                while let Some(r) = set.join_next().await {
                    r.unwrap();
                }
            })
        })
    });
    g.bench_function(BenchmarkId::new("dry_run", "random_dag"), |b| {
        let tasks = random_dag();
        b.iter(|| black_box(plain.dry_run(&tasks).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, graphs);
criterion_main!(benches);
