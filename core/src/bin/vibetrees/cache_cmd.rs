//! `vibetrees cache ...`: status, warm, verify, prune, clear, and the populate/restore primitives.

use std::path::{Path, PathBuf};
use vibetrees_core::cache::{
    CacheKey, CacheOptions, KeyInputs, NodeModulesCache, PopulateOptions, RestoreMethod,
    RestoreOptions,
};
use vibetrees_core::{Error, Result};

/// Options every cache subcommand takes.
#[derive(clap::Args, Clone)]
pub struct CacheArgs {
    /// Cache folder (default: $VIBETREES_CACHE_DIR, else ~/.vibetrees/cache).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Subcommands of `vibetrees cache`.
#[derive(clap::Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes (shared inodes counted once), hits and misses.
    Status(CacheArgs),
    /// Make sure the cache holds the project's node_modules: install it first (npm ci, or npm
    /// install without a lockfile) when the project has none, then cache it.
    Warm {
        /// The project folder (holding package.json).
        project: PathBuf,
        #[command(flatten)]
        args: CacheArgs,
    },
    /// Check every cached file against its entry's listing (finds files changed through hardlinks).
    Verify {
        /// Evict the entries found changed.
        #[arg(long)]
        evict: bool,
        /// Re-hash every file's content and compare it with the digests taken at populate: finds
        /// an in-place write that kept size and mtime (slower: reads every byte).
        #[arg(long)]
        content: bool,
        #[command(flatten)]
        args: CacheArgs,
    },
    /// Evict least recently used entries until the cache fits a size budget.
    Prune {
        /// Budget, e.g. 5G, 500M, 1048576 (bytes).
        #[arg(long, default_value = "10G")]
        max_size: String,
        #[command(flatten)]
        args: CacheArgs,
    },
    /// Remove every entry not being restored right now.
    Clear(CacheArgs),
    /// Cache a node_modules folder under its project's key (or under --key).
    Populate {
        /// The node_modules folder.
        node_modules: PathBuf,
        /// Use this key instead of the project's.
        #[arg(long)]
        key: Option<String>,
        #[command(flatten)]
        args: CacheArgs,
    },
    /// Restore a project's node_modules from the cache (or the entry --key into --target).
    Restore {
        /// The project folder; node_modules is restored into it unless --target is given.
        project: Option<PathBuf>,
        /// Entry key (default: the project's key).
        #[arg(long)]
        key: Option<String>,
        /// Folder to create (default: <project>/node_modules). An existing one must be a
        /// node_modules folder and is replaced only with --replace.
        #[arg(long)]
        target: Option<PathBuf>,
        /// Replace an existing node_modules target.
        #[arg(long)]
        replace: bool,
        /// auto, hardlink, clone, copy or clone-or-copy.
        #[arg(long, default_value = "auto")]
        method: String,
        /// Skip the per-file check of the entry (faster; may serve a changed entry).
        #[arg(long)]
        skip_verify: bool,
        /// Worker threads.
        #[arg(long)]
        workers: Option<usize>,
        #[command(flatten)]
        args: CacheArgs,
    },
    /// Print the cache key of a project folder and what it is made of.
    Key {
        /// The project folder.
        project: PathBuf,
        #[command(flatten)]
        args: CacheArgs,
    },
}

fn open(args: &CacheArgs, workers: Option<usize>) -> Result<NodeModulesCache> {
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(|| std::env::var_os("VIBETREES_CACHE_DIR").map(PathBuf::from));
    NodeModulesCache::open(CacheOptions {
        cache_dir,
        workers,
        profiler: None,
    })
}

fn print<T: serde::Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

