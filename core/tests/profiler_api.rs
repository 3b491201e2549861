//! The profiler's rules: nesting and children in results, errors naming the id, span guards,
//! running children, bounded window, clear, the clock.

use vibetrees_core::Error;
use vibetrees_core::profiler::{Profiler, ProfilerConfig};

/// Burns a little real time so durations are non-zero and ordered.
fn busy(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    x
}

#[test]
fn start_end_returns_times_in_ms_since_creation() {
    let p = Profiler::new();
    let before = p.now_ms();
    let id = p.start("git-worktree-add", None).unwrap();
    assert!(id.starts_with("op-"), "{id}");
    assert!(p.is_running(&id));
    busy(10_000);
    let r = p.end(&id).unwrap();
    let after = p.now_ms();
    assert!(!p.is_running(&id));
    assert_eq!(r.id, id);
    assert_eq!(r.name, "git-worktree-add");
    assert!(r.start_time >= before && r.end_time <= after, "{r:?}");
    assert!(r.end_time >= r.start_time);
    assert!((r.duration - (r.end_time - r.start_time)).abs() < 1e-9);
    assert!(r.children.is_empty() && !r.failed && r.error.is_none());
    assert!(r.parent_id.is_none() && r.running_children.is_empty());
}

#[test]
fn clock_is_monotonic_and_starts_near_zero() {
    let p = Profiler::new();
    let first = p.now_ms();
    assert!((0.0..1_000.0).contains(&first), "{first}");
    let mut last = first;
    for _ in 0..10_000 {
        let t = p.now_ms();
        assert!(t >= last);
        last = t;
    }
}

#[test]
fn ids_are_distinct() {
    let p = Profiler::new();
    let a = p.start("x", None).unwrap();
    let b = p.start("x", None).unwrap();
    assert_ne!(a, b);
}

#[test]
fn children_nest_in_start_order_with_their_own_children() {
    let p = Profiler::new();
    let root = p.start("create-worktree-total", None).unwrap();
    let git = p.start("git-worktree-add", Some(&root)).unwrap();
    let ports = p.start("allocate-ports", Some(&root)).unwrap();
    let inner = p.start("read-registry", Some(&ports)).unwrap();
    p.end(&inner).unwrap();
    // End in a different order than started: the result lists children in start order.
    let ports_r = p.end(&ports).unwrap();
    let git_r = p.end(&git).unwrap();
    let r = p.end(&root).unwrap();

    assert_eq!(ports_r.children.len(), 1);
    assert_eq!(ports_r.children[0].name, "read-registry");
    assert_eq!(ports_r.parent_id.as_deref(), Some(root.as_str()));
    let names: Vec<&str> = r.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["git-worktree-add", "allocate-ports"]);
    assert_eq!(r.children[0], git_r);
    assert_eq!(r.children[1].children[0].id, inner);
    for c in &r.children {
        assert!(c.start_time >= r.start_time && c.end_time <= r.end_time);
    }
    // get_result rebuilds the same tree.
    assert_eq!(p.get_result(&root).unwrap(), r);
}

#[test]
fn unknown_and_double_end_name_the_id() {
    let p = Profiler::new();
    for bad in ["op-999999", "nonsense", "", "op-01"] {
        let e = p.end(bad).unwrap_err();
        assert!(matches!(e, Error::NotFound(_)), "{e:?}");
        assert_eq!(e.code(), "NOT_FOUND");
        assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
    }
    let id = p.start("x", None).unwrap();
    p.end(&id).unwrap();
    let e = p.end(&id).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)));
    assert!(e.to_string().contains(&id), "{e}");
    assert!(e.to_string().contains("already ended"), "{e}");
    let e = p.end_failed(&id, "boom").unwrap_err();
    assert!(e.to_string().contains(&id), "{e}");
    // The failed double end did not count twice.
    assert_eq!(p.get_stats("x").unwrap().count, 1);
}

#[test]
fn unknown_or_ended_parent_is_an_error_naming_it_and_starts_nothing() {
    let p = Profiler::new();
    let e = p.start("child", Some("op-424242")).unwrap_err();
    assert!(matches!(e, Error::NotFound(_)));
    assert!(e.to_string().contains("'op-424242'"), "{e}");
    let e = p.start("child", Some("not-an-id")).unwrap_err();
    assert!(e.to_string().contains("'not-an-id'"), "{e}");

    let parent = p.start("parent", None).unwrap();
    p.end(&parent).unwrap();
    let e = p.start("child", Some(&parent)).unwrap_err();
    assert!(e.to_string().contains(&parent), "{e}");
    assert!(e.to_string().contains("already ended"), "{e}");
    assert!(p.span("child", Some(&parent)).is_err());
    assert_eq!(p.running_count(), 0);
    assert!(p.get_stats("child").is_none());
}

