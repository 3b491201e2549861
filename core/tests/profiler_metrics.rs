//! The server's metrics shape and the JSON keys of every result type.

use std::collections::BTreeSet;

use serde_json::Value;
use vibetrees_core::profiler::{Metrics, OperationResult, OperationStats, Profiler, Report};

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(k: &[&'a str]) -> BTreeSet<&'a str> {
    k.iter().copied().collect()
}

#[test]
fn metrics_has_exactly_the_servers_keys() {
    let p = Profiler::new();
    let root = p.start("create-worktree-total", None).unwrap();
    let git = p.start("git-worktree-add", Some(&root)).unwrap();
    p.end(&git).unwrap();
    let r1 = p.end(&root).unwrap();
    let root2 = p.start("create-worktree-total", None).unwrap();
    let r2 = p.end(&root2).unwrap();

    let m = p.metrics();
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(
        keys(&v),
        set(&["operations", "totalTime", "avgWorktreeCreation"])
    );
    let ops = v["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    for op in ops {
        assert_eq!(
            keys(op),
            set(&["name", "count", "avg", "min", "max", "total"])
        );
        assert!(op["avg"].is_f64() && op["count"].is_u64());
    }
    assert_eq!(
        ops[0]["name"], "create-worktree-total",
        "largest total first"
    );
    assert_eq!(ops[0]["count"], 2);
    let avg = (r1.duration + r2.duration) / 2.0;
    assert!((v["avgWorktreeCreation"].as_f64().unwrap() - avg).abs() < 1e-9);
    // totalTime: the root operations' durations, nested ones not counted twice.
    assert!((m.total_time - (r1.duration + r2.duration)).abs() < 1e-9);
    // It deserializes back (the bindings round-trip it).
    let back: Metrics = serde_json::from_value(v).unwrap();
    assert_eq!(back, m);
}

#[test]
fn avg_worktree_creation_is_null_without_that_operation() {
    let p = Profiler::new();
    let id = p.start("allocate-ports", None).unwrap();
    p.end(&id).unwrap();
    let v = serde_json::to_value(p.metrics()).unwrap();
    assert!(v["avgWorktreeCreation"].is_null());
    assert!(v.as_object().unwrap().contains_key("avgWorktreeCreation"));
    let empty = serde_json::to_value(Profiler::new().metrics()).unwrap();
    assert_eq!(empty["operations"], serde_json::json!([]));
    assert_eq!(empty["totalTime"], 0.0);
}

#[test]
fn result_stats_and_report_keys_are_camel_case() {
    let p = Profiler::new();
    let root = p.start("root", None).unwrap();
    let child = p.start("child", Some(&root)).unwrap();
    let child_r = p.end_failed(&child, "boom").unwrap();
    let still = p.start("still", Some(&root)).unwrap();
    let r = p.end(&root).unwrap();
    p.end(&still).unwrap();

    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        keys(&v),
        set(&[
            "id",
            "name",
            "duration",
            "startTime",
            "endTime",
            "children",
            "failed",
            "runningChildren"
        ])
    );
    let c = serde_json::to_value(&child_r).unwrap();
    assert_eq!(
        keys(&c),
        set(&[
            "id",
            "name",
            "duration",
            "startTime",
            "endTime",
            "children",
            "failed",
            "error",
            "parentId"
        ])
    );
    let back: OperationResult = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);

    let s = serde_json::to_value(p.get_stats("child").unwrap()).unwrap();
    assert_eq!(
        keys(&s),
        set(&[
            "name", "count", "failures", "avg", "min", "max", "total", "p50", "p95", "p99"
        ])
    );
    let _: OperationStats = serde_json::from_value(s).unwrap();
    let rep = serde_json::to_value(p.generate_report()).unwrap();
    assert_eq!(keys(&rep), set(&["operations", "totalDuration"]));
    let _: Report = serde_json::from_value(rep).unwrap();
}
