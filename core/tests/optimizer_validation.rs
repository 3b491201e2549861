//! Graph validation (before anything runs) and dry runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use vibetrees_core::optimizer::{OptimizerOptions, PerformanceOptimizer, Task, TaskError};

/// Tasks `(name, deps)` whose bodies count how often any of them ran.
fn counted(spec: &[(&str, &[&str])], ran: &Arc<AtomicUsize>) -> Vec<Task<()>> {
    spec.iter()
        .map(|(name, deps)| {
            let ran = ran.clone();
            Task::new(*name, deps, move |_| {
                let ran = ran.clone();
                async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, TaskError>(())
                }
            })
        })
        .collect()
}

async fn rejected(spec: &[(&str, &[&str])]) -> (String, String) {
    let ran = Arc::new(AtomicUsize::new(0));
    let optimizer = PerformanceOptimizer::default();
    let dry = optimizer.dry_run(&counted(spec, &ran)).unwrap_err();
    let err = optimizer
        .run_with_dependencies(counted(spec, &ran))
        .await
        .unwrap_err();
    assert_eq!(dry.to_string(), err.to_string(), "dry run and run agree");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "nothing ran");
    (err.code().to_string(), err.to_string())
}

#[tokio::test]
async fn duplicate_names_are_refused() {
    let (code, msg) = rejected(&[("a", &[]), ("b", &[]), ("a", &["b"])]).await;
    assert_eq!(code, "INVALID_GRAPH");
    assert_eq!(msg, "invalid task graph: duplicate task name 'a'");
}

#[tokio::test]
async fn unknown_dependencies_name_both_tasks() {
    let (code, msg) = rejected(&[("a", &[]), ("install", &["a", "git"])]).await;
    assert_eq!(code, "INVALID_GRAPH");
    assert_eq!(
        msg,
        "invalid task graph: task 'install' depends on unknown task 'git'"
    );
}

#[tokio::test]
async fn self_dependency_is_refused() {
    let (code, msg) = rejected(&[("a", &[]), ("b", &["a", "b"])]).await;
    assert_eq!(code, "INVALID_GRAPH");
    assert_eq!(msg, "invalid task graph: task 'b' depends on itself");
}

#[tokio::test]
async fn empty_names_are_refused() {
    let (code, msg) = rejected(&[("a", &[]), ("", &["a"])]).await;
    assert_eq!(code, "INVALID_GRAPH");
    assert_eq!(msg, "invalid task graph: task #2 has an empty name");
}

#[tokio::test]
async fn cycles_show_their_path() {
    let (code, msg) = rejected(&[
        ("root", &[]),
        ("a", &["root", "b"]),
        ("b", &["c"]),
        ("c", &["a"]),
    ])
    .await;
    assert_eq!(code, "CYCLE");
    assert_eq!(msg, "dependency cycle: a -> b -> c -> a");
    let (_, msg) = rejected(&[("x", &["y"]), ("y", &["x"])]).await;
    assert_eq!(msg, "dependency cycle: x -> y -> x");
}

#[test]
fn a_zero_concurrency_is_refused() {
    let err = PerformanceOptimizer::new(OptimizerOptions {
        concurrency: Some(0),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
    assert_eq!(
        err.to_string(),
        "invalid argument: concurrency must be at least 1 (or unset for no limit)"
    );
    assert_eq!(
        "sometimes"
            .parse::<vibetrees_core::optimizer::FailurePolicy>()
            .unwrap_err()
            .to_string(),
        "invalid argument: unknown failure policy 'sometimes' (expected 'stop' or 'continue')"
    );
}

#[test]
fn a_dry_run_plans_without_running_anything() {
    let ran = Arc::new(AtomicUsize::new(0));
    let tasks = counted(
        &[
            ("containers", &["env", "install"]),
            ("git", &[]),
            ("ports", &[]),
            ("env", &["ports", "git"]),
            ("install", &["git"]),
            ("mcp", &["git", "ports"]),
        ],
        &ran,
    );
    let plan = PerformanceOptimizer::default().dry_run(&tasks).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(
        plan.order,
        ["git", "ports", "env", "install", "containers", "mcp"]
    );
    assert_eq!(
        plan.levels,
        vec![
            vec!["git".to_string(), "ports".into()],
            vec!["env".into(), "install".into(), "mcp".into()],
            vec!["containers".into()],
        ]
    );
    assert_eq!(plan.tasks[0].level, 2);
    // Ties go to the dependency declared first: env declares ports before git.
    assert_eq!(plan.longest_chain, ["ports", "env", "containers"]);

    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    assert_eq!(json["tasks"][0]["name"], "containers");
    assert_eq!(
        json["tasks"][0]["dependencies"],
        serde_json::json!(["env", "install"])
    );
    assert_eq!(json["levels"][2][0], "containers");
    assert_eq!(json["longestChain"][1], "env");

    let dot = plan.to_dot();
    assert!(dot.starts_with("digraph tasks {"), "{dot}");
    assert!(dot.contains("\"env\" -> \"containers\";"), "{dot}");
    assert!(dot.contains("\"git\" -> \"install\";"), "{dot}");
    assert!(dot.contains("{ rank=same; \"git\"; \"ports\" }"), "{dot}");
}
