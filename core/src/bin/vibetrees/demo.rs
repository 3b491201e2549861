//! `vibetrees demo`: a sample project in a temporary folder, worktrees created cold then warm.
//!
//! The project is a git repository with a few hundred source files, a package.json with a handful
//! of small real packages, its package-lock.json and a real node_modules made by `npm install`.
//! When npm is missing or the registry cannot be reached, a realistic node_modules tree and
//! lockfile are generated instead (and the demo says so). HOME points at the temporary folder, so
//! the cache, the ports registry and the history of the demo never touch the real ~/.vibetrees.

use super::{print_profile, run_program, stderr_progress};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vibetrees_core::worktree::{ContainerRuntime, CreateOutcome, WorktreeManager, WorktreeOptions};
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

const DEPS: &[(&str, &str)] = &[
    ("lodash", "4.17.21"),
    ("commander", "12.1.0"),
    ("semver", "7.6.3"),
    ("debug", "4.3.7"),
    ("uuid", "10.0.0"),
    ("yargs", "17.7.2"),
];

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
    let real_npm = build_project(&root, a.files, a.offline)?;

    let opts = || WorktreeOptions {
        runtime: ContainerRuntime::None,
        on_progress: Some(stderr_progress()),
        ..WorktreeOptions::new(&root)
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

/// Builds the sample project; returns true when node_modules came from a real npm install.
fn build_project(root: &Path, files: usize, offline: bool) -> Result<bool> {
    let w = |p: PathBuf, text: String| -> Result<()> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io_path("create", d, e))?;
        }
        std::fs::write(&p, text).map_err(|e| Error::io_path("write", &p, e))
    };
    for i in 0..files {
        let dir = format!("src/feature-{}", i / 25);
        w(
            root.join(format!("{dir}/module-{i}.js")),
            format!("// module {i}\nexport function f{i}(x) {{\n  return x * {i} + 1;\n}}\n"),
        )?;
    }
    w(root.join("README.md"), "# sample-app\n".into())?;
    w(
        root.join(".gitignore"),
        "node_modules/\n.env\n.claude/\n.worktrees/\n".into(),
    )?;
    let deps: serde_json::Map<String, serde_json::Value> = DEPS
        .iter()
        .map(|(n, v)| (n.to_string(), serde_json::json!(v)))
        .collect();
    let pkg = serde_json::json!({
        "name": "sample-app", "version": "1.0.0", "private": true,
        "dependencies": deps,
        "devDependencies": { "@modelcontextprotocol/server-filesystem": "*" },
    });
    // The MCP dev dependency is only read by discovery, never installed.
    let mut pkg_for_install = pkg.clone();
    pkg_for_install
        .as_object_mut()
        .unwrap()
        .remove("devDependencies");
    w(
        root.join("package.json"),
        serde_json::to_string_pretty(&pkg_for_install)? + "\n",
    )?;
    run_program("git", &["init", "-q", "-b", "main"], root)?;
    run_program(
        "git",
        &["config", "user.email", "demo@vibetrees.invalid"],
        root,
    )?;
    run_program("git", &["config", "user.name", "vibetrees demo"], root)?;
    let mut real = false;
    if !offline {
        println!(
            "Installing {} packages with npm (real node_modules)...",
            DEPS.len()
        );
        match run_program("npm", &["install", "--no-audit", "--no-fund"], root) {
            Ok(_) => real = true,
            Err(e) => println!(
                "npm install failed, generating node_modules instead: {}",
                e.full_message()
            ),
        }
    }
    if !real {
        generate_node_modules(root)?;
    }
    let mut pkg_final: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("package.json")).map_err(|e| Error::io("read package.json", e))?,
    )?;
    pkg_final["devDependencies"] = pkg["devDependencies"].clone();
    if real {
        // keep npm's view consistent: devDependencies that are not installed would make `npm ci` fail
        pkg_final.as_object_mut().unwrap().remove("devDependencies");
    }
    w(
        root.join("package.json"),
        serde_json::to_string_pretty(&pkg_final)? + "\n",
    )?;
    run_program("git", &["add", "-A"], root)?;
    run_program("git", &["commit", "-q", "-m", "sample project"], root)?;
    let n = count_files(&root.join("node_modules"));
    println!(
        "Sample project ready: {files} source files, node_modules with {n} files ({})",
        if real {
            "installed by npm"
        } else {
            "generated"
        }
    );
    Ok(real)
}

fn count_files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => n += count_files(&e.path()),
                Ok(_) => n += 1,
                Err(_) => {}
            }
        }
    }
    n
}

/// A realistic node_modules (packages with package.json, lib files, nested folders) and a
/// package-lock.json that names them.
fn generate_node_modules(root: &Path) -> Result<()> {
    let nm = root.join("node_modules");
    let mut lock_pkgs = serde_json::Map::new();
    lock_pkgs.insert(
        "".into(),
        serde_json::json!({ "name": "sample-app", "version": "1.0.0" }),
    );
    for p in 0..120 {
        let name = format!("pkg-{p:03}");
        let dir = nm.join(&name);
        for f in 0..12 {
            let sub = dir.join(if f % 3 == 0 { "lib" } else { "lib/util" });
            std::fs::create_dir_all(&sub).map_err(|e| Error::io_path("create", &sub, e))?;
            std::fs::write(
                sub.join(format!("file-{f}.js")),
                format!("module.exports = {f};\n").repeat(20),
            )
            .map_err(|e| Error::io("write", e))?;
        }
        std::fs::write(
            dir.join("package.json"),
            format!("{{\"name\":\"{name}\",\"version\":\"1.0.{p}\",\"main\":\"lib/file-0.js\"}}\n"),
        )
        .map_err(|e| Error::io("write", e))?;
        lock_pkgs.insert(
            format!("node_modules/{name}"),
            serde_json::json!({ "version": format!("1.0.{p}") }),
        );
    }
    let lock = serde_json::json!({ "name": "sample-app", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": lock_pkgs });
    std::fs::write(
        root.join("package-lock.json"),
        serde_json::to_string_pretty(&lock)? + "\n",
    )
    .map_err(|e| Error::io("write lockfile", e))?;
    Ok(())
}
