//! The pool's rows of the `worktree_create` benchmark (issue 17): a near-spare claim after a
//! commit touching a few files, the sweep that places `poolNearMaxChanges`, and creations with
//! few against many worktrees present ("flat in the number of worktrees").
//!
//! Everything here runs on the benchmark's project (`src/area-*/mod-*/file-<i>.js`, branch
//! `main` checked out in the project's folder); commits it makes move `main`.

use super::{created, median, run};
use std::path::Path;
use std::process::Command;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CreatedWorktree, WorktreeManager};

/// Appends a line to `n` of the `files` generated source files (spread over the tree) and
/// commits them on `main`, untimed. `tag` makes each call's change its own.
pub fn touch_files(root: &Path, files: usize, n: usize, tag: &str) {
    let n = n.clamp(1, files);
    let step = (files / n).max(1);
    for j in 0..n {
        let i = (j * step) % files;
        let p = root.join(format!("src/area-{}/mod-{}/file-{i}.js", i % 16, i % 97));
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str(&format!("// {tag}\n"));
        std::fs::write(&p, text).unwrap();
    }
    run(
        "git",
        &["commit", "-qam", &format!("touch {n} files ({tag})")],
        root,
    );
}

/// One near claim: a spare of `main` made (untimed), then `main` moved by a commit touching
/// `changes` files (untimed), then a creation from `main` that claims the spare and applies the
/// difference. The refill after it is awaited, untimed. Returns the creation.
pub fn near_claim(
    m: &WorktreeManager,
    root: &Path,
    files: usize,
    name: &str,
    changes: usize,
) -> Box<CreatedWorktree> {
    block_on(m.fill_pool(Some("main"))).unwrap();
    touch_files(root, files, changes, name);
    let w = created(block_on(m.create_worktree_optimized(name, "main")).unwrap());
    // past half the tracked files a normal creation happens (`pool::near::max_changes`)
    assert!(
        changes > files / 2 || (w.pool.claimed && w.pool.near_changes.is_some()),
        "no near claim: {:?}",
        w.pool
    );
    block_on(m.wait_background());
    w
}