/// Parses `10G`, `500M`, `64K`, `1048576`.
fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        Some('T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as u64)
        .ok_or_else(|| Error::InvalidArgument(format!("size '{s}' (use e.g. 5G, 500M, 1048576)")))
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

fn key_arg(key: &Option<String>, project: impl FnOnce() -> Result<CacheKey>) -> Result<CacheKey> {
    match key {
        Some(k) => CacheKey::parse(k),
        None => project(),
    }
}

/// Runs `vibetrees cache <cmd>`.
pub fn run(cmd: CacheCommand) -> Result<()> {
    match cmd {
        CacheCommand::Status(args) => {
            let cache = open(&args, None)?;
            let stats = cache.stats()?;
            let entries = cache.entries()?;
            let value = serde_json::json!({ "stats": stats, "entries": entries });
            print(args.json, &value, || {
                let mut s = format!(
                    "cache {}: {} entries, {} files, {} (shared inodes counted once; {} summed), {} hits, {} misses",
                    stats.cache_dir,
                    stats.entries,
                    stats.files,
                    human(stats.bytes),
                    human(stats.apparent_bytes),
                    stats.hits,
                    stats.misses
                );
                for e in &entries {
                    s.push_str(&format!(
                        "\n  {}  {} files  {}  from {}",
                        &e.manifest.key.as_str()[..16],
                        e.manifest.files,
                        human(e.manifest.bytes),
                        e.manifest.source
                    ));
                }
                s
            })
        }
        CacheCommand::Warm { project, args } => {
            let cache = open(&args, None)?;
            let inputs = KeyInputs::from_project_dir(&project)?;
            let key = inputs.key();
            let nm = project.join("node_modules");
            let mut installed = None;
            if !cache.contains(&key) && !nm.is_dir() {
                installed = Some(npm_install(&project)?);
            }
            let report = cache.populate_with(
                &key,
                &nm,
                &PopulateOptions {
                    inputs: Some(inputs),
                    parent_span: None,
                },
            )?;
            let value = serde_json::json!({ "installedWith": installed, "populate": report });
            print(args.json, &value, || {
                format!(
                    "{}{}: {:?}, {} files, {} dirs, {} symlinks, {} in {:.0} ms",
                    installed
                        .as_deref()
                        .map(|c| format!("installed with `{c}`; "))
                        .unwrap_or_default(),
                    key,
                    report.outcome,
                    report.files,
                    report.dirs,
                    report.symlinks,
                    human(report.bytes),
                    report.duration_ms
                )
            })
        }
        CacheCommand::Verify {
            evict,
            content,
            args,
        } => {
            let cache = open(&args, None)?;
            let report = if content {
                cache.verify_content(evict)?
            } else {
                cache.verify(evict)?
            };
            print(args.json, &report, || {
                let mut s = format!(
                    "checked {} entries, {} files: {} bad",
                    report.entries_checked,
                    report.files_checked,
                    report.bad.len()
                );
                for b in &report.bad {
                    s.push_str(&format!(
                        "\n  {} ({} changed files{}):",
                        b.key,
                        b.problem_count,
                        if b.evicted { ", evicted" } else { "" }
                    ));
                    for p in &b.problems {
                        s.push_str(&format!("\n    {p}"));
                    }
                }
                s
            })?;
            if !report.bad.is_empty() && !evict {
                return Err(Error::Cache(format!(
                    "{} entries changed after caching; run `vibetrees cache verify --evict`",
                    report.bad.len()
                )));
            }
            Ok(())
        }
        CacheCommand::Prune { max_size, args } => {
            let budget = parse_size(&max_size)?;
            let cache = open(&args, None)?;
            let report = cache.prune(budget)?;
            print(args.json, &report, || {
                format!(
                    "evicted {} entries ({} freed, {} left), {} busy, {} abandoned folders removed",
                    report.evicted.len(),
                    human(report.bytes_freed),
                    human(report.bytes_left),
                    report.busy.len(),
                    report.abandoned_removed
                )
            })
        }
        CacheCommand::Clear(args) => {
            let cache = open(&args, None)?;
            let report = cache.clear()?;
            print(args.json, &report, || {
                format!(
                    "removed {} entries, {} busy (being restored), {} abandoned folders removed",
                    report.evicted.len(),
                    report.busy.len(),
                    report.abandoned_removed
                )
            })
        }
        CacheCommand::Populate {
            node_modules,
            key,
            args,
        } => {
            let cache = open(&args, None)?;
            let project = node_modules
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let key = key_arg(&key, || CacheKey::from_project_dir(&project))?;
            let report = cache.populate(&key, &node_modules)?;
            print(args.json, &report, || {
                format!(
                    "{}: {:?}, {} files in {:.1} ms",
                    key, report.outcome, report.files, report.duration_ms
                )
            })
        }
        CacheCommand::Restore {
            project,
            key,
            target,
            replace,
            method,
            skip_verify,
            workers,
            args,
        } => {
            let cache = open(&args, workers)?;
            let method = RestoreMethod::parse(&method)?;
            let key = key_arg(&key, || match &project {
                Some(p) => CacheKey::from_project_dir(p),
                None => Err(Error::InvalidArgument(
                    "give a project folder or --key".into(),
                )),
            })?;
            let target = match (target, &project) {
                (Some(t), _) => t,
                (None, Some(p)) => p.join("node_modules"),
                (None, None) => {
                    return Err(Error::InvalidArgument(
                        "give a project folder or --target".into(),
                    ));
                }
            };
            let stats = cache.restore(
                &key,
                &target,
                &RestoreOptions {
                    method,
                    skip_verify,
                    workers,
                    replace,
                    ..Default::default()
                },
            )?;
            print(args.json, &stats, || {
                format!(
                    "restored {} files, {} dirs, {} symlinks into {} by {} ({} linked, {} cloned, {} copied) in {:.1} ms",
                    stats.files,
                    stats.dirs,
                    stats.symlinks,
                    stats.target,
                    stats.method_used,
                    stats.linked,
                    stats.cloned,
                    stats.copied,
                    stats.duration_ms
                )
            })
        }
        CacheCommand::Key { project, args } => {
            // Opening the cache lets the Node ABI be remembered in it across runs.
            open(&args, None)?;
            let inputs = KeyInputs::from_project_dir(&project)?;
            let key = inputs.key();
            let value = serde_json::json!({ "key": key, "inputs": inputs });
            print(args.json, &value, || key.to_string())
        }
    }
}

/// Installs a project's dependencies: `npm ci` with a lockfile, else `npm install`.
fn npm_install(project: &Path) -> Result<String> {
    let has_lock = project.join("package-lock.json").is_file()
        || project.join("npm-shrinkwrap.json").is_file();
    let args: &[&str] = if has_lock {
        &["ci", "--no-audit", "--no-fund"]
    } else {
        &["install", "--no-audit", "--no-fund"]
    };
    let out = std::process::Command::new("npm")
        .args(args)
        .current_dir(project)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Process {
            program: "npm".into(),
            message: format!("cannot start: {e}"),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(Error::Process {
            program: "npm".into(),
            message: format!("npm {} exited with {}: {tail}", args[0], out.status),
        });
    }
    Ok(format!("npm {}", args[0]))
}
