//! `vibetrees graph`, run as a real process.

use std::process::Command;

fn graph(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .arg("graph")
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run vibetrees");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn graph_prints_outcomes_critical_path_and_profile() {
    let (ok, out, err) = graph(&["--scale", "0.1"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("Task graph: 6 tasks in "), "{out}");
    assert!(out.contains("(success)"), "{out}");
    let path = out
        .lines()
        .find(|l| l.starts_with("Critical path: "))
        .unwrap();
    // Which chain is critical depends on timing; it always has a dependency edge in it.
    assert!(path.contains(" -> "), "{path}");
    for task in [
        "git-worktree-add",
        "allocate-ports",
        "npm-bootstrap",
        "write-env",
        "mcp-discovery",
        "docker-compose-up",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(task) && l.contains(" ok ")),
            "{task}: {out}"
        );
    }
    assert!(out.contains("create-worktree-total      1"), "{out}");
}

#[test]
fn graph_reports_a_failure_and_exits_non_zero() {
    let (ok, out, err) = graph(&["--scale", "0", "--fail", "git-worktree-add"]);
    assert!(!ok);
    assert!(out.contains("(failed)"), "{out}");
    assert!(
        out.contains("skipped: depends on failed task 'git-worktree-add'"),
        "{out}"
    );
    assert_eq!(
        err.trim(),
        "vibetrees: error [TASK_FAILED]: task 'git-worktree-add' failed: git-worktree-add failed (--fail)"
    );
    let (ok, _, err) = graph(&["--fail", "nope"]);
    assert!(!ok);
    assert!(err.contains("--fail: no task named 'nope'"), "{err}");
}

#[test]
fn graph_prints_trace_dot_json_and_plan() {
    let (ok, out, err) = graph(&["--scale", "0", "--trace"]);
    assert!(ok, "{err}");
    let trace: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(names.contains(&"npm-bootstrap"), "{names:?}");
    assert!(names.contains(&"create-worktree-total"), "{names:?}");

    let (ok, out, _) = graph(&["--scale", "0", "--dot"]);
    assert!(ok);
    assert!(out.starts_with("digraph tasks {"));
    assert!(
        out.contains("\"write-env\" -> \"docker-compose-up\""),
        "{out}"
    );

    let (ok, out, _) = graph(&["--scale", "0", "--json"]);
    assert!(ok);
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["tasks"].as_array().unwrap().len(), 6);

    let (ok, out, _) = graph(&["--dry-run"]);
    assert!(ok);
    assert!(out.contains("level 2: docker-compose-up"), "{out}");
}
