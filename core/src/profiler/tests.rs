//! Unit tests of the profiler's internals (the public API is tested in core/tests/profiler_*).

use super::*;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn profiler_and_owned_guard_are_send_sync() {
    assert_send_sync::<Profiler>();
    assert_send_sync::<OwnedSpanGuard>();
    assert_send_sync::<SpanGuard<'static>>();
}

#[test]
fn window_evicts_oldest_and_keeps_index_consistent() {
    let p = Profiler::with_config(ProfilerConfig {
        max_results: 3,
        ..Default::default()
    });
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let id = p.start(&format!("n{i}"), None).unwrap();
            p.end(&id).unwrap();
            id
        })
        .collect();
    let w = p.window.lock();
    assert_eq!(w.len(), 3);
    assert_eq!(w.indexed(), 3);
    let kept: Vec<u64> = w.iter().map(|d| d.num).collect();
    let expect: Vec<u64> = ids[2..].iter().map(|s| ids::parse_id(s).unwrap()).collect();
    assert_eq!(kept, expect);
}

#[test]
fn a_long_lived_parent_keeps_a_bounded_list_of_child_ids() {
    let p = Profiler::with_config(ProfilerConfig {
        max_results: 10,
        ..Default::default()
    });
    let root = p.start_op("server", None).unwrap();
    let mut last = Vec::new();
    for _ in 0..10_000 {
        let c = p.start_op("request", Some(root)).unwrap();
        p.end_op_quiet(c, None).unwrap();
        last.push(c);
    }
    let kept = p.shard(root.get()).lock()[&root.get()].children.len();
    assert!((1024..2048).contains(&kept), "{kept}");
    // The most recent children are the ones kept, so the window's children still show.
    let r = p.end_op(root).unwrap();
    let got: Vec<String> = r.children.iter().map(|c| c.id.clone()).collect();
    let want: Vec<String> = last[last.len() - 10..]
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(got, want, "the window's 10 children are all listed");
}

#[test]
fn deep_chain_builds_without_recursion() {
    let p = Profiler::with_config(ProfilerConfig {
        max_results: 10_000,
        ..Default::default()
    });
    let mut ids = vec![p.start("d", None).unwrap()];
    for _ in 0..5_000 {
        let parent = ids.last().unwrap().clone();
        ids.push(p.start("d", Some(&parent)).unwrap());
    }
    // Inner ones end quietly (a guard's drop path), the root builds the whole chain once.
    for id in ids.iter().skip(1).rev() {
        p.finish_quiet(ids::parse_id(id).unwrap(), None).unwrap();
    }
    let root = p.end(&ids[0]).unwrap();
    let mut depth = 0;
    let mut node = &root;
    while let Some(c) = node.children.first() {
        depth += 1;
        node = c;
    }
    assert_eq!(depth, 5_000);
}
