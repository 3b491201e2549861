//! `vibetrees create | remove | list | metrics | trace | demo`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vibetrees_core::progress::{ProgressEvent, ProgressSink};
use vibetrees_core::worktree::history::{self, History};
use vibetrees_core::worktree::{
    CheckoutChoice, ContainerRuntime, CreateOutcome, CreatedWorktree, RemoveOptions,
    WorktreeManager, WorktreeOptions, WorktreeSettings,
};
use vibetrees_core::{Error, Result};

#[path = "demo.rs"]
mod demo;

/// Worktree subcommands.
#[derive(clap::Subcommand)]
pub enum WorktreeCommand {
    /// Create the worktree of BRANCH (slugged) from a ref, with live progress and the profile.
    Create(CreateArgs),
    /// Remove a registered worktree: containers down, ports released, unregistered, folder
    /// deleted. Refuses a locked or dirty one, and any folder that is not a worktree of ours.
    Remove {
        /// Worktree name (its slug).
        name: String,
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
        /// Remove it even with changes (it is kept in the trash for the grace period).
        #[arg(long)]
        force: bool,
        /// Remove it even if locked with `git worktree lock`.
        #[arg(long)]
        force_locked: bool,
    },
    /// Worktrees removed with changes, kept for a grace period: list or restore them.
    #[command(subcommand)]
    Trash(TrashCommand),
    /// List the project's worktrees with their ports.
    List {
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// p50/p95 per step over the last N creations, and advice.
    Metrics {
        /// How many recent creations.
        #[arg(long, short = 'n', default_value_t = 50)]
        last: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the Chrome trace of a creation (its id, or a worktree name for its latest creation).
    Trace {
        /// Creation id or worktree name.
        creation: String,
    },
    /// Build a sample project in a temporary folder, create worktrees cold then warm, compare.
    Demo(demo::DemoArgs),
}

/// `vibetrees trash list | restore <name>`.
#[derive(clap::Subcommand)]
pub enum TrashCommand {
    /// The worktrees in the trash (JSON), oldest first.
    List {
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Bring the newest trash entry of NAME back to its folder, registered again.
    Restore {
        /// Worktree name.
        name: String,
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
    },
}

/// The project (`--repo`, also `--root`) and its worktree base (`--worktree-base`): the same
/// options for every command that finds worktrees (`create`, `remove`, `list`, `trash`), so a
/// trash made under one base is listed and restored from there.
#[derive(clap::Args)]
pub struct ProjectArgs {
    /// Project root (or any folder of the repository).
    #[arg(long, alias = "root", default_value = ".")]
    pub repo: PathBuf,
    /// Where the worktrees go (the core's `worktreeBase`; default `<root>/.worktrees`). Relative
    /// to the current folder.
    #[arg(long, value_name = "DIR")]
    pub worktree_base: Option<PathBuf>,
}

impl ProjectArgs {
    /// The settings of this project: its root, its worktree base, the rest default.
    pub fn settings(&self) -> Result<WorktreeSettings> {
        let worktree_base = match &self.worktree_base {
            Some(b) => Some(
                std::path::absolute(b)
                    .map_err(|e| Error::io_path("resolve --worktree-base", b, e))?,
            ),
            None => None,
        };
        Ok(WorktreeSettings {
            worktree_base,
            ..WorktreeSettings::new(project_root(&self.repo)?)
        })
    }
}

/// Options of `vibetrees create`.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Branch name (slugged into the worktree name).
    pub branch: String,
    /// The ref to create it from.
    #[arg(long, default_value = "main")]
    pub from: String,
    /// The project and where its worktrees go.
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Container runtime: auto, docker, podman or none.
    #[arg(long, default_value = "auto")]
    pub runtime: String,
    /// Do not use the node_modules cache.
    #[arg(long)]
    pub no_cache: bool,
    /// node_modules cache folder (default ~/.vibetrees/cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print the result as JSON (the contract's shape) instead of the profile.
    #[arg(long)]
    pub json: bool,
    /// Return at "ready" without waiting for background work (cache populate, services, push).
    #[arg(long)]
    pub no_wait: bool,
    /// The git program for what needs the git CLI (default: `git` on PATH).
    #[arg(long, value_name = "PROGRAM")]
    pub git: Option<PathBuf>,
    /// Which checkout writes the files: ours (`git2`, default) or `git worktree add` (`cli`).
    #[arg(long, value_enum)]
    pub checkout: Option<CheckoutArg>,
    /// Extra patterns of ignored files to copy (beside `.worktreeinclude`).
    #[arg(long = "include", value_name = "PATTERN")]
    pub include: Vec<String>,
    /// Write the copied ignored files by direct I/O (`O_DIRECT`), not kept in the page cache:
    /// `auto` (the default) where the disk suits it (an SSD, a VM's disk); bare: `on`
    /// (`--include-direct-io=off` for a buffered copy).
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on"
    )]
    pub include_direct_io: Option<DirectIoArg>,
    /// Run the repository's hooks without their approval (`vibetrees hooks approve`).
    #[arg(long)]
    pub trust_project_hooks: bool,
}

