//! [`WorktreeManager`]: the API of one project's worktrees (create, remove, list, warm-up,
//! background, metrics) and the state its creations share (`ManagerState`). A creation itself
//! is `create/`; what clears failures and debris is `recovery.rs`. This file must not grow step
//! logic: it opens the project and hands each call to the module that owns it.

use super::create;
use super::git;
use super::history::History;
use super::jobs::BackgroundJobs;
use super::options::{HostStep, WorktreeOptions, WorktreeSettings};
use super::outcome::{CreateOutcome, CreatedWorktree, RemoveOutcome, WorktreeInfo};
use super::recovery::Recovery;
use super::removal::RemoveOptions;
use super::slug;
use super::trash::{Trash, TrashEntry};
use crate::cache::{CacheOptions, KeyInputs, NodeModulesCache, PopulateOptions};
use crate::optimizer::{CancellationToken, OptimizerOptions, PerformanceOptimizer};
use crate::profiler::{Metrics, Profiler};
use crate::progress::{ProgressEvent, ProgressSink};
use crate::services::containers;
use crate::services::ports::PortRegistry;
use crate::{Error, Result};
use indexmap::IndexMap;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The built-in steps of a creation, in graph order. Host steps may depend on any of them.
pub const STEP_NAMES: &[&str] = create::BUILT_IN_STEPS;

/// Creates, lists and removes the worktrees of one project.
#[derive(Clone)]
pub struct WorktreeManager {
    state: Arc<ManagerState>,
}

/// What every call of one manager shares: its settings and callbacks, the project, the
/// profiler, the optimizer, the cache, the history and the background jobs. Read-only but for
/// the set of names being created and the history.
pub(crate) struct ManagerState {
    /// Every plain-data option.
    pub settings: WorktreeSettings,
    /// Where progress events go.
    pub on_progress: Option<ProgressSink>,
    /// The host's own steps, run in every creation's graph.
    pub host_steps: Vec<HostStep>,
    /// The project root (canonical).
    pub root: PathBuf,
    /// Where worktrees are made.
    pub base: PathBuf,
    /// The profiler every creation's spans go into.
    pub profiler: Arc<Profiler>,
    /// Runs the creation graphs (recording into `profiler`).
    pub optimizer: PerformanceOptimizer,
    /// The node_modules cache, unless disabled.
    pub cache: Option<Arc<NodeModulesCache>>,
    /// The cache folder (also where the compose `config` digests are kept).
    pub cache_dir: PathBuf,
    /// The creations' history, when recorded.
    pub history: Option<Mutex<History>>,
    /// What went wrong opening the history (a damaged file moved aside): told once, as a
    /// progress message (step `history`) of the next creation.
    pub history_warning: Mutex<Option<String>>,
    /// Work left running after calls return.
    pub jobs: Arc<BackgroundJobs>,
    /// Debris, rollback and undo.
    pub recovery: Recovery,
    creating: Mutex<HashSet<String>>,
}

/// Marks a name as being created by this process until dropped.
pub(crate) struct Creating<'a>(&'a ManagerState, String);

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.0.creating.lock().remove(&self.1);
    }
}

