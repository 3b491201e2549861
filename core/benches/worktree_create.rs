//! Benchmark of a whole worktree creation, per issue 4:
//!
//! `cargo bench -p vibetrees-core --bench worktree_create [-- --rounds N --files N --deps web|libs --user-npmrc --checkout]`
//!
//! On a generated project (a few thousand tracked files, a real node_modules from `npm install`
//! of real packages, or a generated ~10k-file tree when npm cannot reach the registry), in one run
//! and alternating the contenders each round (A B C D, A B C D, ... never deleting between runs:
//! see BENCHMARKING.md's ext4 trap):
//! The packages: `--deps web` (default) a typical web app's tree (express, jest, eslint, webpack,
//! lodash: ~9.8k files in ~480 packages), `--deps libs` a few big libraries (date-fns, lodash,
//! rxjs, core-js, yargs: ~13k files in a handful of packages, which npm installs faster).
//! npm runs with its defaults (HOME is a temporary folder); `--user-npmrc` gives it the user's
//! own `~/.npmrc` instead.
//! - **sequential**: the original server's flow, `git worktree add` then `npm ci` (then compose up
//!   when an engine is there; none runs here, so both sides skip containers);
//! - **cold**: `create_worktree_optimized` with an empty cache (miss: install after checkout);
//! - **warm**: `create_worktree_optimized` with the cache filled (hit);
//! - **pooled**: `create_worktree_optimized` claiming a pool spare of `main` (made, untimed,
//!   before the round by `fill_pool`; the refill after the claim is awaited, untimed, before the
//!   next contender runs). The other arms run with the pool off (`poolSize: 0`);
//! - **near**: a claim of a near spare: a spare of `main` made (untimed), `main` moved by a
//!   commit touching 10 files (untimed), then the creation applies the difference
//!   (`pool_rows.rs`);
//! - **floors**: the checkout alone (the one creations use: `git::add_worktree`, branch,
//!   registration and checkout) and the cache restore alone; `git worktree add` alone for reference.
//!
//! `--warm-only` runs only the warm creation and the floors, `--steps` prints each warm creation's
//! steps on a time line, `--keep` leaves the temporary folder (delete it at a quiet moment), and
//! `--no-settle` skips the 65 s wait after building the project (see BENCHMARKING.md's ext4 trap).
//! `--near-sweep` adds near claims of 10 to 20,000 changed files (where `poolNearMaxChanges`
//! lies); `--flat` runs only warm creations and claims with 5 and then 200 worktrees present.
//!
//! Prints medians and ratios: sequential / warm, sequential / cold, and warm / max(checkout,
//! restore) (the floor). `--checkout` also compares the checkout alone: the git CLI's (with and
//! without `checkout.workers=2`), libgit2's, and ours (1-3 threads, also beside a burnt core),
//! on loose then packed objects (see `checkout_rows.rs`).

#[path = "worktree_create/checkout_rows.rs"]
mod checkout_rows;
#[path = "worktree_create/pool_rows.rs"]
mod pool_rows;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vibetrees_core::cache::{CacheKey, CacheOptions, NodeModulesCache, RestoreOptions};
use vibetrees_core::sample_project::SampleProject;
use vibetrees_core::worktree::{
    ContainerRuntime, CreateOutcome, CreatedWorktree, WorktreeManager, WorktreeOptions,
    WorktreeSettings,
};

