//! Run reports: outcomes, critical path, DOT and JSON.

use vibetrees_core::optimizer::{PerformanceOptimizer, Task, TaskError, TaskStatus};

fn unit(name: &str, deps: &[&str]) -> Task<u8> {
    Task::new(name, deps, |_| async { Ok::<_, TaskError>(0) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_critical_path_follows_the_dependency_that_finished_last() {
    // d -> a -> b, and c needs d, a and b. Dependencies force the finishing order d < a < b < c,
    // so the path back from c takes b (not d, its first-declared dependency), then a, then d.
    let tasks = vec![
        unit("c", &["d", "a", "b"]),
        unit("d", &[]),
        unit("a", &["d"]),
        unit("b", &["a"]),
    ];
    let run = PerformanceOptimizer::default()
        .run_with_dependencies(tasks)
        .await
        .unwrap();
    assert_eq!(run.critical_path(), ["d", "a", "b", "c"]);
    let o = |n: &str| run.outcome(n).unwrap().clone();
    assert!(o("d").end_ms.unwrap() <= o("a").start_ms.unwrap());
    assert!(o("b").end_ms.unwrap() <= o("c").start_ms.unwrap());
    assert!(run.total_ms() >= o("c").end_ms.unwrap());
    let report = run.report();
    assert_eq!(report.critical_path, ["d", "a", "b", "c"]);
    let sum: f64 = ["d", "a", "b", "c"]
        .iter()
        .map(|n| o(n).duration_ms.unwrap())
        .sum();
    assert!((report.critical_path_ms - sum).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_and_json_show_the_run() {
    let tasks = vec![
        unit("git", &[]),
        unit("install", &["git"]),
        Task::new("mcp", &["git"], |_| async {
            Err::<u8, _>(TaskError::new("no \"mcp\""))
        })
        .optional(),
        unit("done", &["install", "mcp"]),
    ];
    let run = PerformanceOptimizer::default()
        .run_with_dependencies(tasks)
        .await
        .unwrap();
    let dot = run.to_dot();
    assert!(dot.starts_with("digraph tasks {\n"), "{dot}");
    assert!(dot.contains("\"git\" -> \"install\""), "{dot}");
    assert!(dot.contains("\"mcp\" -> \"done\""), "{dot}");
    assert!(dot.contains("\"mcp\" [label=\"mcp\\nfailed"), "{dot}");
    assert!(dot.contains("(optional)\", fillcolor=khaki"), "{dot}");
    assert!(dot.contains("penwidth=3"), "critical path is bold: {dot}");
    assert!(dot.trim_end().ends_with('}'));

    let json: serde_json::Value = serde_json::from_str(&run.to_json()).unwrap();
    assert_eq!(json["success"], true);
    assert_eq!(json["cancelled"], false);
    assert!(json["failedTask"].is_null());
    let tasks = json["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4);
    assert_eq!(tasks[0]["name"], "git");
    assert_eq!(tasks[0]["status"], "ok");
    assert!(tasks[0]["startMs"].as_f64().unwrap() >= 0.0);
    assert!(tasks[0]["durationMs"].as_f64().unwrap() >= 0.0);
    assert_eq!(tasks[2]["status"], "failed");
    assert_eq!(tasks[2]["optional"], true);
    assert_eq!(tasks[2]["error"]["message"], "no \"mcp\"");
    assert_eq!(
        tasks[3]["dependencies"],
        serde_json::json!(["install", "mcp"])
    );
    assert_eq!(
        json["criticalPath"].as_array().unwrap().last().unwrap(),
        "done"
    );
    assert_eq!(run.outcome("done").unwrap().status, TaskStatus::Ok);
}