impl ManagerState {
    /// Marks `name` as being created (one creation of a name at a time in this process; other
    /// processes meet the git lock): [`Error::Lock`] if it already is.
    pub fn start_creating(&self, name: &str) -> Result<Creating<'_>> {
        if !self.creating.lock().insert(name.to_string()) {
            return Err(Error::Lock(format!(
                "worktree {name:?} is being created by this process"
            )));
        }
        Ok(Creating(self, name.to_string()))
    }

    /// True while a creation of this manager runs (the pool's refills wait for none).
    pub fn creations_running(&self) -> bool {
        !self.creating.lock().is_empty()
    }

    /// Sends a progress event.
    pub(crate) fn emit(&self, name: &str, step: &str, message: impl Into<String>) {
        if let Some(p) = &self.on_progress {
            p(&ProgressEvent::new(name, step, message));
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking call panicked: {e}")))?
}

impl WorktreeManager {
    /// A manager for the project at `opts.settings.root_dir` (must be a git repository's main
    /// worktree).
    pub fn new(opts: WorktreeOptions) -> Result<Self> {
        let WorktreeOptions {
            settings,
            on_progress,
            host_steps,
            profiler,
        } = opts;
        settings.validate()?;
        let root = std::fs::canonicalize(&settings.root_dir)
            .map_err(|e| Error::io_path("open project root", &settings.root_dir, e))?;
        git::open(&root)?;
        let base = settings
            .worktree_base
            .clone()
            .unwrap_or_else(|| root.join(".worktrees"));
        // the cache key asks `node` for its ABI once per process: ask now, not in the first creation
        std::thread::spawn(|| {
            crate::cache::node_abi();
        });
        let profiler = profiler.unwrap_or_else(|| Arc::new(Profiler::new()));
        // Say so when another project's worktrees share this project's ports registry.
        if let Ok(home) = crate::services::ports::home_dir() {
            let _ = crate::services::server_registry::ServerPortRegistry::new_in(
                &home,
                &root.to_string_lossy(),
            );
        }
        let optimizer = PerformanceOptimizer::new(OptimizerOptions {
            profiler: Some(profiler.clone()),
            ..Default::default()
        })?;
        let cache_dir = match &settings.cache_dir {
            Some(d) => d.clone(),
            None => crate::cache::default_cache_dir()?,
        };
        let cache = if settings.use_cache {
            Some(Arc::new(NodeModulesCache::open(CacheOptions {
                cache_dir: Some(cache_dir.clone()),
                // no profiler: the cache's own spans would be roots named like the creation's
                // steps (`cache-restore`) and count twice in the metrics
                ..Default::default()
            })?))
        } else {
            None
        };
        let (history, history_warning) = if settings.record_history {
            let path = settings
                .history_path
                .clone()
                .unwrap_or_else(super::history::default_history_path);
            // best-effort: a damaged file is moved aside, never a reason to refuse creations
            let (history, warning) = History::open_or_recover(&path);
            if let Some(w) = &warning {
                tracing::warn!("{w}");
            }
            (history.map(Mutex::new), warning)
        } else {
            (None, None)
        };
        let jobs = Arc::new(BackgroundJobs::default());
        let recovery = Recovery {
            root: root.clone(),
            base: base.clone(),
            jobs: Arc::clone(&jobs),
            on_progress: on_progress.clone(),
            trash_grace: settings.trash_grace,
        };
        Ok(Self {
            state: Arc::new(ManagerState {
                settings,
                on_progress,
                host_steps,
                root,
                base,
                profiler,
                optimizer,
                cache,
                cache_dir,
                history,
                history_warning: Mutex::new(history_warning),
                jobs,
                recovery,
                creating: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// What its calls share (for the creation's tests).
    #[cfg(test)]
    pub(crate) fn state(&self) -> &Arc<ManagerState> {
        &self.state
    }

    /// The project root (canonical).
    pub fn root(&self) -> &Path {
        &self.state.root
    }

    /// The folder worktrees are made in.
    pub fn worktree_base(&self) -> &Path {
        &self.state.base
    }

    /// The settings this manager was made with.
    pub fn settings(&self) -> &WorktreeSettings {
        &self.state.settings
    }

    /// The profiler every creation's spans go into.
    pub fn profiler(&self) -> Arc<Profiler> {
        self.state.profiler.clone()
    }

    /// The contract's metrics (`GET /api/performance/metrics`).
    pub fn get_performance_metrics(&self) -> Metrics {
        self.state.profiler.metrics()
    }

    /// The node_modules cache, when enabled.
    pub fn cache(&self) -> Option<&NodeModulesCache> {
        self.state.cache.as_deref()
    }

    /// Waits for every background job started so far (cache populate, services, push, warm-up,
    /// trash deletion): the "settled" point of the creations made so far.
    pub async fn wait_background(&self) {
        self.state.jobs.wait_all().await;
    }

    /// Names of the background jobs still running.
    pub fn background_jobs(&self) -> Vec<String> {
        self.state.jobs.running()
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
        self.create_worktree_cancellable(branch, from, CancellationToken::new())
            .await
    }

    /// [`WorktreeManager::create_worktree_optimized`] that `cancel` stops: no step starts after
    /// it is cancelled, the running install, image pulls and `compose up` are stopped, the other
    /// running steps end, and then everything the creation made is undone (its containers,
    /// ports, registration, folder, and its branch if it created it); the call fails with
    /// [`Error::Cancelled`]. Cancelling after the call returned changes nothing (see
    /// [`WorktreeManager::undo_creation`]).
    pub async fn create_worktree_cancellable(
        &self,
        branch: &str,
        from: &str,
        cancel: CancellationToken,
    ) -> Result<CreateOutcome> {
        let res = create::create(&self.state, branch, from, cancel).await;
        if let Err(e) = &res {
            self.state
                .emit(&slug::slugify(branch), "error", e.full_message());
        }
        res
    }

    /// Undoes a creation that finished after its caller gave up on it (a Ctrl-C that arrived as
    /// it returned): removes the worktree ([`WorktreeManager::remove_worktree`]), deletes its
    /// branch if the creation made it, and waits for the background deletion.
    pub async fn undo_creation(&self, made: &CreatedWorktree) -> Result<()> {
        // ours, just made: its .env, node_modules... and whatever ran since go
        self.remove_worktree_with(
            &made.name,
            RemoveOptions {
                force: true,
                force_locked: false,
            },
        )
        .await?;
        if made.created_branch {
            let (root, branch) = (self.state.root.clone(), made.branch.clone());
            blocking(move || git::delete_branch(&git::open(&root)?, &branch)).await?;
        }
        self.wait_background().await;
        Ok(())
    }

    /// Removes worktree `name` as `git worktree remove` would ([`RemoveOptions::default`]:
    /// refuses a locked, a dirty or an unregistered one; see `removal.rs`): its containers
    /// stopped, its ports released, its registration removed, its folder deleted in the
    /// background. The branch is kept.
    pub async fn remove_worktree(&self, name: &str) -> Result<RemoveOutcome> {
        self.remove_worktree_with(name, RemoveOptions::default())
            .await
    }

    /// [`WorktreeManager::remove_worktree`] with `force` (a dirty worktree goes to the trash for
    /// `trashGrace`, restorable) and `force_locked` (a worktree locked with `git worktree lock`).
    pub async fn remove_worktree_with(
        &self,
        name: &str,
        opts: RemoveOptions,
    ) -> Result<RemoveOutcome> {
        super::removal::remove(&self.state, name, opts).await
    }

    /// The worktrees kept in the trash (removed with changes), oldest first.
    pub fn trash_list(&self) -> Result<Vec<TrashEntry>> {
        let repo = git::open(&self.state.root)?;
        Ok(Trash::new(&self.state.base, repo.commondir()).list())
    }

    /// Brings the newest trash entry of `name` back: its folder and its registration (see
    /// `trash.rs`). Refused, with nothing moved, when the place is taken again.
    pub async fn trash_restore(&self, name: &str) -> Result<TrashEntry> {
        slug::validate_slug(name, name)?;
        let (state, name) = (self.state.clone(), name.to_string());
        blocking(move || {
            let repo = git::open(&state.root)?;
            Trash::new(&state.base, repo.commondir()).restore(&repo, &name)
        })
        .await
    }

    /// The project's worktrees: the main one, then every registered one, with their ports.
    pub async fn list_worktrees(&self) -> Result<Vec<WorktreeInfo>> {
        let state = self.state.clone();
        blocking(move || {
            let repo = git::open(&state.root)?;
            let registry = PortRegistry::for_project(&state.root)?;
            let main_branch = repo
                .head()
                .ok()
                .and_then(|h| h.shorthand().ok().map(|s| s.to_string()));
            let mut out = vec![WorktreeInfo {
                name: state
                    .root
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path: state.root.clone(),
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
    /// images. Returns the names of the jobs started; [`WorktreeManager::wait_background`]
    /// awaits them.
    ///
    /// First, at once: stops what is left running of the installs of creations that died
    /// (see [`WorktreeManager::stop_installs_of_dead_creations`]).
    pub async fn warm(&self) -> Result<Vec<String>> {
        let this = self.clone();
        let stopped = blocking(move || Ok(this.stop_installs_of_dead_creations())).await?;
        if stopped > 0 {
            self.state.emit(
                "",
                "install",
                format!("stopped {stopped} install process(es) left by creations that died"),
            );
        }
        let mut jobs = Vec::new();
        let root = self.state.root.clone();
        if let Some(cache) = self.state.cache.clone()
            && root.join("node_modules").is_dir()
            && root.join("package.json").is_file()
        {
            let inputs = KeyInputs::from_project_dir(&root)?;
            let key = inputs.key();
            let popts = PopulateOptions {
                inputs: Some(inputs),
                ..Default::default()
            };
            if !cache.contains(&key) {
                jobs.push("cache-populate".to_string());
                let state = self.state.clone();
                self.state.jobs.spawn("warm-cache", async move {
                    let src = root.join("node_modules");
                    let r = tokio::task::spawn_blocking(move || {
                        cache.populate_with(&key, &src, &popts)
                    })
                    .await;
                    let msg = match r {
                        Ok(Ok(rep)) => format!("✓ cache warmed ({} files)", rep.files),
                        Ok(Err(e)) => format!("cache warm-up failed: {}", e.full_message()),
                        Err(e) => format!("cache warm-up failed: {e}"),
                    };
                    state.emit("", "cache", msg);
                });
            }
        }
        if super::pool::enabled(&self.state.settings) {
            jobs.push("pool-refill".to_string());
            super::pool::spawn_refill(&self.state, None);
        }
        let file = self.state.root.join(self.state.settings.compose_file());
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(Some(engine)) =
                containers::detect(self.state.settings.runtime, &Default::default()).await
        {
            let cache_dir = self.state.cache_dir.clone();
            jobs.push("pull-images".to_string());
            self.state.jobs.spawn("warm-images", async move {
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

    /// Kills the processes still installing into a worktree whose creation died (its registration
    /// locked `vibetrees: creating (pid N)` with N gone); see
    /// [`Recovery::stop_installs_of_dead_creations`]. Returns how many processes were killed.
    pub fn stop_installs_of_dead_creations(&self) -> usize {
        self.state.recovery.stop_installs_of_dead_creations()
    }

    /// Fills the pool of spare worktrees for `from` (a ref; `None`: the main worktree's branch)
    /// up to `poolSize` within `poolMaxBytes`, now, on a low-priority thread (see
    /// `worktree/pool/`). A refill after a claim and `warm` do the same in the background.
    pub async fn fill_pool(&self, from: Option<&str>) -> Result<super::pool::FillReport> {
        let (state, from) = (self.state.clone(), from.map(str::to_string));
        blocking(move || {
            std::thread::Builder::new()
                .name("vibetrees-pool".into())
                .spawn(move || {
                    crate::platform::lower_this_thread_priority();
                    super::pool::fill(&state, from.as_deref())
                })
                .map_err(|e| Error::Internal(format!("cannot start the pool thread: {e}")))?
                .join()
                .map_err(|_| Error::Internal("the pool thread panicked".into()))?
        })
        .await
    }

    /// Deletes every spare of the pool nobody is claiming, and the debris of dead fills.
    /// Returns how many were removed.
    pub async fn clear_pool(&self) -> Result<usize> {
        let base = self.state.base.clone();
        blocking(move || super::pool::clear(&base)).await
    }

    /// The pool's spares and settings.
    pub fn pool_status(&self) -> super::pool::PoolStatus {
        let s = &self.state.settings;
        super::pool::status(&self.state.base, s.pool_size, s.pool_max_bytes)
    }
}