struct Args {
    rounds: usize,
    files: usize,
    checkout: bool,
    offline: bool,
    restore_workers: Option<usize>,
    deps: String,
    user_npmrc: bool,
    steps: bool,
    warm_only: bool,
    keep: bool,
    settle: bool,
    near_sweep: bool,
    flat: bool,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 5,
        files: 4000,
        checkout: false,
        offline: false,
        restore_workers: None,
        deps: "web".into(),
        user_npmrc: false,
        steps: false,
        warm_only: false,
        keep: false,
        settle: true,
        near_sweep: false,
        flat: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        match v[i].as_str() {
            "--rounds" => {
                a.rounds = v[i + 1].parse().expect("--rounds N");
                i += 1;
            }
            "--files" => {
                a.files = v[i + 1].parse().expect("--files N");
                i += 1;
            }
            "--restore-workers" => {
                a.restore_workers = Some(v[i + 1].parse().expect("--restore-workers N"));
                i += 1;
            }
            "--deps" => {
                a.deps = v[i + 1].clone();
                i += 1;
            }
            "--user-npmrc" => a.user_npmrc = true,
            "--checkout" => a.checkout = true,
            "--steps" => a.steps = true,
            "--warm-only" => a.warm_only = true,
            "--keep" => a.keep = true,
            "--no-settle" => a.settle = false,
            "--offline" => a.offline = true,
            "--near-sweep" => a.near_sweep = true,
            "--flat" => a.flat = true,
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

/// `git worktree add -q -b <branch> -- <path> main`, the CLI's way (the sequential flow's first
/// step, and the reference).
fn git_worktree_add(root: &Path, branch: &str, path: &Path) {
    let path = path.to_string_lossy();
    run(
        "git",
        &["worktree", "add", "-q", "-b", branch, "--", &path, "main"],
        root,
    );
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Waits out BENCHMARKING.md's ext4 trap after the project's build deleted ~10k files: ext4
/// without a journal skips a free inode deleted less than 60 s ago (longer while its inode table
/// block is dirty), and looking for another one then dominates every file creation. So `sync`,
/// then 65 s. Deletions made by other work in the minutes before still show in the first rounds:
/// compare the rounds, and rerun when they drift.
fn settle() {
    println!("settling: sync, then 65 s for ext4 to reuse the freed inodes (--no-settle skips)");
    run("sync", &[], Path::new("/"));
    std::thread::sleep(std::time::Duration::from_secs(65));
}

/// CPU time this process has used so far (user + system, every thread), in ms.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 * 1e3 + v.tv_usec as f64 / 1e3;
    t(u.ru_utime) + t(u.ru_stime)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[s.len() / 2]
}

/// Builds the project (see `vibetrees_core::sample_project`); returns true when node_modules came
/// from a real npm install. With npm, also a branch `bump` with one more dependency.
fn build_project(root: &Path, files: usize, offline: bool, deps: &str) -> bool {
    let base = match deps {
        "libs" => SampleProject::big_libraries(),
        _ => SampleProject::web_app(),
    };
    let sample = SampleProject {
        source_files: files,
        offline,
        ..base
    };
    let real = sample
        .build(root, &|line| eprintln!("{line}"))
        .unwrap()
        .installed_by_npm;
    if real {
        // branch `bump`: one more dependency, for the near-entry contender
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "ms@2.1.3"])
            .current_dir(root)
            .status();
        if matches!(st, Ok(s) if s.success()) {
            run("git", &["checkout", "-q", "-b", "bump"], root);
            run("git", &["commit", "-qam", "add ms"], root);
            run("git", &["checkout", "-q", "main"], root);
            run(
                "npm",
                &[
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    "--prefer-offline",
                ],
                root,
            );
        }
    }
    real
}

fn created(o: CreateOutcome) -> Box<CreatedWorktree> {
    match o {
        CreateOutcome::Created(w) => w,
        CreateOutcome::Existed { name, .. } => panic!("{name} existed"),
    }
}

