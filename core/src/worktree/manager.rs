//! [`WorktreeManager`]: `create_worktree_optimized` as one dependency graph on the optimizer, each
//! step a profiler span started as soon as its inputs are ready.
//!
//! ```text
//! read-inputs ──┬─ cache-restore ─────────────────────┐
//!               ├─ compose-services ─┬─ allocate-ports ┼─ write-env ─┬─ docker-compose-up
//!               │                    └─ pull-images ───┼─────────────┘
//! git-worktree-add ──────────────────────────────────┬─┴─ npm-bootstrap
//!                                                    └─── mcp-discovery (+ read-inputs, allocate-ports)
//! host steps: wherever their dependencies put them
//! ```
//! "Ready" is the end of that graph; then the background: cache populate (after a clean install),
//! the non-critical services, the branch push. [`WorktreeManager::wait_background`] awaits them.

use super::git::{self, Registration};
use super::history::{CreationRecord, History, StepRecord};
use super::install;
use super::options::{ContainerRuntime, HostStepInput, WorktreeOptions};
use super::outcome::{
    CacheReport, CreateOutcome, CreatedWorktree, RemoveOutcome, StepTiming, WorktreeInfo,
};
use super::slug;
use crate::cache::{CacheKey, NodeModulesCache};
use crate::optimizer::{
    GraphRun, OptimizerOptions, PerformanceOptimizer, Task, TaskError, TaskInputs,
};
use crate::profiler::{Metrics, OperationResult, Profiler};
use crate::progress::{ProgressEvent, ProgressSink};
use crate::services::compose::ComposeServices;
use crate::services::containers::{self, ComposeProject, Engine};
use crate::services::ports::PortRegistry;
use crate::{Error, Result};
use indexmap::IndexMap;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The built-in steps of a creation, in graph order. Host steps may depend on any of them.
pub const STEP_NAMES: &[&str] = &[
    "read-inputs",
    "git-worktree-add",
    "cache-restore",
    "compose-services",
    "allocate-ports",
    "pull-images",
    "write-env",
    "mcp-discovery",
    "npm-bootstrap",
    "docker-compose-up",
];

/// Name of the parent span of a creation.
pub const TOTAL_SPAN: &str = "create-worktree-total";

/// Folder (under the worktree base) of worktrees and orphans moved aside.
pub const TRASH_DIR: &str = ".trash";
/// Folder (under the worktree base) where node_modules is restored while the checkout runs.
pub const STAGING_DIR: &str = ".staging";

/// Creates, lists and removes the worktrees of one project.
#[derive(Clone)]
pub struct WorktreeManager {
    inner: Arc<Inner>,
}

struct Inner {
    opts: WorktreeOptions,
    root: PathBuf,
    base: PathBuf,
    profiler: Arc<Profiler>,
    optimizer: PerformanceOptimizer,
    cache: Option<Arc<NodeModulesCache>>,
    cache_dir: PathBuf,
    history: Option<Mutex<History>>,
    background: Mutex<Vec<(String, tokio::task::JoinHandle<()>)>>,
    creating: Mutex<std::collections::HashSet<String>>,
}

/// What the steps read from the `from` tree before any checkout.
#[derive(Debug, Clone, Default)]
struct Inputs {
    package_json: Option<Value>,
    package_json_text: Option<String>,
    lockfiles: Vec<String>,
    compose_text: Option<String>,
    cache_key: Option<CacheKey>,
    key_inputs: Option<crate::cache::KeyInputs>,
}

/// Shared state of one creation, filled by the steps (the graph orders writes before reads).
struct Ctx {
    inner: Arc<Inner>,
    name: String,
    path: PathBuf,
    from: git::ResolvedFrom,
    workers: usize,
    tracked_files: usize,
    staging: PathBuf,
    progress: Option<ProgressSink>,
    inputs: OnceLock<Inputs>,
    engine: OnceLock<Option<Engine>>,
    services: OnceLock<ComposeServices>,
    critical: OnceLock<Vec<String>>,
    ports: OnceLock<crate::services::ports::AllocatedPorts>,
    staged: Mutex<Option<(PathBuf, CacheReport)>>,
    cache: Mutex<CacheReport>,
    created_branch: Mutex<bool>,
    populate_after: Mutex<bool>,
    registered: Mutex<bool>,
    trace: Mutex<CreationTrace>,
}

/// The spans of one creation for its Chrome trace: the ready path, then the background steps,
/// which end after the creation was recorded in the history (their spans are added then).
#[derive(Default)]
struct CreationTrace {
    total: Option<OperationResult>,
    creation_id: Option<i64>,
    background: Vec<OperationResult>,
    pending: usize,
    recorded: bool,
}

impl Ctx {
    fn emit(&self, step: &str, message: impl Into<String>) {
        if let Some(p) = &self.progress {
            p(&ProgressEvent::new(&self.name, step, message));
        }
    }

    /// A background step starts: its span (a root span: the creation's total has ended).
    fn background_started(&self, step: &str) -> Option<String> {
        self.trace.lock().pending += 1;
        self.inner.profiler.start(step, None).ok()
    }

    /// A background step ends (`error` when it failed); the last one to end records them all in
    /// the history with the creation's full trace.
    fn background_finished(&self, span: Option<String>, error: Option<&str>) {
        let result = span.and_then(|s| match error {
            None => self.inner.profiler.end(&s).ok(),
            Some(e) => self.inner.profiler.end_failed(&s, e).ok(),
        });
        let mut t = self.trace.lock();
        t.pending -= 1;
        t.background.extend(result);
        self.record_background(&mut t);
    }

    /// The creation is in the history: background steps can be added to it when they end.
    fn recorded(&self, total: &OperationResult, creation_id: Option<i64>) {
        let mut t = self.trace.lock();
        t.total = Some(total.clone());
        t.creation_id = creation_id;
        self.record_background(&mut t);
    }

    fn record_background(&self, t: &mut CreationTrace) {
        if t.pending > 0 || t.recorded || t.background.is_empty() {
            return;
        }
        let (Some(id), Some(total), Some(h)) =
            (t.creation_id, t.total.as_ref(), self.inner.history.as_ref())
        else {
            return;
        };
        t.recorded = true;
        let steps: Vec<StepRecord> = t
            .background
            .iter()
            .map(|r| StepRecord {
                step: r.name.clone(),
                duration_ms: r.duration,
                critical: false,
            })
            .collect();
        let trace = chrome_trace_with_background(total, &t.background);
        if let Err(e) = h.lock().record_background(id, &steps, &trace) {
            tracing::warn!("history: background steps of creation {id}: {e}");
        }
    }
}

fn terr(e: Error) -> TaskError {
    TaskError::with_code(e.code(), e.full_message())
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos}-{}", std::process::id())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking step panicked: {e}")))?
}

