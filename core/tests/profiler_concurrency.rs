//! Many threads starting and ending spans on one profiler lose none of them.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use vibetrees_core::profiler::{Profiler, ProfilerConfig};

const THREADS: usize = 8;
const SPANS_PER_THREAD: usize = 10_000;

#[test]
fn eight_threads_ten_thousand_spans_each_counts_exact() {
    let p = Arc::new(Profiler::with_config(ProfilerConfig {
        max_results: THREADS * SPANS_PER_THREAD,
        ..Default::default()
    }));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (p, barrier) = (Arc::clone(&p), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut ids = Vec::with_capacity(SPANS_PER_THREAD);
                for i in 0..SPANS_PER_THREAD {
                    // Shared names and per-thread names, some failures, some guards.
                    let name = if i % 2 == 0 {
                        "shared"
                    } else {
                        ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"][t]
                    };
                    if i % 5 == 0 {
                        let g = p.span(name, None).unwrap();
                        ids.push(g.id().to_owned());
                    } else {
                        let id = p.start(name, None).unwrap();
                        if i % 7 == 0 {
                            p.end_failed(&id, "x").unwrap();
                        } else {
                            p.end(&id).unwrap();
                        }
                        ids.push(id);
                    }
                }
                ids
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for id in h.join().unwrap() {
            assert!(all.insert(id), "duplicate id");
        }
    }
    assert_eq!(all.len(), THREADS * SPANS_PER_THREAD);
    assert_eq!(p.running_count(), 0);

    let shared = p.get_stats("shared").unwrap();
    assert_eq!(shared.count as usize, THREADS * SPANS_PER_THREAD / 2);
    let per_thread_failures = (0..SPANS_PER_THREAD)
        .filter(|i| i % 5 != 0 && i % 7 == 0 && i % 2 == 1)
        .count();
    for t in 0..THREADS {
        let s = p.get_stats(&format!("t{t}")).unwrap();
        assert_eq!(s.count as usize, SPANS_PER_THREAD / 2);
        assert_eq!(s.failures as usize, per_thread_failures);
    }
    let total: u64 = p.generate_report().operations.iter().map(|o| o.count).sum();
    assert_eq!(total as usize, THREADS * SPANS_PER_THREAD);
    for id in &all {
        assert!(p.get_result(id).is_some(), "{id} missing from the window");
    }
}

#[test]
fn children_started_and_ended_on_many_threads_all_land_in_the_parent() {
    let p = Arc::new(Profiler::new());
    let root = p.start("root", None).unwrap();
    let per_thread = 500;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (p, root) = (Arc::clone(&p), root.clone());
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|_| {
                        let id = p.start("child", Some(&root)).unwrap();
                        p.end(&id).unwrap();
                        id
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut want: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let r = p.end(&root).unwrap();
    let mut got: Vec<String> = r.children.iter().map(|c| c.id.clone()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(r.running_children.is_empty());
}

#[test]
fn parent_ending_while_children_end_concurrently_accounts_for_every_child() {
    // Each child is reported exactly once: among the ended children or the running ones.
    for _round in 0..20 {
        let p = Arc::new(Profiler::new());
        let root = p.start("root", None).unwrap();
        let kids: Vec<String> = (0..200)
            .map(|_| p.start("kid", Some(&root)).unwrap())
            .collect();
        let ender = {
            let (p, kids) = (Arc::clone(&p), kids.clone());
            std::thread::spawn(move || {
                for k in &kids {
                    p.end(k).unwrap();
                }
            })
        };
        let r = p.end(&root).unwrap();
        ender.join().unwrap();
        let mut seen: Vec<String> = r.children.iter().map(|c| c.id.clone()).collect();
        seen.extend(r.running_children.iter().cloned());
        seen.sort();
        let mut want = kids.clone();
        want.sort();
        assert_eq!(seen, want);
    }
}

#[test]
fn concurrent_double_end_succeeds_exactly_once() {
    let p = Arc::new(Profiler::new());
    for _ in 0..200 {
        let id = p.start("race", None).unwrap();
        let results: Vec<bool> = (0..4)
            .map(|_| {
                let (p, id) = (Arc::clone(&p), id.clone());
                std::thread::spawn(move || p.end(&id).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
    }
    assert_eq!(p.get_stats("race").unwrap().count, 200);
}
