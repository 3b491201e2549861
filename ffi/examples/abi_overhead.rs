//! What crossing the C ABI costs for the profiler: a start+end pair through `vt_profiler_*`
//! (C strings in and out, the panic boundary, `vt_string_free`) against the same pair on
//! `vibetrees_core::Profiler` directly. Alternates A B A B, 7 rounds, prints medians.
//! Run: `cargo run --release -p vibetrees-ffi --example abi_overhead`

use std::ffi::c_char;
use std::time::Instant;
use vibetrees::profiler::{
    vt_profiler, vt_profiler_end, vt_profiler_free, vt_profiler_new, vt_profiler_start,
};
use vibetrees::strings::vt_string_free;
use vibetrees_core::Profiler;
use vibetrees_core::profiler::ProfilerConfig;

const PAIRS: u32 = 200_000;

fn direct(p: &Profiler) -> f64 {
    let t = Instant::now();
    for _ in 0..PAIRS {
        let id = p.start("bench-op", None).unwrap();
        std::hint::black_box(p.end(&id).unwrap());
    }
    t.elapsed().as_nanos() as f64 / PAIRS as f64
}

fn through_c(p: *const vt_profiler) -> f64 {
    let t = Instant::now();
    for _ in 0..PAIRS {
        let mut id: *mut c_char = std::ptr::null_mut();
        unsafe {
            assert_eq!(
                vt_profiler_start(p, c"bench-op".as_ptr(), std::ptr::null(), &mut id) as u32,
                0
            );
            assert_eq!(vt_profiler_end(p, id, std::ptr::null_mut()) as u32, 0);
            vt_string_free(id);
        }
    }
    t.elapsed().as_nanos() as f64 / PAIRS as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let direct_profiler = Profiler::with_config(ProfilerConfig {
        max_results: 1000,
        ..Default::default()
    });
    let mut c_profiler: *mut vt_profiler = std::ptr::null_mut();
    unsafe { vt_profiler_new(c"{\"maxResults\": 1000}".as_ptr(), &mut c_profiler) };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    direct(&direct_profiler);
    through_c(c_profiler);
    for _ in 0..7 {
        a.push(direct(&direct_profiler));
        b.push(through_c(c_profiler));
    }
    let (a, b) = (median(a), median(b));
    println!(
        "profiler start+end pair, direct Rust: {a:.0} ns; through the C ABI: {b:.0} ns; overhead {:.0} ns ({:.2}x)",
        b - a,
        b / a
    );
    unsafe { vt_profiler_free(c_profiler) };
}