/// `--include-direct-io` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DirectIoArg {
    /// Where the disk suits it (the default).
    Auto,
    /// Always (where the filesystem takes it).
    On,
    /// Never: a buffered copy.
    Off,
}

impl DirectIoArg {
    /// The `includeDirectIo` setting it stands for.
    fn setting(self) -> Option<bool> {
        match self {
            DirectIoArg::Auto => None,
            DirectIoArg::On => Some(true),
            DirectIoArg::Off => Some(false),
        }
    }
}

/// `--checkout` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum CheckoutArg {
    /// Ours (libgit2 registration, our parallel checkout), the git CLI when the repo needs it.
    Git2,
    /// Always `git worktree add`.
    Cli,
}

impl From<CheckoutArg> for CheckoutChoice {
    fn from(c: CheckoutArg) -> Self {
        match c {
            CheckoutArg::Git2 => CheckoutChoice::Ours,
            CheckoutArg::Cli => CheckoutChoice::GitCli,
        }
    }
}

/// The project root (main worktree) of the repository holding `dir`, which may be a subfolder or
/// a linked worktree.
fn project_root(dir: &Path) -> Result<PathBuf> {
    let repo = git2::Repository::discover(dir)
        .map_err(|e| Error::git(format!("find a git repository at {}", dir.display()), e))?;
    let common = repo.commondir();
    match common.file_name() {
        Some(n) if n == ".git" => Ok(common.parent().unwrap_or(common).to_path_buf()),
        _ => repo.workdir().map(|w| w.to_path_buf()).ok_or_else(|| {
            Error::InvalidArgument(format!("{} is a bare repository", dir.display()))
        }),
    }
}