fn main() {
    let a = args();
    let tmp = tempfile::Builder::new()
        .prefix("vt-bench-")
        .tempdir()
        .unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    if a.user_npmrc {
        // npm keeps reading the user's own config although HOME moves (e.g. this machine's
        // `omit-lockfile-registry-resolved=true`, under which `npm ci` resolves every package
        // from its cached manifest: the conditions of the issue's ~6 s `npm ci`)
        let user = Path::new(&std::env::var_os("HOME").unwrap()).join(".npmrc");
        println!("npm config: {}", user.display());
        // SAFETY: single-threaded here; the runtime starts later.
        unsafe { std::env::set_var("npm_config_userconfig", user) };
    }
    // SAFETY: single-threaded here; the runtime starts later.
    unsafe { std::env::set_var("HOME", &home) };
    let root = tmp.path().join("projects").join("bench-app");
    std::fs::create_dir_all(&root).unwrap();
    println!(
        "project: {} ({} tracked source files)",
        root.display(),
        a.files
    );
    let real_npm = build_project(&root, a.files, a.offline, &a.deps);
    let nm_files = vibetrees_core::sample_project::count_files(&root.join("node_modules"));
    println!(
        "node_modules: {nm_files} files ({})",
        if real_npm {
            "npm install of real packages"
        } else {
            "generated: npm unavailable"
        }
    );
    let install: Vec<&str> = if real_npm {
        vec![
            "ci",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--silent",
        ]
    } else {
        Vec::new()
    };

    let warm_cache_dir = tmp.path().join("warm-cache");
    let cache = NodeModulesCache::open(CacheOptions {
        cache_dir: Some(warm_cache_dir.clone()),
        ..Default::default()
    })
    .unwrap();
    let key = CacheKey::from_project_dir(&root).unwrap();
    cache.populate(&key, &root.join("node_modules")).unwrap();
    let opts = |cache_dir: PathBuf| -> WorktreeOptions {
        WorktreeSettings {
            runtime: ContainerRuntime::None,
            cache_dir: Some(cache_dir),
            history_path: Some(tmp.path().join("history.sqlite")),
            restore_workers: a.restore_workers,
            pool_size: 0,
            ..WorktreeSettings::new(&root)
        }
        .into()
    };
    let warm = WorktreeManager::new(opts(warm_cache_dir.clone())).unwrap();
    let pooled_manager = {
        let mut o = opts(warm_cache_dir.clone());
        o.settings.pool_size = 1;
        WorktreeManager::new(o).unwrap()
    };
    let mut pooled = Vec::new();
    let mut near_claims = Vec::new();
    if a.settle {
        // building the project deleted ~10k files (`npm ci` empties node_modules first)
        settle();
    }
    if a.flat {
        pool_rows::flat(&warm, &pooled_manager, &root, a.rounds, a.steps);
        drop(warm);
        vibetrees_core::runtime::block_on(pooled_manager.clear_pool()).unwrap();
        drop(pooled_manager);
        finish(tmp, a.keep);
        return;
    }

    let (mut seq, mut cold, mut hot, mut checkout, mut restore) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cli_checkout = Vec::new();
    // CPU time (user + system, all threads of this process) of warm, checkout alone, restore alone
    let (mut cpu_warm, mut cpu_checkout, mut cpu_restore) = (Vec::new(), Vec::new(), Vec::new());
    let has_bump = Command::new("git")
        .args(["rev-parse", "--verify", "-q", "refs/heads/bump"])
        .current_dir(&root)
        .status()
        .is_ok_and(|s| s.success());
    let (mut near, mut clean_bump) = (Vec::new(), Vec::new());
    let floors_dir = tmp.path().join("floors");
    std::fs::create_dir_all(&floors_dir).unwrap();
    for r in 0..a.rounds {
        if a.warm_only {
            // only C and D: fewer files made per round, so less of the ext4 trap
            seq.push(f64::NAN);
            cold.push(f64::NAN);
        } else {
            // A: sequential flow
            let p = root.join(format!(".worktrees/seq-{r}"));
            let t = Instant::now();
            git_worktree_add(&root, &format!("seq-{r}"), &p);
            if !install.is_empty() {
                run("npm", &install, &p);
            }
            seq.push(ms(t));
            // B: cold creation (empty cache, populated in the background: awaited outside the timing)
            let m = WorktreeManager::new(opts(tmp.path().join(format!("cold-cache-{r}")))).unwrap();
            let w = created(
                vibetrees_core::runtime::block_on(
                    m.create_worktree_optimized(&format!("cold-{r}"), "main"),
                )
                .unwrap(),
            );
            cold.push(w.total_ms);
            vibetrees_core::runtime::block_on(m.wait_background());
        }
        // C: warm creation
        let cpu = cpu_ms();
        let w = created(
            vibetrees_core::runtime::block_on(
                warm.create_worktree_optimized(&format!("warm-{r}"), "main"),
            )
            .unwrap(),
        );
        assert_eq!(w.cache.outcome, "hit");
        hot.push(w.total_ms);
        cpu_warm.push(cpu_ms() - cpu);
        if a.steps {
            print_steps(&w);
        }
        // C2: pooled creation (a spare made before, untimed; its refill awaited, untimed)
        vibetrees_core::runtime::block_on(pooled_manager.fill_pool(Some("main"))).unwrap();
        let w = created(
            vibetrees_core::runtime::block_on(
                pooled_manager.create_worktree_optimized(&format!("pooled-{r}"), "main"),
            )
            .unwrap(),
        );
        assert!(w.pool.claimed, "no spare claimed");
        pooled.push(w.total_ms);
        if a.steps {
            print_steps(&w);
        }
        vibetrees_core::runtime::block_on(pooled_manager.wait_background());
        // C3: a near claim after a commit touching 10 files (its setup untimed)
        let w = pool_rows::near_claim(
            &pooled_manager,
            &root,
            a.files,
            &format!("near-claim-{r}"),
            10,
        );
        near_claims.push((w.total_ms, pool_rows::near_phase_ms(&w)));
        if a.steps {
            print_steps(&w);
        }
        // E/F: a dependency added on branch `bump`: near entry (main's node_modules restored,
        // then `npm install --prefer-offline`) vs the clean install, each with a fresh cache
        if has_bump && !a.warm_only {
            let near_cache = tmp.path().join(format!("near-cache-{r}"));
            let nc = NodeModulesCache::open(CacheOptions {
                cache_dir: Some(near_cache.clone()),
                ..Default::default()
            })
            .unwrap();
            let inputs = vibetrees_core::cache::KeyInputs::from_project_dir(&root).unwrap();
            let popts = vibetrees_core::cache::PopulateOptions {
                inputs: Some(inputs),
                ..Default::default()
            };
            nc.populate_with(&key, &root.join("node_modules"), &popts)
                .unwrap();
            let m = WorktreeManager::new(opts(near_cache)).unwrap();
            let w = created(
                vibetrees_core::runtime::block_on(
                    m.create_worktree_optimized(&format!("near-{r}"), "bump"),
                )
                .unwrap(),
            );
            assert_eq!(w.cache.outcome, "near", "{:?}", w.cache);
            near.push(w.total_ms);
            vibetrees_core::runtime::block_on(m.wait_background());
            let m =
                WorktreeManager::new(opts(tmp.path().join(format!("clean-cache-{r}")))).unwrap();
            let w = created(
                vibetrees_core::runtime::block_on(
                    m.create_worktree_optimized(&format!("clean-bump-{r}"), "bump"),
                )
                .unwrap(),
            );
            clean_bump.push(w.total_ms);
            vibetrees_core::runtime::block_on(m.wait_background());
            println!(
                "round {r}: dependency added: near entry {:.0} ms | clean install {:.0} ms",
                near[r], clean_bump[r]
            );
        }
        // D: floors, each alone: the checkout a creation makes (branch + registration +
        // checkout, `git::add_worktree`), and the restore
        let p = root.join(format!(".worktrees/floor-{r}"));
        let branch = format!("floor-{r}");
        let cpu = cpu_ms();
        let t = Instant::now();
        {
            use vibetrees_core::worktree::git;
            let repo = git::open(&root).unwrap();
            let commit = repo.head().unwrap().peel_to_commit().unwrap().id();
            git::ensure_branch(&repo, &branch, commit, std::time::SystemTime::now()).unwrap();
            let added = vibetrees_core::runtime::block_on(git::add_worktree(&root, &p, &branch, 1))
                .unwrap();
            git::unlock(&repo, &branch).unwrap();
            if r == 0 {
                println!("checkout used by creations: {}", added.method.as_str());
            }
        }
        checkout.push(ms(t));
        cpu_checkout.push(cpu_ms() - cpu);
        // and, for reference, `git worktree add` alone
        let p = root.join(format!(".worktrees/cli-{r}"));
        let t = Instant::now();
        git_worktree_add(&root, &format!("cli-{r}"), &p);
        cli_checkout.push(ms(t));
        let cpu = cpu_ms();
        let t = Instant::now();
        cache
            .restore(
                &key,
                &floors_dir.join(format!("nm-{r}")),
                &RestoreOptions::default(),
            )
            .unwrap();
        restore.push(ms(t));
        cpu_restore.push(cpu_ms() - cpu);
        println!(
            "round {r}: sequential {:.0} ms | cold {:.0} ms | warm {:.0} ms | pooled {:.0} ms | near claim {:.0} ms | checkout alone {:.0} ms | restore alone {:.0} ms",
            seq[r], cold[r], hot[r], pooled[r], near_claims[r].0, checkout[r], restore[r]
        );
    }
    let (s, c, w, co, re) = (
        median(&seq),
        median(&cold),
        median(&hot),
        median(&checkout),
        median(&restore),
    );
    let floor = co.max(re);
    println!("\nmedians over {} rounds (alternating):", a.rounds);
    println!(
        "  sequential (git worktree add + {}) {s:>8.1} ms",
        if real_npm { "npm ci" } else { "no install" }
    );
    println!(
        "  cold creation, time to ready        {c:>8.1} ms   sequential/cold = {:.2}x",
        s / c
    );
    println!(
        "  warm creation, time to ready        {w:>8.1} ms   sequential/warm = {:.2}x (target >= 20x)",
        s / w
    );
    let pm = median(&pooled);
    println!(
        "  pooled creation (a claimed spare)   {pm:>8.1} ms   warm/pooled = {:.2}x, `git worktree add`/pooled = {:.2}x (target <= 25 ms)",
        w / pm,
        median(&cli_checkout) / pm
    );
    let near_ms: Vec<f64> = near_claims.iter().map(|n| n.0).collect();
    let near_phase: Vec<f64> = near_claims.iter().map(|n| n.1).collect();
    println!(
        "  near claim (10 files changed)       {:>8.1} ms   of which the difference update {:.1} ms",
        median(&near_ms),
        median(&near_phase)
    );
    println!(
        "  floor max(checkout {co:.1}, restore {re:.1}) = {floor:.1} ms   warm/floor = {:.2} (target <= 1.25)",
        w / floor
    );
    let (cw, cc, cr) = (
        median(&cpu_warm),
        median(&cpu_checkout),
        median(&cpu_restore),
    );
    println!(
        "  CPU time (user + system): warm {cw:.1} ms, checkout alone {cc:.1} ms, restore alone {cr:.1} ms; \
         on 2 cores the warm creation needs at least {:.1} ms",
        (cc + cr) / 2.0
    );
    if !near.is_empty() {
        let (n, cb) = (median(&near), median(&clean_bump));
        println!(
            "  dependency added: near entry {n:.1} ms vs clean install {cb:.1} ms   clean/near = {:.2}x",
            cb / n
        );
    }
    println!(
        "  for reference: `git worktree add` alone {:.1} ms (the creation's checkout is {:.2}x that)",
        median(&cli_checkout),
        co / median(&cli_checkout)
    );
    println!(
        "  with the git CLI's checkout as the floor: warm / max(`git worktree add` {:.1}, restore {re:.1}) = {:.2}",
        median(&cli_checkout),
        w / median(&cli_checkout).max(re)
    );
    println!("  containers: no engine runs here; both flows skip compose up");

    if a.near_sweep {
        let mut o = opts(warm_cache_dir.clone());
        o.settings.pool_size = 1;
        o.settings.pool_near_max_changes = usize::MAX;
        let m = WorktreeManager::new(o).unwrap();
        pool_rows::near_sweep(&m, &root, a.files, w);
    }
    if a.checkout {
        checkout_rows::checkout_comparison(&root, a.rounds, tmp.path());
    }
    // delete after the series only
    drop(warm);
    vibetrees_core::runtime::block_on(pooled_manager.clear_pool()).unwrap();
    drop(pooled_manager);
    finish(tmp, a.keep);
}

