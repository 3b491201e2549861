//! The Chrome trace: valid JSON in the Trace Event Format, complete events with the right
//! fields, and tracks on which every event nests inside an ancestor (never inside an unrelated
//! or a concurrently running sibling span).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use vibetrees_core::profiler::Profiler;

fn busy(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    x
}

struct Ev {
    id: String,
    parent: Option<String>,
    name: String,
    tid: u64,
    start_ns: i64,
    end_ns: i64,
}

/// Parses the trace and checks the fields every event must have.
fn parse(trace: &str) -> (Vec<Ev>, Vec<Value>) {
    let doc: Value = serde_json::from_str(trace).expect("trace is JSON");
    let events = doc["traceEvents"]
        .as_array()
        .expect("traceEvents array")
        .clone();
    let pid = std::process::id() as u64;
    let mut spans = Vec::new();
    let mut meta = Vec::new();
    for e in &events {
        assert_eq!(e["pid"].as_u64(), Some(pid), "{e}");
        assert!(e["tid"].is_u64(), "{e}");
        match e["ph"].as_str().unwrap() {
            "X" => {
                let ts = e["ts"].as_f64().expect("ts");
                let dur = e["dur"].as_f64().expect("dur");
                assert!(ts >= 0.0 && dur >= 0.0, "{e}");
                assert!(e["name"].is_string() && e["cat"].is_string(), "{e}");
                // ts and dur are microseconds with nanosecond decimals.
                let start_ns = (ts * 1000.0).round() as i64;
                spans.push(Ev {
                    id: e["args"]["id"].as_str().unwrap().to_owned(),
                    parent: e["args"]["parentId"].as_str().map(str::to_owned),
                    name: e["name"].as_str().unwrap().to_owned(),
                    tid: e["tid"].as_u64().unwrap(),
                    start_ns,
                    end_ns: start_ns + (dur * 1000.0).round() as i64,
                });
            }
            "M" => meta.push(e.clone()),
            other => panic!("unexpected phase {other}"),
        }
    }
    (spans, meta)
}

fn is_ancestor(by_id: &HashMap<&str, &Ev>, ancestor: &str, ev: &Ev) -> bool {
    let mut cur = ev.parent.as_deref();
    while let Some(p) = cur {
        if p == ancestor {
            return true;
        }
        cur = by_id.get(p).and_then(|e| e.parent.as_deref());
    }
    false
}

/// On each track, any two events are disjoint or one contains the other and is its ancestor.
fn assert_tracks_nest(spans: &[Ev]) {
    let by_id: HashMap<&str, &Ev> = spans.iter().map(|e| (e.id.as_str(), e)).collect();
    for a in spans {
        for b in spans {
            if a.id == b.id || a.tid != b.tid {
                continue;
            }
            let disjoint = a.end_ns <= b.start_ns || b.end_ns <= a.start_ns;
            if disjoint {
                continue;
            }
            let a_in_b = b.start_ns <= a.start_ns && a.end_ns <= b.end_ns;
            let b_in_a = a.start_ns <= b.start_ns && b.end_ns <= a.end_ns;
            assert!(
                (a_in_b && is_ancestor(&by_id, &b.id, a))
                    || (b_in_a && is_ancestor(&by_id, &a.id, b)),
                "{} [{}..{}] and {} [{}..{}] overlap on tid {} without nesting under an ancestor",
                a.name,
                a.start_ns,
                a.end_ns,
                b.name,
                b.start_ns,
                b.end_ns,
                a.tid
            );
        }
    }
}