pub fn run(cmd: WorktreeCommand) -> Result<()> {
    match cmd {
        WorktreeCommand::Create(a) => create(a),
        WorktreeCommand::Remove {
            name,
            project,
            force,
            force_locked,
        } => {
            let m = WorktreeManager::new(project.settings()?.into())?;
            let opts = RemoveOptions {
                force,
                force_locked,
            };
            let out = vibetrees_core::runtime::block_on(async {
                let r = m.remove_worktree_with(&name, opts).await;
                m.wait_background().await;
                r
            })?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        WorktreeCommand::Trash(cmd) => {
            let project = match &cmd {
                TrashCommand::List { project } | TrashCommand::Restore { project, .. } => project,
            };
            let m = WorktreeManager::new(
                WorktreeSettings {
                    record_history: false,
                    use_cache: false,
                    ..project.settings()?
                }
                .into(),
            )?;
            let out = match &cmd {
                TrashCommand::List { .. } => serde_json::to_value(m.trash_list()?)?,
                TrashCommand::Restore { name, .. } => {
                    serde_json::to_value(vibetrees_core::runtime::block_on(m.trash_restore(name))?)?
                }
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        WorktreeCommand::List { project, json } => {
            let m = WorktreeManager::new(
                WorktreeSettings {
                    record_history: false,
                    ..project.settings()?
                }
                .into(),
            )?;
            let list = vibetrees_core::runtime::block_on(m.list_worktrees())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for w in list {
                    let ports: Vec<String> =
                        w.ports.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{:<24} {:<24} {}{}{}  {}",
                        w.name,
                        w.branch.as_deref().unwrap_or("(detached)"),
                        w.path.display(),
                        if w.missing { " [missing]" } else { "" },
                        if w.half_made { " [unfinished]" } else { "" },
                        ports.join(" ")
                    );
                }
            }
            Ok(())
        }
        WorktreeCommand::Metrics { last, json } => metrics(last, json),
        WorktreeCommand::Trace { creation } => {
            let h = History::open_default()?;
            match h.trace(&creation)? {
                Some(t) => {
                    println!("{t}");
                    Ok(())
                }
                None => Err(Error::NotFound(format!(
                    "no trace for creation {creation:?} in {}",
                    history::default_history_path().display()
                ))),
            }
        }
        WorktreeCommand::Demo(a) => demo::run(a),
    }
}

/// A progress sink that prints `  [step] message` lines to stderr.
pub fn stderr_progress() -> ProgressSink {
    Arc::new(|e: &ProgressEvent| {
        let _ = writeln!(std::io::stderr(), "  [{:<10}] {}", e.step, e.message);
    })
}

/// Pins the Node ABI for this process (`VIBETREES_NODE_ABI`, which the cache key honours) from
/// `~/.vibetrees/node-abi.json`, keyed by the `node` binary's path, size and mtime, so a one-shot
/// CLI creation does not spend a `node` start-up (~70–400 ms) computing its cache key. Must run
/// before any thread starts.
pub fn pin_node_abi() {
    if std::env::var_os("VIBETREES_NODE_ABI").is_some() {
        return;
    }
    let Some(path) = std::env::var_os("PATH") else {
        return;
    };
    let Some(node) = std::env::split_paths(&path)
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
    else {
        return;
    };
    let Ok(meta) = std::fs::metadata(&node) else {
        return;
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let id = format!("{}:{}:{}", node.display(), meta.len(), mtime);
    let file = history::vibetrees_home().join("node-abi.json");
    let cached: Option<serde_json::Value> = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let abi = match cached {
        Some(v) if v["node"] == id.as_str() && v["abi"].is_string() => {
            v["abi"].as_str().unwrap_or_default().to_string()
        }
        _ => {
            let abi = vibetrees_core::cache::node_abi().to_string();
            if abi != vibetrees_core::cache::UNKNOWN_NODE_ABI {
                let _ = std::fs::create_dir_all(history::vibetrees_home());
                let _ = std::fs::write(
                    &file,
                    serde_json::json!({ "node": id, "abi": abi }).to_string(),
                );
            }
            return;
        }
    };
    // SAFETY: called from main before the runtime or any other thread starts.
    unsafe { std::env::set_var("VIBETREES_NODE_ABI", abi) };
}

fn create(a: CreateArgs) -> Result<()> {
    pin_node_abi();
    let runtime: ContainerRuntime = a.runtime.parse()?;
    let mut settings = WorktreeSettings {
        runtime,
        use_cache: !a.no_cache,
        cache_dir: a.cache_dir,
        include: a.include,
        include_direct_io: a.include_direct_io.and_then(DirectIoArg::setting),
        trust_project_hooks: a.trust_project_hooks,
        ..a.project.settings()?
    };
    if let Some(git) = a.git {
        settings.git_program = git;
    }
    if let Some(checkout) = a.checkout {
        settings.checkout = checkout.into();
    }
    let mut opts = WorktreeOptions::from(settings);
    if !a.json {
        opts.on_progress = Some(stderr_progress());
    }
    let m = WorktreeManager::new(opts)?;
    let out = vibetrees_core::runtime::block_on(async {
        let r = m.create_worktree_optimized(&a.branch, &a.from).await;
        if !a.no_wait {
            m.wait_background().await;
        }
        r
    });
    let out = match out {
        Ok(o) => o,
        Err(e) if a.json => {
            println!("{}", vibetrees_core::worktree::failure_json(&e));
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match &out {
        CreateOutcome::Existed { name, path, .. } => {
            println!("Worktree already exists: {name} at {}", path.display());
        }
        CreateOutcome::Created(w) => print_profile(w),
    }
    Ok(())
}

/// Prints a creation's profile: steps, critical path, cache outcome.
pub fn print_profile(w: &CreatedWorktree) {
    println!();
    println!(
        "Worktree {} ready in {:.0} ms at {}",
        w.name,
        w.total_ms,
        w.path.display()
    );
    println!(
        "  {:<20} {:>9} {:>9}  status",
        "step", "start ms", "took ms"
    );
    let mut steps = w.timings.clone();
    steps.sort_by(|a, b| {
        a.start_ms
            .unwrap_or(f64::MAX)
            .total_cmp(&b.start_ms.unwrap_or(f64::MAX))
    });
    for t in &steps {
        let crit = if w.critical_path.contains(&t.name) {
            " *"
        } else {
            ""
        };
        println!(
            "  {:<20} {:>9} {:>9}  {}{}",
            t.name,
            t.start_ms.map(|v| format!("{v:.1}")).unwrap_or("-".into()),
            t.duration_ms
                .map(|v| format!("{v:.1}"))
                .unwrap_or("-".into()),
            t.status,
            crit
        );
    }
    println!("  critical path (*): {}", w.critical_path.join(" -> "));
    println!(
        "  node_modules: {}{}{}",
        w.cache.outcome,
        w.cache
            .method
            .as_deref()
            .map(|m| format!(" ({m}, {} files)", w.cache.files.unwrap_or(0)))
            .unwrap_or_default(),
        w.cache
            .install_command
            .as_deref()
            .map(|c| format!(" via `{c}`"))
            .unwrap_or_default()
    );
    if !w.ports.is_empty() {
        let ports: Vec<String> = w.ports.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  ports: {}", ports.join(" "));
    }
    if w.pool.claimed {
        println!(
            "  pool: claimed a spare worktree made {:.1} s earlier",
            w.pool.spare_age_ms.unwrap_or(0) as f64 / 1000.0
        );
    }
    if let Some(id) = w.creation_id {
        println!("  trace: vibetrees trace {id} > trace.json");
    }
}

fn metrics(last: usize, json: bool) -> Result<()> {
    let path = history::default_history_path();
    if !path.exists() {
        println!("No creations recorded yet ({}).", path.display());
        return Ok(());
    }
    let h = History::open(&path)?;
    let summaries = h.step_summaries(last)?;
    let advice = h.advice(last)?;
    let n = h.recent(last)?.len();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "creations": n, "steps": summaries, "advice": advice })
            )?
        );
        return Ok(());
    }
    println!("Last {n} creations ({})", path.display());
    println!(
        "  {:<24} {:>6} {:>10} {:>10} {:>9}",
        "step", "count", "p50 ms", "p95 ms", "critical"
    );
    for s in &summaries {
        println!(
            "  {:<24} {:>6} {:>10.1} {:>10.1} {:>9}",
            s.step, s.count, s.p50, s.p95, s.critical_count
        );
    }
    match &advice.most_critical {
        Some((step, count)) => println!(
            "Advice: `{step}` was the longest step of the critical path in {count} of {n} creations: speed it up first."
        ),
        None => println!("Advice: no critical path recorded yet."),
    }
    for (step, old, new) in &advice.regressed {
        println!(
            "Advice: `{step}` got slower: p95 {old:.1} ms -> {new:.1} ms (older vs newer half)."
        );
    }
    Ok(())
}

/// Runs a program with arguments in `dir`; fails with its stderr.
pub fn run_program(program: &str, args: &[&str], dir: &Path) -> Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Process {
            program: program.into(),
            message: format!("cannot start: {e}"),
        })?;
    if !out.status.success() {
        return Err(Error::Process {
            program: program.into(),
            message: format!(
                "{} exited with {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