#[test]
fn end_failed_records_the_message_and_counts_failures() {
    let p = Profiler::new();
    let a = p.start("npm-bootstrap", None).unwrap();
    let r = p.end_failed(&a, "npm exited with 1").unwrap();
    assert!(r.failed);
    assert_eq!(r.error.as_deref(), Some("npm exited with 1"));
    let b = p.start("npm-bootstrap", None).unwrap();
    p.end(&b).unwrap();
    let s = p.get_stats("npm-bootstrap").unwrap();
    assert_eq!((s.count, s.failures), (2, 1));
    assert_eq!(
        p.get_result(&a).unwrap().error.as_deref(),
        Some("npm exited with 1")
    );
}

#[test]
fn parent_ending_before_children_lists_them_as_running() {
    let p = Profiler::new();
    let root = p.start("root", None).unwrap();
    let done = p.start("done-child", Some(&root)).unwrap();
    let slow = p.start("slow-child", Some(&root)).unwrap();
    let slower = p.start("slower-child", Some(&root)).unwrap();
    p.end(&done).unwrap();
    let r = p.end(&root).unwrap();
    assert_eq!(r.children.len(), 1);
    assert_eq!(r.children[0].id, done);
    assert_eq!(r.running_children, vec![slow.clone(), slower.clone()]);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["runningChildren"], serde_json::json!([slow, slower]));
    // The children can still end, and are counted.
    p.end(&slow).unwrap();
    p.end(&slower).unwrap();
    assert_eq!(p.get_stats("slow-child").unwrap().count, 1);
    // The parent's result is a snapshot of its end.
    assert_eq!(p.get_result(&root).unwrap().running_children.len(), 2);
}

#[test]
fn span_guard_ends_on_drop_fail_and_end() {
    let p = Profiler::new();
    let id;
    {
        let g = p.span("mcp-discovery", None).unwrap();
        id = g.id().to_owned();
        assert!(p.is_running(&id));
    }
    assert!(!p.is_running(&id));
    assert!(!p.get_result(&id).unwrap().failed);

    let g = p.span("docker-compose-up", None).unwrap();
    let child_id = {
        let c = g.child("pull").unwrap();
        c.id().to_owned()
    };
    let r = g.fail("compose not found").unwrap();
    assert!(r.failed && r.error.as_deref() == Some("compose not found"));
    assert_eq!(r.children[0].id, child_id);
    assert_eq!(p.get_stats("docker-compose-up").unwrap().failures, 1);

    let g = p.span("write-env", None).unwrap();
    let gid = g.id().to_owned();
    let r = g.end().unwrap();
    assert_eq!(r.id, gid);
    assert_eq!(p.get_stats("write-env").unwrap().count, 1);
}

#[test]
fn guard_whose_span_was_ended_by_id_does_nothing_on_drop() {
    let p = Profiler::new();
    let g = p.span("x", None).unwrap();
    p.end(g.id()).unwrap();
    drop(g);
    assert_eq!(p.get_stats("x").unwrap().count, 1);
    let g = p.span("y", None).unwrap();
    p.end(g.id()).unwrap();
    assert!(g.end().is_err());
}

#[test]
fn owned_guard_moves_into_a_thread() {
    let p = std::sync::Arc::new(Profiler::new());
    let root = p.start("root", None).unwrap();
    let g = p.span_owned("worker", Some(&root)).unwrap();
    let gid = g.id().to_owned();
    std::thread::spawn(move || drop(g)).join().unwrap();
    let r = p.end(&root).unwrap();
    assert_eq!(r.children[0].id, gid);
}