impl WorktreeManager {
    /// A manager for the project at `opts.root_dir` (must be a git repository's main worktree).
    pub fn new(opts: WorktreeOptions) -> Result<Self> {
        let root = std::fs::canonicalize(&opts.root_dir)
            .map_err(|e| Error::io_path("open project root", &opts.root_dir, e))?;
        git::open(&root)?;
        let base = opts
            .worktree_base
            .clone()
            .unwrap_or_else(|| root.join(".worktrees"));
        // the cache key asks `node` for its ABI once per process: ask now, not in the first creation
        std::thread::spawn(|| {
            crate::cache::node_abi();
        });
        let profiler = Arc::new(Profiler::new());
        let optimizer = PerformanceOptimizer::new(OptimizerOptions {
            profiler: Some(profiler.clone()),
            ..Default::default()
        })?;
        let cache_dir = match &opts.cache_dir {
            Some(d) => d.clone(),
            None => crate::cache::default_cache_dir()?,
        };
        let cache = if opts.use_cache {
            Some(Arc::new(NodeModulesCache::open(
                crate::cache::CacheOptions {
                    cache_dir: Some(cache_dir.clone()),
                    // no profiler: the cache's own spans would be roots named like the
                    // creation's steps (`cache-restore`) and count twice in the metrics
                    ..Default::default()
                },
            )?))
        } else {
            None
        };
        let history = if opts.record_history {
            let path = opts
                .history_path
                .clone()
                .unwrap_or_else(super::history::default_history_path);
            Some(Mutex::new(History::open(&path)?))
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(Inner {
                opts,
                root,
                base,
                profiler,
                optimizer,
                cache,
                cache_dir,
                history,
                background: Mutex::new(Vec::new()),
                creating: Mutex::new(Default::default()),
            }),
        })
    }

    /// The project root (canonical).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The folder worktrees are made in.
    pub fn worktree_base(&self) -> &Path {
        &self.inner.base
    }

    /// The profiler every creation's spans go into.
    pub fn profiler(&self) -> Arc<Profiler> {
        self.inner.profiler.clone()
    }

    /// The contract's metrics (`GET /api/performance/metrics`).
    pub fn get_performance_metrics(&self) -> Metrics {
        self.inner.profiler.metrics()
    }

    /// The node_modules cache, when enabled.
    pub fn cache(&self) -> Option<&NodeModulesCache> {
        self.inner.cache.as_deref()
    }

    /// Waits for every background job started so far (cache populate, services, push, warm-up,
    /// trash deletion) — the "settled" point of the creations made so far.
    pub async fn wait_background(&self) {
        loop {
            let jobs: Vec<_> = std::mem::take(&mut *self.inner.background.lock());
            if jobs.is_empty() {
                return;
            }
            for (_, j) in jobs {
                let _ = j.await;
            }
        }
    }

    /// Names of the background jobs still running.
    pub fn background_jobs(&self) -> Vec<String> {
        self.inner
            .background
            .lock()
            .iter()
            .filter(|(_, j)| !j.is_finished())
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn spawn_background<F>(&self, name: String, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let h = tokio::spawn(fut);
        let mut bg = self.inner.background.lock();
        bg.retain(|(_, j)| !j.is_finished());
        bg.push((name, h));
    }

    /// Moves `folder` into the trash (`<base>/.trash/<prefix>-<time>-<pid>`) and returns where.
    fn move_to_trash(&self, folder: &Path, prefix: &str) -> Result<PathBuf> {
        let trash = self.inner.base.join(TRASH_DIR);
        std::fs::create_dir_all(&trash)
            .map_err(|e| Error::io_path("create directory", &trash, e))?;
        let dest = trash.join(format!("{prefix}-{}", unique_suffix()));
        std::fs::rename(folder, &dest).map_err(|e| Error::io_path("move to trash", folder, e))?;
        Ok(dest)
    }

    /// Moves `folder` into the trash under a name marked for deletion
    /// (`.trash/.delete-<label>-<time>-<pid>`) and deletes it in the background. A deletion cut
    /// short (the process killed) is finished by a later creation ([`Self::clear_dead_deletions`]).
    fn trash_and_delete(&self, folder: &Path, label: &str) -> Result<PathBuf> {
        let t = self.move_to_trash(folder, &format!(".delete-{label}"))?;
        self.delete_in_background(t.clone());
        Ok(t)
    }

    /// Deletes, in the background, trash entries marked for deletion by processes now dead.
    /// Orphans moved aside (never marked) are kept.
    fn clear_dead_deletions(&self) {
        let Ok(rd) = std::fs::read_dir(self.inner.base.join(TRASH_DIR)) else {
            return;
        };
        for e in rd.flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            if !fname.starts_with(".delete-") {
                continue;
            }
            let pid = fname.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && pid != std::process::id()
                && !crate::process::alive(pid)
            {
                self.delete_in_background(e.path());
            }
        }
    }

    fn delete_in_background(&self, folder: PathBuf) {
        self.spawn_background(format!("delete {}", folder.display()), async move {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&folder)).await;
        });
    }

    /// Creates the worktree of `branch` (slugged) from the ref `from`, as one dependency graph.
    ///
    /// Returns when the worktree is usable ("ready"); background work goes on
    /// ([`WorktreeManager::wait_background`]). Bad names and unknown refs fail before anything is
    /// touched. An existing complete worktree returns [`CreateOutcome::Existed`] unchanged.
    pub async fn create_worktree_optimized(
        &self,
        branch: &str,
        from: &str,
    ) -> Result<CreateOutcome> {
        let progress = self.inner.opts.on_progress.clone();
        let res = self.create_inner(branch, from, progress.clone()).await;
        if let Err(e) = &res
            && let Some(p) = &progress
        {
            let name = slug::slugify(branch);
            p(&ProgressEvent::new(name, "error", e.full_message()));
        }
        res
    }

    async fn create_inner(
        &self,
        branch: &str,
        from: &str,
        progress: Option<ProgressSink>,
    ) -> Result<CreateOutcome> {
        let name = slug::worktree_name(branch)?;
        slug::validate_from(from)?;
        // one creation of a name at a time in this process (other processes: the git lock)
        if !self.inner.creating.lock().insert(name.clone()) {
            return Err(Error::Lock(format!(
                "worktree {name:?} is being created by this process"
            )));
        }
        struct Release<'a>(&'a Inner, String);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.creating.lock().remove(&self.1);
            }
        }
        let _release = Release(&self.inner, name.clone());
        let path = self.inner.base.join(&name);
        let started_at = now_unix_ms();

        // Everything that can refuse runs first; then debris of earlier attempts is cleared.
        let this = self.clone();
        let (n2, p2, f2) = (name.clone(), path.clone(), from.to_string());
        let prepared = blocking(move || this.prepare(&n2, &p2, &f2)).await?;
        let (resolved, workers, tracked_files) = match prepared {
            Prepared::Existed { branch } => {
                return Ok(CreateOutcome::Existed { name, path, branch });
            }
            Prepared::Go {
                from,
                workers,
                tracked_files,
            } => (from, workers, tracked_files),
        };

        let total = self.inner.profiler.start(TOTAL_SPAN, None)?;
        let staging = self
            .inner
            .base
            .join(STAGING_DIR)
            .join(format!("{name}.{}", unique_suffix()));
        let ctx = Arc::new(Ctx {
            inner: self.inner.clone(),
            name: name.clone(),
            path: path.clone(),
            from: resolved,
            workers,
            tracked_files,
            staging,
            progress,
            inputs: OnceLock::new(),
            engine: OnceLock::new(),
            services: OnceLock::new(),
            critical: OnceLock::new(),
            ports: OnceLock::new(),
            staged: Mutex::new(None),
            cache: Mutex::new(CacheReport::default()),
            created_branch: Mutex::new(false),
            populate_after: Mutex::new(false),
            registered: Mutex::new(false),
            trace: Mutex::new(CreationTrace::default()),
        });
        let tasks = build_tasks(&ctx, &self.inner.opts);
        let run = self
            .inner
            .optimizer
            .with_parent_span(total.clone())
            .run_graph(tasks)
            .await;
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                let _ = self.inner.profiler.end_failed(&total, &e.to_string());
                self.roll_back(&ctx).await;
                return Err(e);
            }
        };
        if let Some(err) = run.error() {
            let _ = self.inner.profiler.end_failed(&total, &err.to_string());
            self.roll_back(&ctx).await;
            return Err(err);
        }
        // Ready: the worktree is no longer "being created".
        {
            let root = self.inner.root.clone();
            let p = path.clone();
            if let Err(e) = blocking(move || git::unlock_at(&git::open(&root)?, &p)).await {
                let _ = self.inner.profiler.end_failed(&total, &e.to_string());
                self.roll_back(&ctx).await;
                return Err(e);
            }
        }
        let _ = std::fs::remove_dir_all(&ctx.staging);
        let total_result = self.inner.profiler.end(&total)?;
        ctx.emit(
            "complete",
            format!(
                "✓ Worktree {} ready in {:.0} ms",
                name, total_result.duration
            ),
        );

        let background = self.start_background(&ctx);
        let outcome = self.finish_outcome(&ctx, &run, &total_result, started_at, background);
        Ok(CreateOutcome::Created(Box::new(outcome)))
    }

    fn prepare(&self, name: &str, path: &Path, from: &str) -> Result<Prepared> {
        let repo = git::open(&self.inner.root)?;
        let resolved = git::resolve_from(&repo, from)?;
        let reg = git::registration_at(&repo, path)?;
        let folder_exists = std::fs::symlink_metadata(path).is_ok();
        let mut reg = reg;
        if let Some(r) = &reg
            && r.half_made()
        {
            let pid = r.lock.as_deref().and_then(git::creating_pid);
            if let Some(pid) = pid
                && pid != std::process::id()
                && crate::process::alive(pid)
            {
                return Err(Error::Lock(format!(
                    "worktree {name:?} is being created by process {pid}"
                )));
            }
            if pid == Some(std::process::id()) {
                return Err(Error::Lock(format!(
                    "worktree {name:?} is being created by this process"
                )));
            }
            // Debris of a creation killed half-way: what is left of its install is stopped, its
            // folder goes (in the background), its registration is removed.
            install::stop_leftover_installs(path);
            if folder_exists {
                self.trash_and_delete(path, &format!("{name}-unfinished"))?;
            }
            git::prune_registration(&repo, &r.name)?;
            reg = None;
        }
        let folder_exists = std::fs::symlink_metadata(path).is_ok();
        match (&reg, folder_exists) {
            (Some(r), true) => {
                if !git::branch_exists(&repo, name) || r.branch.as_deref() != Some(name) {
                    return Err(Error::AlreadyExists(format!(
                        "worktree folder {} is registered with branch {:?}, not {name:?}",
                        path.display(),
                        r.branch
                    )));
                }
                return Ok(Prepared::Existed {
                    branch: name.to_string(),
                });
            }
            (Some(r), false) => {
                // stale registration
                git::prune_registration(&repo, &r.name)?;
            }
            (None, true) => {
                if is_unused_registration_folder(path) {
                    // what a creation killed inside libgit2's worktree add leaves: the folder it
                    // made, empty but for a `.git` file; no content of anyone's
                    let _ = std::fs::remove_file(path.join(".git"));
                    std::fs::remove_dir(path)
                        .map_err(|e| Error::io_path("remove empty folder", path, e))?;
                } else {
                    // orphan folder: moved aside, never deleted
                    self.move_to_trash(path, name)?;
                }
            }
            (None, false) => {}
        }
        self.clear_dead_staging(name);
        self.clear_dead_deletions();
        let files = repo.index().map(|i| i.len()).unwrap_or(0);
        let workers = if files >= git::PARALLEL_CHECKOUT_FROM_FILES {
            2
        } else {
            1
        };
        Ok(Prepared::Go {
            from: resolved,
            workers,
            tracked_files: files,
        })
    }

    /// Removes staging folders of `name` left by dead processes.
    fn clear_dead_staging(&self, name: &str) {
        let dir = self.inner.base.join(STAGING_DIR);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in rd.flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = fname.strip_prefix(&format!("{name}.")) else {
                continue;
            };
            let pid = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && pid != std::process::id()
                && !crate::process::alive(pid)
            {
                self.delete_in_background(e.path());
            }
        }
    }

    async fn roll_back(&self, ctx: &Arc<Ctx>) {
        let this = self.clone();
        let ctx = ctx.clone();
        let _ = blocking(move || {
            let _ = std::fs::remove_dir_all(&ctx.staging);
            if let Ok(reg) = PortRegistry::for_project(&this.inner.root) {
                let _ = reg.release(&ctx.name);
            }
            // Also when the step failed after registering (`git worktree add` whose hook
            // failed): a half-made registration at this path with this process's pid is ours,
            // since one process creates a name once at a time.
            let repo = git::open(&this.inner.root)?;
            if let Some(r) = git::registration_at(&repo, &ctx.path)?
                && r.half_made()
                && (*ctx.registered.lock()
                    || r.lock.as_deref().and_then(git::creating_pid) == Some(std::process::id()))
            {
                if std::fs::symlink_metadata(&ctx.path).is_ok() {
                    this.trash_and_delete(&ctx.path, &format!("{}-failed", ctx.name))?;
                }
                git::prune_registration(&repo, &r.name)?;
            }
            Ok(())
        })
        .await;
    }

    fn start_background(&self, ctx: &Arc<Ctx>) -> Vec<String> {
        let mut names = Vec::new();
        // cache populate after a clean install
        if *ctx.populate_after.lock()
            && let (Some(cache), Some(key)) = (
                ctx.inner.cache.clone(),
                ctx.inputs.get().and_then(|i| i.cache_key.clone()),
            )
        {
            let src = ctx.path.join("node_modules");
            let c2 = ctx.clone();
            let popts = crate::cache::PopulateOptions {
                inputs: ctx.inputs.get().and_then(|i| i.key_inputs.clone()),
                ..Default::default()
            };
            names.push("cache-populate".to_string());
            let span = ctx.background_started("cache-populate");
            self.spawn_background("cache-populate".into(), async move {
                let r =
                    tokio::task::spawn_blocking(move || cache.populate_with(&key, &src, &popts))
                        .await;
                let error = match &r {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(e.to_string()),
                };
                c2.background_finished(span, error.as_deref());
                match r {
                    Ok(Ok(rep)) => c2.emit(
                        "cache",
                        format!(
                            "✓ node_modules cached ({} files, {:.0} ms)",
                            rep.files, rep.duration_ms
                        ),
                    ),
                    Ok(Err(e)) => c2.emit(
                        "cache",
                        format!("cache populate failed: {}", e.full_message()),
                    ),
                    Err(e) => c2.emit("cache", format!("cache populate failed: {e}")),
                }
            });
        }
        // the non-critical services
        if let (Some(Some(engine)), Some(services)) = (ctx.engine.get(), ctx.services.get()) {
            let critical = ctx.critical.get().cloned().unwrap_or_default();
            let (_, rest) = containers::split_critical(&services.service_names(), &critical);
            if !rest.is_empty() {
                let engine = engine.clone();
                let c2 = ctx.clone();
                names.push("docker-compose-up-rest".to_string());
                let span = ctx.background_started("docker-compose-up-rest");
                self.spawn_background("docker-compose-up-rest".into(), async move {
                    let project = ComposeProject::for_worktree(
                        &c2.path,
                        Path::new(&compose_file(&c2.inner.opts)),
                    );
                    c2.emit(
                        "containers",
                        format!("Starting services: {}", rest.join(", ")),
                    );
                    let out = engine
                        .up(&project, &rest, None, Duration::from_secs(600))
                        .await;
                    c2.emit("containers", out.message.clone());
                    c2.background_finished(span, (!out.ok).then_some(out.message.as_str()));
                });
            }
        }
        // branch push
        if ctx.inner.opts.push_branch {
            let c2 = ctx.clone();
            names.push("git-push".to_string());
            let span = ctx.background_started("git-push");
            self.spawn_background("git-push".into(), async move {
                let mut cmd = tokio::process::Command::new(git::git_program());
                cmd.current_dir(&c2.path)
                    .args(["push", "--set-upstream", "origin", "--"])
                    .arg(&c2.name)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true);
                let r = tokio::time::timeout(c2.inner.opts.push_timeout, git::run_git(cmd, "push"))
                    .await;
                let error = match r {
                    Ok(Ok(())) => {
                        c2.emit("git", format!("✓ Branch {} pushed", c2.name));
                        None
                    }
                    Ok(Err(e)) => {
                        let m = format!("push failed: {}", e.full_message());
                        c2.emit("git", m.clone());
                        Some(m)
                    }
                    Err(_) => {
                        c2.emit("git", "push timed out");
                        Some("push timed out".to_string())
                    }
                };
                c2.background_finished(span, error.as_deref());
            });
        }
        names
    }

    fn finish_outcome(
        &self,
        ctx: &Arc<Ctx>,
        run: &GraphRun<Value>,
        total: &OperationResult,
        started_at: i64,
        background: Vec<String>,
    ) -> CreatedWorktree {
        let timings: Vec<StepTiming> = run
            .outcomes()
            .iter()
            .map(|o| StepTiming {
                name: o.name.clone(),
                status: o.status.as_str().to_string(),
                start_ms: o.start_ms,
                duration_ms: o.duration_ms,
                error: o.error.as_ref().map(|e| e.message.clone()),
            })
            .collect();
        let critical_path: Vec<String> =
            run.critical_path().iter().map(|s| s.to_string()).collect();
        let mut steps = serde_json::Map::new();
        for (n, v) in run.results() {
            steps.insert(n.to_string(), (**v).clone());
        }
        let cache = ctx.cache.lock().clone();
        let mut creation_id = None;
        if let Some(h) = &self.inner.history {
            let rec = CreationRecord {
                id: 0,
                name: ctx.name.clone(),
                repo: self.inner.root.display().to_string(),
                started_at_ms: started_at,
                ready_ms: total.duration,
                cache_outcome: cache.outcome.clone(),
                critical_path: critical_path.clone(),
                steps: std::iter::once(StepRecord {
                    step: TOTAL_SPAN.to_string(),
                    duration_ms: total.duration,
                    critical: false,
                })
                .chain(run.outcomes().iter().filter_map(|o| {
                    o.duration_ms.map(|d| StepRecord {
                        step: o.name.clone(),
                        duration_ms: d,
                        critical: critical_path.contains(&o.name),
                    })
                }))
                .collect(),
            };
            let trace = chrome_trace(total);
            creation_id = h.lock().record(&rec, Some(&trace)).ok();
        }
        ctx.recorded(total, creation_id);
        CreatedWorktree {
            name: ctx.name.clone(),
            path: ctx.path.clone(),
            branch: ctx.name.clone(),
            from: ctx.from.ref_name.clone(),
            created_branch: *ctx.created_branch.lock(),
            ports: ctx.ports.get().map(|p| p.to_map()).unwrap_or_default(),
            docker_status: Vec::new(),
            total_ms: total.duration,
            timings,
            critical_path,
            cache,
            steps,
            background,
            creation_id,
        }
    }

    /// Stops the worktree's containers, releases its ports, unregisters it and moves its folder to
    /// the trash, deleted in the background, so this returns at once. The branch is kept.
    pub async fn remove_worktree(&self, name: &str) -> Result<RemoveOutcome> {
        slug::validate_slug(name, name)?;
        let path = self.inner.base.join(name);
        let this = self.clone();
        let p2 = path.clone();
        let reg: Option<Registration> =
            blocking(move || git::registration_at(&git::open(&this.inner.root)?, &p2)).await?;
        let folder_exists = std::fs::symlink_metadata(&path).is_ok();
        if reg.is_none() && !folder_exists {
            return Err(Error::NotFound(format!(
                "worktree {name:?} ({})",
                path.display()
            )));
        }
        // containers down
        let mut containers_msg = "no containers".to_string();
        let file = compose_file(&self.inner.opts);
        if folder_exists && path.join(&file).is_file() {
            match containers::detect(self.inner.opts.runtime, &Default::default()).await {
                Ok(Some(engine)) => {
                    let project = ComposeProject::for_worktree(&path, Path::new(&file));
                    let out = engine
                        .down(
                            &project,
                            false,
                            Some(Duration::from_secs(2)),
                            None,
                            Duration::from_secs(120),
                        )
                        .await;
                    containers_msg = out.message;
                }
                Ok(None) => containers_msg = "no container runtime".into(),
                Err(e) => containers_msg = e.full_message(),
            }
        }
        let this = self.clone();
        let n2 = name.to_string();
        let p2 = path.clone();
        let (released, trashed) = blocking(move || {
            let released = PortRegistry::for_project(&this.inner.root)?.release(&n2)?;
            let trashed = if std::fs::symlink_metadata(&p2).is_ok() {
                Some(this.move_to_trash(&p2, &format!(".delete-{n2}-removed"))?)
            } else {
                None
            };
            let repo = git::open(&this.inner.root)?;
            if let Some(r) = git::registration_at(&repo, &p2)? {
                git::prune_registration(&repo, &r.name)?;
            }
            Ok((released, trashed))
        })
        .await?;
        if let Some(t) = &trashed {
            self.delete_in_background(t.clone());
        }
        Ok(RemoveOutcome {
            success: true,
            name: name.to_string(),
            released_ports: released.into_iter().collect(),
            trashed_to: trashed,
            containers: containers_msg,
        })
    }

    /// The project's worktrees: the main one, then every registered one, with their ports.
    pub async fn list_worktrees(&self) -> Result<Vec<WorktreeInfo>> {
        let this = self.clone();
        blocking(move || {
            let repo = git::open(&this.inner.root)?;
            let registry = PortRegistry::for_project(&this.inner.root)?;
            let main_branch = repo
                .head()
                .ok()
                .and_then(|h| h.shorthand().ok().map(|s| s.to_string()));
            let mut out = vec![WorktreeInfo {
                name: this
                    .inner
                    .root
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path: this.inner.root.clone(),
                branch: main_branch,
                ports: IndexMap::new(),
                is_main: true,
                missing: false,
                half_made: false,
            }];
            for r in git::registrations(&repo)? {
                out.push(WorktreeInfo {
                    ports: registry.worktree_ports(&r.name).unwrap_or_default(),
                    half_made: r.half_made(),
                    missing: !r.folder_exists,
                    name: r.name,
                    path: r.path,
                    branch: r.branch,
                    is_main: false,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Warm-up for a server's start, in the background: populates the cache from the main
    /// worktree's node_modules (if its key is not cached yet) and pre-pulls the compose file's
    /// images. Returns the names of the jobs started; [`WorktreeManager::wait_background`] awaits them.
    ///
    /// First, at once: stops what is left running of the installs of creations that died
    /// (see [`WorktreeManager::stop_installs_of_dead_creations`]).
    pub async fn warm(&self) -> Result<Vec<String>> {
        let this = self.clone();
        let stopped = blocking(move || Ok(this.stop_installs_of_dead_creations())).await?;
        if stopped > 0
            && let Some(p) = &self.inner.opts.on_progress
        {
            p(&ProgressEvent::new(
                "",
                "install",
                format!("stopped {stopped} install process(es) left by creations that died"),
            ));
        }
        let mut jobs = Vec::new();
        let root = self.inner.root.clone();
        if let Some(cache) = self.inner.cache.clone()
            && root.join("node_modules").is_dir()
            && root.join("package.json").is_file()
        {
            let inputs = crate::cache::KeyInputs::from_project_dir(&root)?;
            let key = inputs.key();
            let popts = crate::cache::PopulateOptions {
                inputs: Some(inputs),
                ..Default::default()
            };
            if !cache.contains(&key) {
                jobs.push("cache-populate".to_string());
                let sink = self.inner.opts.on_progress.clone();
                self.spawn_background("warm-cache".into(), async move {
                    let src = root.join("node_modules");
                    let r = tokio::task::spawn_blocking(move || {
                        cache.populate_with(&key, &src, &popts)
                    })
                    .await;
                    if let Some(p) = sink {
                        let msg = match r {
                            Ok(Ok(rep)) => format!("✓ cache warmed ({} files)", rep.files),
                            Ok(Err(e)) => format!("cache warm-up failed: {}", e.full_message()),
                            Err(e) => format!("cache warm-up failed: {e}"),
                        };
                        p(&ProgressEvent::new("", "cache", msg));
                    }
                });
            }
        }
        let file = self.inner.root.join(compose_file(&self.inner.opts));
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(Some(engine)) =
                containers::detect(self.inner.opts.runtime, &Default::default()).await
        {
            let cache_dir = self.inner.cache_dir.clone();
            jobs.push("pull-images".to_string());
            self.spawn_background("warm-images".into(), async move {
                if let Ok(s) = crate::services::compose::load_services(
                    Some(&text),
                    Some(&file),
                    Some(&engine),
                    Some(&cache_dir),
                )
                .await
                {
                    engine.pull_images(&s.images(), None).await;
                }
            });
        }
        Ok(jobs)
    }
}

impl WorktreeManager {
    /// Kills the processes still installing into a worktree whose creation died (its registration
    /// locked `vibetrees: creating (pid N)` with N gone): the scripts a package manager started
    /// outlive it (see [`install::stop_leftover_installs`]). Folders and registrations stay as
    /// they are (`list` shows them half-made; creating or removing the worktree clears them).
    /// Without this, they were stopped only when the same worktree was created again. Returns
    /// how many processes were killed.
    pub fn stop_installs_of_dead_creations(&self) -> usize {
        let Ok(repo) = git::open(&self.inner.root) else {
            return 0;
        };
        let Ok(registrations) = git::registrations(&repo) else {
            return 0;
        };
        let me = std::process::id();
        registrations
            .iter()
            .filter(|r| r.half_made())
            .filter(|r| {
                r.lock
                    .as_deref()
                    .and_then(git::creating_pid)
                    .is_some_and(|pid| pid != me && !crate::process::alive(pid))
            })
            .map(|r| {
                // the install's mark holds the folder as this manager names it, which may not be
                // the canonical path git records
                let mut n = install::stop_leftover_installs(&r.path);
                if let Some(folder) = r.path.file_name() {
                    let ours = self.inner.base.join(folder);
                    if ours != r.path {
                        n += install::stop_leftover_installs(&ours);
                    }
                }
                n
            })
            .sum()
    }
}

enum Prepared {
    Existed {
        branch: String,
    },
    Go {
        from: git::ResolvedFrom,
        workers: usize,
        tracked_files: usize,
    },
}

/// Checkout cost per tracked file, µs, measured here: the git CLI's (4,003 files in ~270 ms) and
/// ours with 2 threads (~26 µs a file).
fn checkout_us_per_file(method: super::checkout::CheckoutMethod) -> usize {
    match method {
        super::checkout::CheckoutMethod::GitCli => 65,
        super::checkout::CheckoutMethod::Git2Parallel => 26,
    }
}
/// Restore cost per node_modules file and worker, µs (measured here: 12,969 files in ~95 ms with
/// two workers).
const RESTORE_US_PER_FILE_PER_WORKER: usize = 15;

/// Workers of a restore that runs beside a checkout: one, when one is enough to finish before the
/// checkout (so the checkout keeps a core of its own on a 2-core machine); else the cache's default.
fn restore_workers_beside_checkout(
    method: super::checkout::CheckoutMethod,
    tracked_files: usize,
    entry_files: u64,
) -> Option<usize> {
    let checkout_us = tracked_files * checkout_us_per_file(method);
    let restore_one_worker_us = entry_files as usize * RESTORE_US_PER_FILE_PER_WORKER;
    (restore_one_worker_us < checkout_us).then_some(1)
}

/// True if `path` is a real folder holding nothing, or nothing but a `.git` file (not a folder):
/// what a worktree registration leaves before any checkout.
fn is_unused_registration_folder(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let Ok(rd) = std::fs::read_dir(path) else {
        return false;
    };
    rd.flatten()
        .all(|e| e.file_name() == ".git" && e.file_type().is_ok_and(|t| t.is_file()))
}

fn compose_file(opts: &WorktreeOptions) -> String {
    opts.compose_file
        .clone()
        .unwrap_or_else(|| crate::services::compose::DEFAULT_COMPOSE_FILE.to_string())
}

/// A Chrome trace (Trace Event Format) of one creation: its total span and its children.
pub fn chrome_trace(total: &OperationResult) -> String {
    chrome_trace_with_background(total, &[])
}

/// A Chrome trace of one creation with its background steps (cache populate, services, push),
/// which run after "ready": each on its own track, marked `"background": true`, and an instant
/// event `ready` where the creation returned.
pub fn chrome_trace_with_background(
    total: &OperationResult,
    background: &[OperationResult],
) -> String {
    fn walk(r: &OperationResult, bg: bool, tid: &mut u64, out: &mut Vec<Value>) {
        *tid += 1;
        out.push(json!({
            "name": r.name, "cat": if bg { "vibetrees,background" } else { "vibetrees" }, "ph": "X",
            "ts": r.start_time * 1000.0, "dur": r.duration * 1000.0,
            "pid": 1, "tid": *tid,
            "args": { "id": r.id, "failed": r.failed, "error": r.error, "background": bg },
        }));
        for c in &r.children {
            walk(c, bg, tid, out);
        }
    }
    let mut events = Vec::new();
    let mut tid = 0;
    walk(total, false, &mut tid, &mut events);
    if !background.is_empty() {
        events.push(json!({
            "name": "ready", "cat": "vibetrees", "ph": "i", "s": "p",
            "ts": total.end_time * 1000.0, "pid": 1, "tid": 1,
        }));
    }
    for b in background {
        walk(b, true, &mut tid, &mut events);
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" }).to_string()
}

/// The newest cache entry of the same project (populated from a folder under `root`) for the
/// same Node ABI, platform, architecture and lockfile names, with other dependencies.
fn near_entry(
    cache: &NodeModulesCache,
    root: &Path,
    inputs: &crate::cache::KeyInputs,
) -> Option<CacheKey> {
    let root = root.to_string_lossy();
    cache
        .entries()
        .ok()?
        .into_iter()
        .filter(|e| e.manifest.source.starts_with(root.as_ref()))
        .filter(|e| {
            e.manifest.inputs.as_ref().is_some_and(|i| {
                i.node_abi == inputs.node_abi
                    && i.platform == inputs.platform
                    && i.arch == inputs.arch
                    && i.lockfiles
                        .iter()
                        .map(|l| &l.name)
                        .eq(inputs.lockfiles.iter().map(|l| &l.name))
            })
        })
        .max_by_key(|e| e.manifest.created_ms)
        .map(|e| e.manifest.key)
}

fn inputs_of(ctx: &Ctx) -> Result<&Inputs, TaskError> {
    ctx.inputs
        .get()
        .ok_or_else(|| TaskError::new("inputs were not read"))
}

fn build_tasks(ctx: &Arc<Ctx>, opts: &WorktreeOptions) -> Vec<Task<Value>> {
    let mut tasks = Vec::new();

    // read-inputs: package.json, lockfiles, compose text and cache key from the `from` tree.
    let c = ctx.clone();
    tasks.push(Task::blocking("read-inputs", &[], move |_| {
        let repo = git::open(&c.inner.root).map_err(terr)?;
        let tree_id = c.from.tree;
        let package_json_text = git::read_blob(&repo, tree_id, "package.json")
            .map_err(terr)?
            .and_then(|b| String::from_utf8(b).ok());
        let package_json = package_json_text
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        let mut lockfiles = Vec::new();
        for l in install::LOCKFILES {
            if git::read_blob(&repo, tree_id, l).map_err(terr)?.is_some() {
                lockfiles.push(l.to_string());
            }
        }
        let compose_text = git::read_blob(&repo, tree_id, &compose_file(&c.inner.opts))
            .map_err(terr)?
            .and_then(|b| String::from_utf8(b).ok());
        let key_inputs = if package_json.is_some() {
            let tree = repo
                .find_tree(tree_id)
                .map_err(|e| terr(Error::git("tree", e)))?;
            Some(
                crate::cache::KeyInputs::from_git_tree(&repo, &tree, Path::new(""))
                    .map_err(terr)?,
            )
        } else {
            None
        };
        let cache_key = key_inputs.as_ref().map(|i| i.key());
        let summary = json!({
            "packageJson": package_json.is_some(),
            "lockfiles": lockfiles,
            "composeFile": compose_text.is_some(),
            "cacheKey": cache_key.as_ref().map(|k| k.as_str().to_string()),
        });
        let _ = c.inputs.set(Inputs {
            package_json,
            package_json_text,
            lockfiles,
            compose_text,
            cache_key,
            key_inputs,
        });
        Ok(summary)
    }));

    // git-worktree-add: branch (git2), then registration + checkout (git CLI).
    let c = ctx.clone();
    tasks.push(Task::new("git-worktree-add", &[], move |_| {
        let c = c.clone();
        async move {
            c.emit("git", format!("Creating worktree {} from {}", c.name, c.from.ref_name));
            let (root, name, commit) = (c.inner.root.clone(), c.name.clone(), c.from.commit);
            let (_, created) = blocking(move || git::ensure_branch(&git::open(&root)?, &name, commit))
                .await
                .map_err(terr)?;
            *c.created_branch.lock() = created;
            if let Some(parent) = c.path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| terr(Error::io_path("create directory", parent, e)))?;
            }
            let added = git::add_worktree(&c.inner.root, &c.path, &c.name, c.workers)
                .await
                .map_err(terr)?;
            *c.registered.lock() = true;
            c.emit("git", format!("✓ Worktree created at {}", c.path.display()));
            Ok(json!({ "path": c.path, "branch": c.name, "createdBranch": created, "checkoutWorkers": added.workers,
                "checkout": added.method.as_str(), "checkoutCliBecause": added.cli_because,
                "checkoutPhasesMs": added.phases.iter().map(|(n, ms)| (n.to_string(), json!((ms * 100.0).round() / 100.0))).collect::<serde_json::Map<_, _>>() }))
        }
    }));

    // cache-restore: node_modules restored beside the worktree while the checkout runs.
    let c = ctx.clone();
    tasks.push(Task::blocking(
        "cache-restore",
        &["read-inputs"],
        move |_| {
            let inputs = inputs_of(&c)?;
            let Some(key) = inputs.cache_key.clone() else {
                *c.cache.lock() = CacheReport {
                    outcome: "none".into(),
                    ..Default::default()
                };
                return Ok(json!({ "outcome": "none" }));
            };
            let Some(cache) = c.inner.cache.clone() else {
                *c.cache.lock() = CacheReport {
                    outcome: "disabled".into(),
                    key: Some(key.as_str().into()),
                    ..Default::default()
                };
                return Ok(json!({ "outcome": "disabled" }));
            };
            let mut outcome = "hit";
            let mut restore_key = key.clone();
            if !cache.contains(&key) {
                let near = install::incremental_install(&inputs.lockfiles)
                    .and(inputs.key_inputs.as_ref())
                    .and_then(|ki| near_entry(&cache, &c.inner.root, ki));
                match near {
                    Some(k) => {
                        outcome = "near";
                        restore_key = k;
                    }
                    None => {
                        *c.cache.lock() = CacheReport {
                            outcome: "miss".into(),
                            key: Some(key.as_str().into()),
                            ..Default::default()
                        };
                        return Ok(json!({ "outcome": "miss" }));
                    }
                }
            }
            c.emit(
                "install",
                if outcome == "hit" {
                    "Restoring node_modules from cache".to_string()
                } else {
                    format!(
                        "Restoring node_modules from a near cache entry ({})",
                        &restore_key.as_str()[..12]
                    )
                },
            );
            std::fs::create_dir_all(&c.staging)
                .map_err(|e| terr(Error::io_path("create directory", &c.staging, e)))?;
            let target = c.staging.join("node_modules");
            let workers = c.inner.opts.restore_workers.or_else(|| {
                let entry_files = cache
                    .lookup(&restore_key)
                    .ok()
                    .flatten()
                    .map(|e| e.manifest.files)
                    .unwrap_or(u64::MAX / 1024);
                restore_workers_beside_checkout(
                    git::checkout_choice(),
                    c.tracked_files,
                    entry_files,
                )
            });
            let opts = crate::cache::RestoreOptions {
                workers,
                ..Default::default()
            };
            match cache
                .restore(&restore_key, &target, &opts)
                .map(|st| (st.files, st.method_used))
            {
                Ok((files, method)) => {
                    let rep = CacheReport {
                        outcome: outcome.into(),
                        key: Some(key.as_str().into()),
                        method: Some(method.clone()),
                        files: Some(files),
                        ..Default::default()
                    };
                    *c.staged.lock() = Some((target, rep.clone()));
                    *c.cache.lock() = rep;
                    Ok(json!({
                        "outcome": outcome, "files": files, "method": method,
                        "entry": restore_key.as_str(),
                    }))
                }
                Err(e) => {
                    // an unusable entry is a miss, never a failed creation
                    let _ = std::fs::remove_dir_all(&c.staging);
                    c.emit(
                        "install",
                        format!(
                            "cache entry unusable, installing instead: {}",
                            e.full_message()
                        ),
                    );
                    *c.cache.lock() = CacheReport {
                        outcome: "miss".into(),
                        key: Some(key.as_str().into()),
                        ..Default::default()
                    };
                    Ok(json!({ "outcome": "miss", "error": e.full_message() }))
                }
            }
        },
    ));

    // compose-services: the engine and the services/ports of the compose file.
    let c = ctx.clone();
    tasks.push(Task::new("compose-services", &["read-inputs"], move |_| {
        let c = c.clone();
        async move {
            let inputs = inputs_of(&c)?.clone();
            // A runtime asked for by name that is not installed is a progress message, like any
            // container failure: the worktree is made without containers.
            let mut engine_error = None;
            let engine = if inputs.compose_text.is_some() {
                match containers::detect(c.inner.opts.runtime, &Default::default()).await {
                    Ok(e) => e,
                    Err(e) => {
                        let m = format!("containers skipped: {}", e.full_message());
                        c.emit("containers", m.clone());
                        engine_error = Some(m);
                        None
                    }
                }
            } else {
                None
            };
            let on_disk = c.inner.root.join(compose_file(&c.inner.opts));
            // `<compose> config` (~1 s) only when the YAML cannot tell (include/extends); else it
            // runs in the background to fill the digest cache.
            let services = crate::services::compose::load_services_fast(
                inputs.compose_text.as_deref(),
                Some(&on_disk),
                engine.as_ref(),
                Some(&c.inner.cache_dir),
            )
            .await
            .map_err(terr)?;
            let critical = match &c.inner.opts.critical_services {
                Some(list) => list.clone(),
                None => services.database_services(),
            };
            let summary = json!({
                "engine": engine.as_ref().map(|e| e.label()),
                "engineError": engine_error,
                "services": services.service_names(),
                "critical": critical,
                "source": services.source,
            });
            let _ = c.engine.set(engine);
            let _ = c.services.set(services);
            let _ = c.critical.set(critical);
            Ok(summary)
        }
    }));

    // allocate-ports: the registry, under the same lock as the Node server.
    let c = ctx.clone();
    tasks.push(Task::blocking(
        "allocate-ports",
        &["compose-services"],
        move |_| {
            let services = c
                .services
                .get()
                .ok_or_else(|| TaskError::new("services not loaded"))?;
            let registry = PortRegistry::for_project(&c.inner.root).map_err(terr)?;
            let ports = registry.allocate(&c.name, &services.ports).map_err(terr)?;
            let map = ports.to_map();
            c.emit(
                "ports",
                format!(
                    "✓ Ports allocated: {}",
                    map.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            let _ = c.ports.set(ports);
            Ok(json!(map))
        },
    ));

    // pull-images: the critical services' images, at once (in parallel with git).
    let c = ctx.clone();
    tasks.push(
        Task::new("pull-images", &["compose-services"], move |_| {
            let c = c.clone();
            async move {
                let (Some(Some(engine)), Some(services)) = (c.engine.get(), c.services.get())
                else {
                    return Ok(json!({ "skipped": "no container runtime" }));
                };
                let critical = c.critical.get().cloned().unwrap_or_default();
                let images: Vec<String> = services
                    .services
                    .iter()
                    .filter(|s| critical.contains(&s.name) && !s.builds)
                    .filter_map(|s| s.image.clone())
                    .collect();
                let outs = engine.pull_images(&images, None).await;
                Ok(json!(outs))
            }
        })
        .optional(),
    );

    // write-env: `.env` in the worktree, if absent.
    let c = ctx.clone();
    tasks.push(Task::blocking(
        "write-env",
        &["git-worktree-add", "allocate-ports"],
        move |_| {
            let ports = c.ports.get().map(|p| p.env_pairs()).unwrap_or_default();
            let out = crate::services::envfile::write_env_if_absent(&c.path, &c.name, &ports)
                .map_err(terr)?;
            let written = matches!(out, crate::services::envfile::EnvFileOutcome::Written(_));
            Ok(json!({ "path": out.path(), "written": written }))
        },
    ));

    // mcp-discovery: `.claude/settings.json`.
    let c = ctx.clone();
    tasks.push(Task::blocking(
        "mcp-discovery",
        &["read-inputs", "git-worktree-add", "allocate-ports"],
        move |_| {
            let inputs = inputs_of(&c)?;
            let pg = c.ports.get().and_then(|p| p.get("postgres"));
            let extra: Vec<(String, Value)> = c
                .inner
                .opts
                .mcp_extra
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let (path, servers) = crate::services::mcp::configure_worktree(
                &c.inner.root,
                &c.path,
                inputs.package_json_text.as_deref(),
                crate::services::mcp::global_node_modules(),
                pg,
                &extra,
            )
            .map_err(terr)?;
            let mut names: Vec<&String> = servers.iter().map(|s| &s.id).collect();
            names.extend(extra.iter().map(|(k, _)| k));
            c.emit(
                "mcp",
                format!(
                    "✓ MCP servers configured: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            );
            Ok(json!({ "path": path, "servers": names }))
        },
    ));

    // npm-bootstrap: restored node_modules renamed into place, or the project's install.
    let c = ctx.clone();
    let do_install = opts.install;
    tasks.push(Task::new(
        "npm-bootstrap",
        &["git-worktree-add", "cache-restore"],
        move |_| {
            let c = c.clone();
            async move {
                let staged = c.staged.lock().take();
                let target = c.path.join("node_modules");
                let inputs = inputs_of(&c)?.clone();
                let near = staged.as_ref().is_some_and(|(_, r)| r.outcome == "near");
                if let (true, Some((staged, rep))) = (near, staged.as_ref()) {
                    if std::fs::symlink_metadata(&target).is_err() {
                        std::fs::rename(staged, &target).map_err(|e| {
                            terr(Error::io_path("move node_modules into", &target, e))
                        })?;
                    }
                    let cmd = install::incremental_install(&inputs.lockfiles)
                        .ok_or_else(|| TaskError::new("near entry without npm lockfile"))?;
                    if !do_install {
                        return Ok(json!({ "outcome": "near", "command": null }));
                    }
                    c.emit(cmd.step, format!("Installing the difference: {}", cmd.display()));
                    c.cache.lock().install_command = Some(cmd.display());
                    match install::run(&cmd, &c.path, &c.name, c.progress.as_ref()).await {
                        Ok(()) => {
                            c.emit(
                                cmd.step,
                                format!(
                                    "✓ Dependencies installed ({} files from a near entry, then {})",
                                    rep.files.unwrap_or(0),
                                    cmd.display()
                                ),
                            );
                            let populate = c.inner.cache.is_some() && inputs.cache_key.is_some();
                            *c.populate_after.lock() = populate;
                            c.cache.lock().populating = populate;
                            return Ok(json!({ "outcome": "near", "command": cmd.display() }));
                        }
                        Err(e) => {
                            // fall back to the clean install, on a fresh node_modules
                            c.emit(
                                cmd.step,
                                format!(
                                    "incremental install failed, clean install instead: {}",
                                    e.full_message()
                                ),
                            );
                            let _ = std::fs::create_dir_all(&c.staging);
                            let _ = std::fs::rename(&target, c.staging.join("node_modules.failed"));
                            let mut r = c.cache.lock();
                            r.outcome = "miss".into();
                            r.method = None;
                            r.files = None;
                        }
                    }
                } else if let Some((staged, rep)) = staged {
                    if std::fs::symlink_metadata(&target).is_err() {
                        std::fs::rename(&staged, &target).map_err(|e| {
                            terr(Error::io_path("move node_modules into", &target, e))
                        })?;
                    }
                    c.emit(
                        "install",
                        format!(
                            "✓ node_modules restored from cache ({} files, {})",
                            rep.files.unwrap_or(0),
                            rep.method.clone().unwrap_or_default()
                        ),
                    );
                    return Ok(json!({ "outcome": "hit" }));
                }
                let Some(cmd) =
                    install::clean_install(inputs.package_json.as_ref(), &inputs.lockfiles)
                else {
                    return Ok(json!({ "outcome": "none" }));
                };
                if !do_install {
                    return Ok(json!({ "outcome": "skipped", "command": cmd.display() }));
                }
                c.emit(cmd.step, format!("Running {}", cmd.display()));
                c.cache.lock().install_command = Some(cmd.display());
                match install::run(&cmd, &c.path, &c.name, c.progress.as_ref()).await {
                    Ok(()) => {
                        c.emit(
                            cmd.step,
                            format!("✓ Dependencies installed ({})", cmd.display()),
                        );
                        let populate = c.inner.cache.is_some()
                            && inputs.cache_key.is_some()
                            && c.path.join("node_modules").is_dir();
                        *c.populate_after.lock() = populate;
                        c.cache.lock().populating = populate;
                        Ok(json!({ "outcome": "installed", "command": cmd.display() }))
                    }
                    Err(e) => {
                        // A failed install is reported; the worktree itself is made.
                        let msg = e.full_message();
                        c.emit(cmd.step, format!("{} failed: {msg}", cmd.display()));
                        c.cache.lock().install_error = Some(msg.clone());
                        Ok(json!({ "outcome": "failed", "command": cmd.display(), "error": msg }))
                    }
                }
            }
        },
    ));

    // docker-compose-up: the critical services, after `.env`.
    let c = ctx.clone();
    tasks.push(
        Task::new(
            "docker-compose-up",
            &["write-env", "pull-images"],
            move |_| {
                let c = c.clone();
                async move {
                    let Some(Some(engine)) = c.engine.get() else {
                        let why = if c.inner.opts.runtime == ContainerRuntime::None {
                            "runtime none"
                        } else {
                            "no compose file or no container runtime"
                        };
                        c.emit("containers", format!("✓ Containers skipped ({why})"));
                        return Ok(json!({ "skipped": why }));
                    };
                    let services = c
                        .services
                        .get()
                        .map(|s| s.service_names())
                        .unwrap_or_default();
                    let critical = c.critical.get().cloned().unwrap_or_default();
                    let (crit, _) = containers::split_critical(&services, &critical);
                    if crit.is_empty() {
                        c.emit("containers", "✓ No critical services to start before ready");
                        return Ok(json!({ "started": [] }));
                    }
                    c.emit("containers", format!("Starting {}", crit.join(", ")));
                    let project = ComposeProject::for_worktree(
                        &c.path,
                        Path::new(&compose_file(&c.inner.opts)),
                    );
                    let c2 = c.clone();
                    let sink: containers::LineSink =
                        Arc::new(move |l: &str| c2.emit("containers", l.to_string()));
                    let out = engine
                        .up(&project, &crit, Some(sink), Duration::from_secs(600))
                        .await;
                    c.emit(
                        if out.ok { "database" } else { "containers" },
                        out.message.clone(),
                    );
                    Ok(json!(out))
                }
            },
        )
        .optional(),
    );

    // host steps
    for hs in &opts.host_steps {
        let c = ctx.clone();
        let body = hs.body.clone();
        let deps: Vec<&str> = hs.dependencies.iter().map(|s| s.as_str()).collect();
        let t = Task::new(hs.name.clone(), &deps, move |inputs: TaskInputs<Value>| {
            let mut map = serde_json::Map::new();
            for (n, v) in inputs.iter() {
                map.insert(n.to_string(), (**v).clone());
            }
            let input = HostStepInput {
                name: c.name.clone(),
                path: c.path.clone(),
                branch: c.name.clone(),
                dependencies: map,
            };
            body(input)
        });
        tasks.push(t.with_optional(hs.optional));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_beside_a_long_checkout_leaves_the_checkout_a_core() {
        use crate::worktree::checkout::CheckoutMethod::{Git2Parallel, GitCli};
        // 4k tracked files by the git CLI, 13k-file node_modules: one worker finishes first
        assert_eq!(
            restore_workers_beside_checkout(GitCli, 4_003, 12_969),
            Some(1)
        );
        // our checkout of the same is faster than one restore worker: use every worker
        assert_eq!(
            restore_workers_beside_checkout(Git2Parallel, 4_003, 12_969),
            None
        );
        // but a big repo with a small node_modules still leaves the checkout a core
        assert_eq!(
            restore_workers_beside_checkout(Git2Parallel, 20_000, 9_800),
            Some(1)
        );
        // a small repo with a huge node_modules: the restore is the long pole, use every worker
        assert_eq!(restore_workers_beside_checkout(GitCli, 85, 98_000), None);
    }
}