/// Deletes the benchmark's temporary folder, or keeps it (`--keep`) for a later delete.
fn finish(tmp: tempfile::TempDir, keep: bool) {
    if keep {
        println!(
            "kept {} (delete it at a quiet moment)",
            tmp.keep().display()
        );
    } else {
        let _ = std::fs::remove_dir_all(tmp.path());
    }
}

/// `--steps`: a warm creation's steps on a time line (start, end, duration), in start order.
fn print_steps(w: &CreatedWorktree) {
    let mut t: Vec<_> = w.timings.iter().filter(|s| s.start_ms.is_some()).collect();
    t.sort_by(|a, b| a.start_ms.partial_cmp(&b.start_ms).unwrap());
    println!("  warm creation's steps (ready at {:.1} ms):", w.total_ms);
    for s in t {
        let (st, d) = (s.start_ms.unwrap(), s.duration_ms.unwrap_or(0.0));
        println!(
            "    {:<28} {st:>7.1} .. {:>7.1} ms  ({d:>6.1} ms) {}",
            s.name,
            st + d,
            s.status
        );
    }
    if let Some(p) = w
        .steps
        .get("git-worktree-add")
        .and_then(|o| o.get("checkoutPhasesMs"))
    {
        println!("    git-worktree-add's phases (ms): {p}");
    }
    println!("    critical path: {}", w.critical_path.join(" > "));
}