#[test]
fn window_keeps_the_last_max_results_and_stats_keep_everything() {
    let p = Profiler::with_config(ProfilerConfig {
        max_results: 100,
        ..Default::default()
    });
    let ids: Vec<String> = (0..250)
        .map(|_| {
            let id = p.start("op", None).unwrap();
            p.end(&id).unwrap();
            id
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(p.get_result(id).is_some(), i >= 150, "{id}");
    }
    assert_eq!(p.get_stats("op").unwrap().count, 250);
    let trace: serde_json::Value = serde_json::from_str(&p.to_chrome_trace()).unwrap();
    let spans = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .count();
    assert_eq!(spans, 100);
    // Evicted ids still say "already ended", not "unknown".
    assert!(
        p.end(&ids[0])
            .unwrap_err()
            .to_string()
            .contains("already ended")
    );
}

#[test]
fn zero_window_keeps_no_results_but_returns_them() {
    let p = Profiler::with_config(ProfilerConfig {
        max_results: 0,
        ..Default::default()
    });
    let id = p.start("x", None).unwrap();
    assert_eq!(p.end(&id).unwrap().id, id);
    assert!(p.get_result(&id).is_none());
    assert_eq!(p.get_stats("x").unwrap().count, 1);
}

#[test]
fn children_evicted_before_the_parent_ends_are_left_out() {
    let p = Profiler::with_config(ProfilerConfig {
        max_results: 10,
        ..Default::default()
    });
    let root = p.start("root", None).unwrap();
    let kids: Vec<String> = (0..25)
        .map(|_| {
            let c = p.start("kid", Some(&root)).unwrap();
            p.end(&c).unwrap();
            c
        })
        .collect();
    let r = p.end(&root).unwrap();
    let got: Vec<&str> = r.children.iter().map(|c| c.id.as_str()).collect();
    let want: Vec<&str> = kids[15..].iter().map(String::as_str).collect();
    assert_eq!(got, want);
    assert!(r.running_children.is_empty());
}

#[test]
fn clear_forgets_results_and_stats_but_not_running_spans() {
    let p = Profiler::new();
    let ended = p.start("a", None).unwrap();
    p.end(&ended).unwrap();
    let running = p.start("b", None).unwrap();
    p.clear();
    assert!(p.get_result(&ended).is_none());
    assert!(p.get_stats("a").is_none());
    assert!(p.generate_report().operations.is_empty());
    assert!(p.is_running(&running));
    p.end(&running).unwrap();
    assert_eq!(p.get_stats("b").unwrap().count, 1);
    assert_eq!(p.generate_report().operations.len(), 1);
}

#[test]
fn names_beyond_max_names_are_counted_under_other() {
    let p = Profiler::with_config(ProfilerConfig {
        max_names: 3,
        ..Default::default()
    });
    for i in 0..5 {
        let id = p.start(&format!("name-{i}"), None).unwrap();
        let r = p.end(&id).unwrap();
        assert_eq!(r.name, format!("name-{i}"), "results keep their own name");
    }
    for i in 0..3 {
        assert_eq!(p.get_stats(&format!("name-{i}")).unwrap().count, 1);
    }
    assert!(p.get_stats("name-3").is_none());
    let other = p.get_stats(vibetrees_core::profiler::OTHER_NAMES).unwrap();
    assert_eq!(other.count, 2);
    assert_eq!(p.generate_report().operations.len(), 4);
}

#[test]
fn typed_ids_work_like_strings_and_interoperate() {
    use vibetrees_core::profiler::OperationId;
    let p = Profiler::new();
    let root = p.start_op("root", None).unwrap();
    let child = p.start_op("child", Some(root)).unwrap();
    assert!(p.is_running(&child.to_string()));
    let quiet = p.start_op("quiet", Some(root)).unwrap();
    p.end_op_quiet(quiet, Some("gave up")).unwrap();
    assert!(p.get_result(&quiet.to_string()).unwrap().failed);
    let failed = p.start_op("child", Some(root)).unwrap();
    assert!(p.end_op_failed(failed, "no").unwrap().failed);
    let r = p.end_op(child).unwrap();
    assert_eq!(r.id, child.to_string());
    assert_eq!(r.parent_id, Some(root.to_string()));
    // A typed id and its string are the same operation.
    let root_result = p.end(&root.to_string()).unwrap();
    assert_eq!(root_result.children.len(), 3);
    assert_eq!(p.get_stats("child").unwrap().failures, 1);

    let e = p.end_op(child).unwrap_err();
    assert!(e.to_string().contains(&child.to_string()), "{e}");
    let e = p
        .end_op_quiet(OperationId::new(9_999_999), None)
        .unwrap_err();
    assert!(e.to_string().contains("'op-9999999'"), "{e}");
    let e = p.start_op("x", Some(root)).unwrap_err();
    assert!(e.to_string().contains(&root.to_string()) && e.to_string().contains("already ended"));
    let e = p
        .start_op("x", Some(OperationId::new(777_777)))
        .unwrap_err();
    assert!(e.to_string().contains("'op-777777'"), "{e}");
}