#[test]
fn nested_spans_share_the_parents_track_and_are_contained() {
    let p = Profiler::new();
    let root = p.start("create-worktree-total", None).unwrap();
    let git = p.start("git-worktree-add", Some(&root)).unwrap();
    busy(5_000);
    let inner = p.start("checkout", Some(&git)).unwrap();
    busy(5_000);
    p.end(&inner).unwrap();
    p.end(&git).unwrap();
    let ports = p.start("allocate-ports", Some(&root)).unwrap();
    busy(5_000);
    p.end(&ports).unwrap();
    p.end(&root).unwrap();

    let (spans, meta) = parse(&p.to_chrome_trace());
    assert_eq!(spans.len(), 4);
    let tids: Vec<u64> = spans.iter().map(|s| s.tid).collect();
    assert!(
        tids.iter().all(|t| *t == tids[0]),
        "sequential nesting stays on one track: {tids:?}"
    );
    assert_tracks_nest(&spans);
    let by_id: HashMap<&str, &Ev> = spans.iter().map(|e| (e.id.as_str(), e)).collect();
    for s in &spans {
        if let Some(parent) = s.parent.as_deref() {
            let p = by_id[parent];
            assert!(
                p.start_ns <= s.start_ns && s.end_ns <= p.end_ns,
                "{} outside {}",
                s.name,
                p.name
            );
        }
    }
    // Metadata: the process name, and a name for every track used.
    assert!(
        meta.iter()
            .any(|m| m["name"] == "process_name" && m["args"]["name"].is_string())
    );
    for t in tids {
        assert!(
            meta.iter()
                .any(|m| m["name"] == "thread_name" && m["tid"].as_u64() == Some(t)),
            "no thread_name for tid {t}"
        );
    }
}

#[test]
fn concurrently_overlapping_siblings_get_their_own_tracks() {
    let p = Profiler::new();
    let root = p.start("root", None).unwrap();
    let a = p.start("sibling-a", Some(&root)).unwrap();
    busy(5_000);
    let b = p.start("sibling-b", Some(&root)).unwrap(); // starts while a runs
    busy(5_000);
    let a_child = p.start("a-child", Some(&a)).unwrap();
    busy(5_000);
    p.end(&a_child).unwrap();
    p.end(&a).unwrap(); // a ends while b runs: a and b overlap without nesting
    busy(5_000);
    p.end(&b).unwrap();
    p.end(&root).unwrap();

    let (spans, _) = parse(&p.to_chrome_trace());
    assert_tracks_nest(&spans);
    let tid = |name: &str| spans.iter().find(|s| s.name == name).unwrap().tid;
    assert_ne!(tid("sibling-a"), tid("sibling-b"));
    assert_eq!(tid("a-child"), tid("sibling-a"));
    assert_eq!(
        tid("sibling-a"),
        tid("root"),
        "the first sibling stays under its parent"
    );
}

#[test]
fn spans_from_many_threads_never_mis_nest() {
    let p = Arc::new(Profiler::new());
    let root = p.start("root", None).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (p, root) = (Arc::clone(&p), root.clone());
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    for i in 0..50 {
                        let s = p.span("task", Some(&root)).unwrap();
                        busy(500 + (i * 37 % 11) * 300);
                        let c = s.child("step").unwrap();
                        busy(300);
                        drop(c);
                        // Unparented spans on this thread too.
                        let lone = p.span("lone", None).unwrap();
                        busy(200);
                        drop(lone);
                        drop(s);
                    }
                })
                .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    p.end(&root).unwrap();
    let trace = p.to_chrome_trace();
    let (spans, meta) = parse(&trace);
    assert_eq!(spans.len(), 1 + 4 * 50 * 3);
    assert_tracks_nest(&spans);
    // Tracks are named after the threads that opened them.
    let names: Vec<&str> = meta
        .iter()
        .filter(|m| m["name"] == "thread_name")
        .map(|m| m["args"]["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("worker-")), "{names:?}");
}

#[test]
fn failed_spans_carry_their_error_in_args() {
    let p = Profiler::new();
    let id = p.start("docker-compose-up", None).unwrap();
    p.end_failed(&id, "compose missing").unwrap();
    let doc: Value = serde_json::from_str(&p.to_chrome_trace()).unwrap();
    let ev = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ph"] == "X")
        .unwrap()
        .clone();
    assert_eq!(ev["name"], "docker-compose-up");
    assert_eq!(ev["args"]["failed"], true);
    assert_eq!(ev["args"]["error"], "compose missing");
    assert_eq!(ev["args"]["id"], id);
}

#[test]
fn empty_profiler_gives_a_valid_trace() {
    let p = Profiler::new();
    let doc: Value = serde_json::from_str(&p.to_chrome_trace()).unwrap();
    assert!(
        doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["ph"] == "M")
    );
}
