//! Statistics: exact count/min/max/avg/total against the durations the results report, and
//! p50/p95/p99 within 1% relative error of the exact percentiles of the same sample.

use vibetrees_core::profiler::Profiler;

fn busy(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    x
}

/// The exact percentile under the sketch's rank rule: the value at rank floor(q * (n - 1)).
fn exact_percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() as f64 - 1.0)).floor() as usize]
}

#[test]
fn stats_match_the_reported_durations() {
    let p = Profiler::new();
    let mut durations = Vec::new();
    // A deterministic spread of real durations: mostly short, a tail of long ones.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..2_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let work = if seed % 20 == 0 {
            20_000 + seed % 80_000
        } else {
            seed % 5_000
        };
        let id = p.start("allocate-ports", None).unwrap();
        busy(work);
        durations.push(p.end(&id).unwrap().duration);
    }
    let s = p.get_stats("allocate-ports").unwrap();
    durations.sort_by(f64::total_cmp);
    let total: f64 = durations.iter().sum();
    assert_eq!(s.name, "allocate-ports");
    assert_eq!(s.count, 2_000);
    assert_eq!(s.failures, 0);
    assert_eq!(s.min, durations[0]);
    assert_eq!(s.max, *durations.last().unwrap());
    assert!(
        (s.total - total).abs() <= 1e-6 * total,
        "{} vs {total}",
        s.total
    );
    assert!((s.avg - total / 2_000.0).abs() <= 1e-6 * s.avg);
    for (q, got) in [(0.50, s.p50), (0.95, s.p95), (0.99, s.p99)] {
        let want = exact_percentile(&durations, q);
        let rel = (got - want).abs() / want;
        assert!(
            rel <= 0.01,
            "p{}: sketch {got} vs exact {want} ({rel})",
            q * 100.0
        );
    }
    assert!(s.min <= s.p50 && s.p50 <= s.p95 && s.p95 <= s.p99 && s.p99 <= s.max);
}

#[test]
fn unknown_name_has_no_stats() {
    let p = Profiler::new();
    assert!(p.get_stats("never-started").is_none());
    let _running = p.start("still-running", None).unwrap();
    assert!(p.get_stats("still-running").is_none());
}

#[test]
fn report_sorts_by_total_and_sums_root_durations_only() {
    let p = Profiler::new();
    let root = p.start("create-worktree-total", None).unwrap();
    for _ in 0..3 {
        let c = p.start("npm-bootstrap", Some(&root)).unwrap();
        busy(20_000);
        p.end(&c).unwrap();
    }
    let c = p.start("allocate-ports", Some(&root)).unwrap();
    p.end(&c).unwrap();
    let root_r = p.end(&root).unwrap();
    let other = p.start("standalone", None).unwrap();
    let other_r = p.end(&other).unwrap();

    let report = p.generate_report();
    let totals: Vec<f64> = report.operations.iter().map(|o| o.total).collect();
    assert!(totals.windows(2).all(|w| w[0] >= w[1]), "{totals:?}");
    assert_eq!(report.operations[0].name, "create-worktree-total");
    assert_eq!(report.operations.len(), 4);
    let expect = root_r.duration + other_r.duration;
    assert!(
        (report.total_duration - expect).abs() < 1e-6,
        "{} vs {expect}",
        report.total_duration
    );
    let npm = report
        .operations
        .iter()
        .find(|o| o.name == "npm-bootstrap")
        .unwrap();
    assert_eq!(npm.count, 3);
}

#[test]
fn report_with_many_names_lists_each_once() {
    let p = Profiler::new();
    for i in 0..1_000 {
        let id = p.start(&format!("op-name-{i}"), None).unwrap();
        p.end(&id).unwrap();
    }
    let report = p.generate_report();
    assert_eq!(report.operations.len(), 1_000);
    let mut names: Vec<&str> = report.operations.iter().map(|o| o.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 1_000);
}
