//! The quick start in Rust: a profiler, an optimizer sharing it, and the task graph
//! scan -> { lint, test } -> package.
//! Run: cargo run -p vibetrees-core --example quickstart
use std::collections::BTreeMap;
use std::sync::Arc;

use vibetrees_core::{OptimizerOptions, PerformanceOptimizer, Profiler, Task, TaskInputs};

/// A task that prints its dependencies' results (keyed by task name) and returns "<name>: ok".
fn build_step(name: &'static str, dependencies: &[&str]) -> Task<String> {
    Task::new(
        name,
        dependencies,
        move |inputs: TaskInputs<String>| async move {
            let got: BTreeMap<&str, &str> = inputs
                .iter()
                .map(|(dep, out)| (dep, out.as_str()))
                .collect();
            println!("  {name:<8} got {got:?}");
            Ok(format!("{name}: ok")) // Err(TaskError::new("...")) fails the task
        },
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("vibetrees-core {}", vibetrees_core::VERSION);

    // A profiler shared by the optimizer: every task becomes a span.
    let profiler = Arc::new(Profiler::new());
    let optimizer = PerformanceOptimizer::new(OptimizerOptions {
        profiler: Some(Arc::clone(&profiler)),
        concurrency: Some(2),
        ..OptimizerOptions::default()
    })?;

    // scan -> { lint, test } -> package
    let run = optimizer.run_with_dependencies_blocking(vec![
        build_step("scan", &[]),
        build_step("lint", &["scan"]),
        build_step("test", &["scan"]),
        build_step("package", &["lint", "test"]),
    ])?;
    let results: BTreeMap<&str, &str> = run
        .results()
        .map(|(name, out)| (name, out.as_str()))
        .collect();
    println!("results: {results:?}");

    // Errors are values: an unknown id is NOT_FOUND, and the message names it.
    let missing = profiler
        .end("op-404")
        .expect_err("op-404 was never started");
    println!(
        "ending op-404 (expected) failed [{}]: {missing}",
        missing.code()
    );

    println!("metrics: {}", serde_json::to_string(&profiler.metrics())?);
    Ok(())
}
