//! Profiler benchmarks (criterion): a start+end pair (root, child, typed ids without a result, a
//! span guard, 4 threads contending), report/metrics/trace generation with 1,000 names, the
//! single-thread pairs again in thread-CPU time (group `profiler_cpu_time`, robust to a loaded
//! machine), and a memory check: RSS after 1M, 5M and 10M start/end pairs, which must stay flat
//! (printed, not timed).
//!
//! `cargo bench -p vibetrees-core --bench profiler` runs everything;
//! `cargo bench -p vibetrees-core --bench profiler -- start_end` only the timed pairs;
//! `VT_PROFILER_MEMORY=0` skips the memory check; `VT_PROFILER_PAIRS=N <bench binary>` prints
//! thread-CPU ns per pair and exits (also a small target for callgrind).

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput};
use vibetrees_core::Profiler;

/// Criterion measurement of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID): time the thread
/// was not scheduled does not count, so figures stay meaningful on a machine shared with other
/// work. Read once per sample (a batch of iterations), so the clock's own cost is amortized.
struct ThreadCpuTime;

struct NanosFormatter;

impl ValueFormatter for NanosFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical_ns < 1e3 {
            (1.0, "ns")
        } else if typical_ns < 1e6 {
            (1e-3, "µs")
        } else if typical_ns < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        for v in values {
            *v *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_iteration = match *throughput {
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => n,
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) | Throughput::Bits(n) => n,
        } as f64;
        for v in values {
            *v = per_iteration * 1e9 / *v;
        }
        "elem/s (CPU)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns() - started
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NanosFormatter
    }
}

/// The single-thread pairs again, measured in thread-CPU time.
fn start_end_pair_cpu(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("profiler_cpu_time");
    g.throughput(Throughput::Elements(1));
    g.bench_function("start_end_pair", |b| {
        let p = Profiler::new();
        b.iter(|| {
            let id = p.start(black_box("git-worktree-add"), None).unwrap();
            black_box(p.end(&id).unwrap());
        })
    });
    g.bench_function("start_op_end_op_quiet", |b| {
        let p = Profiler::new();
        b.iter(|| {
            let id = p.start_op(black_box("git-worktree-add"), None).unwrap();
            p.end_op_quiet(black_box(id), None).unwrap();
        })
    });
    g.bench_function("span_guard", |b| {
        let p = Profiler::new();
        b.iter(|| {
            let s = p.span(black_box("mcp-discovery"), None).unwrap();
            black_box(s.id());
        })
    });
    g.finish();
}

fn start_end_pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("profiler");
    g.throughput(Throughput::Elements(1));
    g.bench_function("start_end_pair", |b| {
        let p = Profiler::new();
        b.iter(|| {
            let id = p.start(black_box("git-worktree-add"), None).unwrap();
            black_box(p.end(&id).unwrap());
        })
    });
    g.bench_function("start_end_pair_child", |b| {
        let p = Profiler::new();
        let root = p.start("create-worktree-total", None).unwrap();
        // A fresh parent every 1,000 children, so no parent collects millions of child ids.
        let mut parent = p.start("batch", Some(&root)).unwrap();
        let mut n = 0u32;
        b.iter(|| {
            let id = p.start(black_box("allocate-ports"), Some(&parent)).unwrap();
            black_box(p.end(&id).unwrap());
            n += 1;
            if n == 1_000 {
                n = 0;
                p.end(&parent).unwrap();
                parent = p.start("batch", Some(&root)).unwrap();
            }
        })
    });
    g.bench_function("start_op_end_op_quiet", |b| {
        // Typed ids, no result built: what a binding that keeps numeric ids pays.
        let p = Profiler::new();
        b.iter(|| {
            let id = p.start_op(black_box("git-worktree-add"), None).unwrap();
            p.end_op_quiet(black_box(id), None).unwrap();
        })
    });
    g.bench_function("span_guard", |b| {
        let p = Profiler::new();
        b.iter(|| {
            let s = p.span(black_box("mcp-discovery"), None).unwrap();
            black_box(s.id());
        })
    });
    g.bench_function("start_end_pair_4_threads_contended", |b| {
        // Per-pair cost while 3 other threads hammer the same profiler (same name).
        let p = Arc::new(Profiler::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (p, stop) = (Arc::clone(&p), Arc::clone(&stop));
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let id = p.start("npm-bootstrap", None).unwrap();
                        p.end(&id).unwrap();
                    }
                })
            })
            .collect();
        b.iter(|| {
            let id = p.start(black_box("npm-bootstrap"), None).unwrap();
            black_box(p.end(&id).unwrap());
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
    });
    g.finish();
}

fn report(c: &mut Criterion) {
    let mut g = c.benchmark_group("profiler_report");
    for names in [1_000usize] {
        let p = Profiler::new();
        let names_v: Vec<String> = (0..names).map(|i| format!("operation-{i}")).collect();
        // 20 samples per name with spread-out durations is not possible without sleeping; the
        // sketch size depends on the spread of durations, so feed each name varied real spans.
        for round in 0..20 {
            for (i, n) in names_v.iter().enumerate() {
                let id = p.start(n, None).unwrap();
                // Vary durations a little (busy work proportional to i and round).
                let mut x = 0u64;
                for k in 0..((i + round) % 50) as u64 {
                    x = black_box(x.wrapping_add(k));
                }
                black_box(x);
                p.end(&id).unwrap();
            }
        }
        g.bench_with_input(
            BenchmarkId::new("generate_report", names),
            &names,
            |b, _| b.iter(|| black_box(p.generate_report())),
        );
        g.bench_with_input(BenchmarkId::new("metrics", names), &names, |b, _| {
            b.iter(|| black_box(p.metrics()))
        });
        g.bench_with_input(
            BenchmarkId::new("to_chrome_trace_window_10000", names),
            &names,
            |b, _| b.iter(|| black_box(p.to_chrome_trace())),
        );
    }
    g.finish();
}

