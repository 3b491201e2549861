//! `vibetrees demo`: a sample project in a temporary folder, worktrees created cold then warm.
//!
//! The project is a git repository with a few hundred source files, a package.json with a handful
//! of small real packages, its package-lock.json and a real node_modules made by `npm install`.
//! When npm is missing or the registry cannot be reached, a realistic node_modules tree and
//! lockfile are generated instead (and the demo says so). HOME points at the temporary folder, so
//! the cache, the ports registry and the history of the demo never touch the real ~/.vibetrees.

use super::{print_profile, run_program, stderr_progress};
use std::time::Instant;
use vibetrees_core::sample_project::SampleProject;
use vibetrees_core::worktree::{
    ContainerRuntime, CreateOutcome, WorktreeManager, WorktreeOptions, WorktreeSettings,
};
use vibetrees_core::{Error, Result};

/// Options of `vibetrees demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Keep the temporary folder (and print where it is).
    #[arg(long)]
    pub keep: bool,
    /// Source files in the sample repository.
    #[arg(long, default_value_t = 400)]
    pub files: usize,
    /// Do not try npm: generate node_modules instead.
    #[arg(long)]
    pub offline: bool,
}

pub fn run(a: DemoArgs) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("vibetrees-demo-")
        .tempdir()
        .map_err(|e| Error::io("create temporary folder", e))?;
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).map_err(|e| Error::io_path("create", &home, e))?;
    // SAFETY: called from main before any other thread exists (the runtime starts later).
    unsafe { std::env::set_var("HOME", &home) };
    let root = tmp.path().join("projects").join("sample-app");
    println!("Sample project: {}", root.display());
    let sample = SampleProject {
        source_files: a.files,
        offline: a.offline,
        ..SampleProject::demo()
    };
    let built = sample.build(&root, &|line| println!("{line}"))?;
    println!(
        "Sample project ready: {} source files, node_modules with {} files ({})",
        a.files,
        built.node_modules_files,
        if built.installed_by_npm {
            "installed by npm"
        } else {
            "generated"
        }
    );
    let real_npm = built.installed_by_npm;

    // cold and warm creations without the pool (no spare claimed); the pooled one with it
    let pooled_opts = || {
        WorktreeOptions::from(WorktreeSettings {
            runtime: ContainerRuntime::None,
            ..WorktreeSettings::new(&root)
        })
        .with_progress(stderr_progress())
    };
    let opts = || {
        let mut o = pooled_opts();
        o.settings.pool_size = 0;
        o
    };

    // Sequential flow of the original server: git worktree add, then the install.
    println!(
        "\n== Sequential flow (git worktree add, then {}) ==",
        if real_npm {
            "npm ci"
        } else {
            "no install: npm unavailable"
        }
    );
    let seq_path = root.join(".worktrees").join("seq-baseline");
    let t = Instant::now();
    run_program(
        "git",
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "seq-baseline",
            "--",
            &seq_path.to_string_lossy(),
            "main",
        ],
        &root,
    )?;
    let git_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut npm_ms = 0.0;
    if real_npm {
        let t = Instant::now();
        run_program(
            "npm",
            &["ci", "--no-audit", "--no-fund", "--prefer-offline"],
            &seq_path,
        )?;
        npm_ms = t.elapsed().as_secs_f64() * 1000.0;
    }
    let seq_ms = git_ms + npm_ms;
    println!("  git worktree add {git_ms:.0} ms + install {npm_ms:.0} ms = {seq_ms:.0} ms");

    if !real_npm {
        // No npm: the cache is warmed from the main worktree's generated node_modules.
        let m = WorktreeManager::new(opts())?;
        vibetrees_core::runtime::block_on(async {
            let jobs = m.warm().await;
            m.wait_background().await;
            jobs
        })?;
    }

    println!(
        "\n== Cold creation (cache {}) ==",
        if real_npm {
            "empty: clean install, then cache populated in the background"
        } else {
            "warmed from the main worktree"
        }
    );
    let m = WorktreeManager::new(opts())?;
    let cold = vibetrees_core::runtime::block_on(async {
        let r = m.create_worktree_optimized("demo/Cold Start", "main").await;
        m.wait_background().await;
        r
    })?;
    let cold = created(cold)?;
    print_profile(&cold);

    println!("\n== Warm creation (cache hit) ==");
    let warm = vibetrees_core::runtime::block_on(async {
        let r = m.create_worktree_optimized("demo/Warm Start", "main").await;
        m.wait_background().await;
        r
    })?;
    let warm = created(warm)?;
    print_profile(&warm);

    println!("\n== Pooled creation (a spare made ahead, claimed) ==");
    let pm = WorktreeManager::new(pooled_opts())?;
    let pooled = vibetrees_core::runtime::block_on(async {
        pm.fill_pool(Some("main")).await?;
        let r = pm.create_worktree_optimized("demo/Pooled", "main").await;
        pm.wait_background().await;
        r
    })?;
    let pooled = created(pooled)?;
    print_profile(&pooled);
    vibetrees_core::runtime::block_on(pm.clear_pool())?;

    println!("\n== Again, already there ==");
    let again =
        vibetrees_core::runtime::block_on(m.create_worktree_optimized("demo/Warm Start", "main"))?;
    println!("{}", serde_json::to_string(&again)?);

    println!("\n== Comparison ==");
    println!("  sequential flow       {seq_ms:>8.0} ms");
    println!(
        "  cold creation (ready) {:>8.0} ms   {:.1}x faster than sequential",
        cold.total_ms,
        seq_ms / cold.total_ms
    );
    println!(
        "  warm creation (ready) {:>8.0} ms   {:.1}x faster than sequential",
        warm.total_ms,
        seq_ms / warm.total_ms
    );
    println!(
        "  pooled creation       {:>8.0} ms   {:.1}x faster than sequential{}",
        pooled.total_ms,
        seq_ms / pooled.total_ms,
        if pooled.pool.claimed {
            ""
        } else {
            " (no spare claimed)"
        }
    );
    println!(
        "  node_modules: cold = {}, warm = {} ({} files by {})",
        cold.cache.outcome,
        warm.cache.outcome,
        warm.cache.files.unwrap_or(0),
        warm.cache.method.as_deref().unwrap_or("-")
    );
    if !real_npm {
        println!(
            "  note: npm was not usable here, so node_modules was generated (not installed) and the sequential flow has no install."
        );
    }
    let metrics = m.get_performance_metrics();
    println!("\nProfiler metrics (the server's GET /api/performance/metrics), creation steps:");
    for op in metrics.operations.iter().filter(|o| {
        vibetrees_core::worktree::STEP_NAMES.contains(&o.name.as_str())
            || o.name == "create-worktree-total"
    }) {
        println!(
            "  {:<24} count {:>2}  avg {:>8.1} ms  max {:>8.1} ms",
            op.name, op.count, op.avg, op.max
        );
    }
    if a.keep {
        let kept = tmp.keep();
        println!("\nKept {}", kept.display());
    }
    Ok(())
}

fn created(o: CreateOutcome) -> Result<Box<vibetrees_core::worktree::CreatedWorktree>> {
    match o {
        CreateOutcome::Created(w) => Ok(w),
        CreateOutcome::Existed { name, .. } => {
            Err(Error::Internal(format!("{name} existed already")))
        }
    }
}