/// The `near` phase of a near claim's `git-worktree-add` step, ms.
pub fn near_phase_ms(w: &CreatedWorktree) -> f64 {
    w.steps
        .get("git-worktree-add")
        .and_then(|o| o.get("checkoutPhasesMs"))
        .and_then(|p| p.get("near"))
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// `--near-sweep`: near claims of growing changes (one each, `m` allowing any number up to half
/// the tracked files, the built-in cap), to place the point past which a normal warm creation
/// (median `warm_ms`) is faster.
pub fn near_sweep(m: &WorktreeManager, root: &Path, files: usize, warm_ms: f64) {
    println!("\nnear claims by changed files ({files} tracked), warm creation {warm_ms:.1} ms:");
    let mut sizes = vec![10, 100, 300, 1000, 2000, 4000, 10000, 20000];
    sizes.retain(|&n| n <= files);
    for n in sizes {
        let w = near_claim(m, root, files, &format!("sweep-{n}"), n);
        println!(
            "  {n:>6} files changed: ready {:>8.1} ms ({})   {}",
            w.total_ms,
            match w.pool.near_changes {
                Some(_) => format!("near claim, difference update {:.1} ms", near_phase_ms(&w)),
                None => "past half the tracked files: a normal creation".into(),
            },
            if w.total_ms < warm_ms {
                "faster than warm"
            } else {
                "slower than warm"
            }
        );
    }
}

/// Worktrees registered besides the main one (`git worktree list`).
fn worktrees_present(root: &Path) -> usize {
    let out = Command::new("git")
        .args(["worktree", "list", "--porcelain"])
        .current_dir(root)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .count()
        - 1
}

/// Adds registrations with `git worktree add --no-checkout` (untimed; no files, so 200 of them
/// stay cheap on disk: what a creation could scan is the registrations) until `n` are present.
fn fill_worktrees(root: &Path, n: usize) {
    let mut i = worktrees_present(root);
    while i < n {
        let name = format!("present-{i}");
        let path = root.join(".worktrees").join(&name);
        run(
            "git",
            &[
                "worktree",
                "add",
                "-q",
                "--no-checkout",
                "-b",
                &name,
                "--",
                &path.to_string_lossy(),
                "main",
            ],
            root,
        );
        i += 1;
    }
}

/// Moves the registrations `present-<i>` for `i` in `from..to` between `.git/worktrees/` and
/// the side folder `.git/vt-bench-held/` (`show`: back into `worktrees/`), untimed: git and
/// the engine see only the registrations in `worktrees/`, so one project serves both arms.
fn show_registrations(root: &Path, from: usize, to: usize, show: bool) {
    let (live, held) = (root.join(".git/worktrees"), root.join(".git/vt-bench-held"));
    std::fs::create_dir_all(&held).unwrap();
    let (src, dst) = if show { (&held, &live) } else { (&live, &held) };
    for i in from..to {
        let name = format!("present-{i}");
        if src.join(&name).exists() {
            std::fs::rename(src.join(&name), dst.join(&name)).unwrap();
        }
    }
}

/// Moves the registration of the benchmark's own worktree `w` aside (untimed), so the count of
/// worktrees present stays what the arm says round after round.
fn hide_created(root: &Path, w: &CreatedWorktree) {
    let held = root.join(".git/vt-bench-held");
    let name = w.path.file_name().unwrap();
    std::fs::rename(root.join(".git/worktrees").join(name), held.join(name)).unwrap();
}

/// `--flat`: warm creations and claims with 5 and with 200 worktrees present, `rounds` each,
/// the two arms alternating on one project (the 195 extra registrations moved aside and back,
/// untimed; each creation's own registration moved aside after it); prints the medians and the
/// ratios (target within 1.1x). `steps` prints each creation's step times.
pub fn flat(
    warm: &WorktreeManager,
    pooled: &WorktreeManager,
    root: &Path,
    rounds: usize,
    steps: bool,
) {
    const FEW: usize = 5;
    const MANY: usize = 200;
    fill_worktrees(root, MANY);
    let mut times: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let mut present = [0; 2];
    for r in 0..rounds {
        let arms = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for arm in arms {
            show_registrations(root, FEW, MANY, arm == 1);
            present[arm] = worktrees_present(root);
            let w = created(
                block_on(warm.create_worktree_optimized(&format!("flat{arm}-warm-{r}"), "main"))
                    .unwrap(),
            );
            block_on(warm.wait_background());
            hide_created(root, &w);
            block_on(pooled.fill_pool(Some("main"))).unwrap();
            let p = created(
                block_on(pooled.create_worktree_optimized(&format!("flat{arm}-pool-{r}"), "main"))
                    .unwrap(),
            );
            assert!(p.pool.claimed, "no spare claimed");
            block_on(pooled.wait_background());
            hide_created(root, &p);
            for c in [&w, &p].into_iter().filter(|_| steps) {
                super::print_steps(c);
            }
            println!(
                "flat, {} worktrees present, round {r}: warm {:.1} ms | claim {:.1} ms",
                present[arm], w.total_ms, p.total_ms
            );
            times[arm].0.push(w.total_ms);
            times[arm].1.push(p.total_ms);
        }
    }
    show_registrations(root, FEW, MANY, true);
    disk_cost(pooled, root);
    println!("\nflat in the number of worktrees (medians of {rounds} rounds, arms alternating):");
    let f = |v: &Vec<f64>| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (arm, (wv, pv)) in times.iter().enumerate() {
        println!(
            "  {:>3} present: warm {:>7.1} ms ({}) | claim {:>6.1} ms ({})",
            present[arm],
            median(wv),
            f(wv),
            median(pv),
            f(pv)
        );
    }
    let ((fw, fp), (mw, mp)) = (&times[0], &times[1]);
    println!(
        "  ratio {} / {} present: warm {:.2}x, claim {:.2}x (target <= 1.1x)",
        present[1],
        present[0],
        median(mw) / median(fw),
        median(mp) / median(fp)
    );
    // the fastest round of each: what the work costs when the shared machine left it alone
    let min = |v: &Vec<f64>| v.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "  fastest rounds, {} / {} present: warm {:.1} / {:.1} ms = {:.2}x, claim {:.1} / {:.1} ms = {:.2}x",
        present[1],
        present[0],
        min(mw),
        min(fw),
        min(mw) / min(fw),
        min(mp),
        min(fp),
        min(mp) / min(fp)
    );
}

/// The pool's disk cost: one spare made (untimed), then what `pool_status` counts (its own
/// checked-out bytes) and what `du` says of the pool folder (blocks, and inodes: its
/// node_modules are hardlinks into the cache, no data of their own).
fn disk_cost(pooled: &WorktreeManager, root: &Path) {
    block_on(pooled.fill_pool(Some("main"))).unwrap();
    let status = pooled.pool_status();
    let pool = root.join(".worktrees/.pool");
    let du = |args: &[&str]| -> String {
        let out = Command::new("du").args(args).arg(&pool).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("?")
            .to_string()
    };
    for s in &status.spares {
        println!(
            "pool disk cost: a spare of {} files holds {} bytes of its own files (node_modules restored: {}, hardlinks)",
            s.files, s.bytes, s.node_modules
        );
    }
    println!(
        "pool disk cost: du of .pool: {} KiB on disk, {} inodes",
        du(&["-sk"]),
        du(&["-s", "--inodes"])
    );
}