/// Resident set size in KiB, from /proc/self/statm (pages * page size).
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    Some(resident * page / 1024)
}

/// 10,000,000 start/end pairs (a mix of 8 names, every 10th a child of one root that runs the
/// whole time, every 7th failed),
/// printing RSS at 0, 1M, 5M and 10M: it must stay flat once the window is full.
fn memory_flat() {
    let p = Profiler::new();
    let names = [
        "create-worktree-total",
        "git-worktree-add",
        "allocate-ports",
        "mcp-discovery",
        "npm-bootstrap",
        "docker-compose-up",
        "cache-restore",
        "write-env",
    ];
    let start = std::time::Instant::now();
    // One parent for the whole run: it gets 1,000,000 children, and must not grow with them.
    let root = p.start("server-lifetime", None).unwrap();
    println!(
        "profiler memory: RSS before: {} KiB",
        rss_kib().unwrap_or(0)
    );
    let checkpoints = [1_000_000u64, 5_000_000, 10_000_000];
    let mut next = 0;
    for i in 1..=10_000_000u64 {
        let name = names[(i % names.len() as u64) as usize];
        let id = if i % 10 == 0 {
            p.start(name, Some(&root)).unwrap()
        } else {
            p.start(name, None).unwrap()
        };
        if i % 7 == 0 {
            p.end_failed(&id, "failed on purpose").unwrap();
        } else {
            p.end(&id).unwrap();
        }
        if next < checkpoints.len() && i == checkpoints[next] {
            println!(
                "profiler memory: RSS after {:>2}M pairs: {} KiB  ({:.1} s, running {}, window {})",
                i / 1_000_000,
                rss_kib().unwrap_or(0),
                start.elapsed().as_secs_f64(),
                p.running_count(),
                p.config().max_results,
            );
            next += 1;
        }
    }
    let total: u64 = p.generate_report().operations.iter().map(|o| o.count).sum();
    println!("profiler memory: operations counted in stats: {total}");
}

/// This thread's CPU time in ns (excludes time the thread was not scheduled, which dominates
/// wall-clock numbers on a loaded machine).
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `VT_PROFILER_PAIRS=N`: N start+end pairs on one thread, reported as thread-CPU ns per pair
/// (robust to other processes on the machine; also a small target for callgrind).
fn cpu_time_pairs(n: u64) {
    let p = Profiler::new();
    let root = p.start("root", None).unwrap();
    for (label, child) in [("root pair", false), ("child pair", true)] {
        let mut best = u64::MAX;
        for _round in 0..5 {
            let t0 = thread_cpu_ns();
            for _ in 0..n {
                let id = p
                    .start(
                        black_box("git-worktree-add"),
                        child.then_some(root.as_str()),
                    )
                    .unwrap();
                black_box(p.end(&id).unwrap());
            }
            best = best.min((thread_cpu_ns() - t0) / n);
        }
        println!("profiler cpu time: {label}: {best} ns per start+end (best of 5 x {n})");
    }
    let mut best = u64::MAX;
    for _round in 0..5 {
        let t0 = thread_cpu_ns();
        for _ in 0..n {
            let id = p.start_op(black_box("git-worktree-add"), None).unwrap();
            p.end_op_quiet(black_box(id), None).unwrap();
        }
        best = best.min((thread_cpu_ns() - t0) / n);
    }
    println!("profiler cpu time: typed-id pair, no result: {best} ns per start_op+end_op_quiet");
    let t0 = thread_cpu_ns();
    for _ in 0..n {
        let s = p.span(black_box("git-worktree-add"), None).unwrap();
        black_box(s.id());
    }
    println!(
        "profiler cpu time: span guard: {} ns per span",
        (thread_cpu_ns() - t0) / n
    );
}

fn main() {
    if let Some(n) = std::env::var("VT_PROFILER_PAIRS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        cpu_time_pairs(n);
        return;
    }
    if std::env::var("VT_PROFILER_MEMORY").as_deref() != Ok("0") {
        let args: Vec<String> = std::env::args().collect();
        // `cargo test --benches` runs benches once with `--bench`-less args; only measure memory
        // under `cargo bench` (criterion passes `--bench`) and when not filtered to other benches.
        let filtered_out = args
            .iter()
            .skip(1)
            .any(|a| !a.starts_with('-') && !"memory".contains(a.as_str()));
        if args.iter().any(|a| a == "--bench") && !filtered_out {
            memory_flat();
        }
    }
    let mut c = Criterion::default().configure_from_args();
    start_end_pair(&mut c);
    report(&mut c);
    c.final_summary();
    let mut cpu = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .configure_from_args();
    start_end_pair_cpu(&mut cpu);
    cpu.final_summary();
}
