//! What the no-follow opens of a creation cost: `ConfinedDir` (openat2, and the per-component
//! walk other platforms use) against a plain `File::open`, per call, on a real folder.
//! Run: cargo run -p vibetrees-core --example confined_cost [iterations]
use std::time::Instant;
use vibetrees_core::platform::{ConfinedDir, OpenBeneath, Resolver};

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f(); // warm the dentry cache
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let wt = dir.path();
    std::fs::create_dir_all(wt.join(".claude"))?;
    std::fs::write(wt.join(".claude/settings.json"), "{}")?;
    std::fs::write(wt.join(".env"), "A=1\n")?;
    let rel = ".claude/settings.json";
    let abs = wt.join(rel);
    let native = ConfinedDir::open_with(wt, Resolver::Native)?;
    let walk = ConfinedDir::open_with(wt, Resolver::PerComponent)?;
    let rows = [
        (
            "File::open(<worktree>/.claude/settings.json)",
            per_call(n, || drop(std::fs::File::open(&abs).unwrap())),
        ),
        (
            "ConfinedDir::open_file, openat2 (Linux)",
            per_call(n, || {
                drop(native.open_file(rel, OpenBeneath::read()).unwrap())
            }),
        ),
        (
            "ConfinedDir::open_file, per component (macOS < 11, fallback)",
            per_call(n, || {
                drop(walk.open_file(rel, OpenBeneath::read()).unwrap())
            }),
        ),
        (
            "ConfinedDir::open (the worktree's handle)",
            per_call(n, || drop(ConfinedDir::open(wt).unwrap())),
        ),
        (
            "ConfinedDir::link_on_path (the check before a step)",
            per_call(n, || assert!(native.link_on_path(rel).unwrap().is_none())),
        ),
        (
            "std::fs::read(<worktree>/.claude/settings.json)",
            per_call(n, || drop(std::fs::read(&abs).unwrap())),
        ),
        (
            "ConfinedDir::read(.claude/settings.json)",
            per_call(n, || drop(native.read(rel).unwrap())),
        ),
    ];
    println!("{n} calls each, µs per call:");
    for (what, us) in rows {
        println!("  {us:>7.2}  {what}");
    }
    Ok(())
}
