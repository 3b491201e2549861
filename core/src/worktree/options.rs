//! Options of a [`super::WorktreeManager`] and the host's own steps.

use crate::optimizer::TaskFuture;
use crate::progress::ProgressSink;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::services::containers::RuntimeChoice as ContainerRuntime;

/// What a host step receives: the worktree and the results (JSON) of the steps it depends on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStepInput {
    /// Worktree name (slug).
    pub name: String,
    /// Worktree folder.
    pub path: PathBuf,
    /// Branch checked out there.
    pub branch: String,
    /// Results of the dependencies, by step name.
    pub dependencies: serde_json::Map<String, serde_json::Value>,
}

/// The body of a host step: gets its input, returns a JSON result or an error message.
pub type HostStepFn = Arc<dyn Fn(HostStepInput) -> TaskFuture<serde_json::Value> + Send + Sync>;

/// A step of the host (a binding's callback) placed in the creation graph by its dependencies on
/// built-in step names ([`super::STEP_NAMES`]) or other host steps.
#[derive(Clone)]
pub struct HostStep {
    /// Unique step name (also its profiler span name).
    pub name: String,
    /// Steps it waits for.
    pub dependencies: Vec<String>,
    /// When true, its failure is a progress message, not a failed creation.
    pub optional: bool,
    /// What it runs.
    pub body: HostStepFn,
}

impl std::fmt::Debug for HostStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostStep")
            .field("name", &self.name)
            .field("dependencies", &self.dependencies)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`super::WorktreeManager`].
#[derive(Clone)]
pub struct WorktreeOptions {
    /// The project's root (its main git worktree).
    pub root_dir: PathBuf,
    /// Where worktrees go; default `<root>/.worktrees`.
    pub worktree_base: Option<PathBuf>,
    /// node_modules cache folder; default `~/.vibetrees/cache`.
    pub cache_dir: Option<PathBuf>,
    /// Compose file name, relative to the project root; default `docker-compose.yml`.
    pub compose_file: Option<String>,
    /// Container engine.
    pub runtime: ContainerRuntime,
    /// Services started before "ready"; default: the database-like ones (postgres, mysql,
    /// mariadb, mongo, redis, ...). The others start in the background.
    pub critical_services: Option<Vec<String>>,
    /// Push the new branch to `origin` in the background after "ready".
    pub push_branch: bool,
    /// Time limit of the background push.
    pub push_timeout: std::time::Duration,
    /// Where progress events go.
    pub on_progress: Option<ProgressSink>,
    /// The host's own steps.
    pub host_steps: Vec<HostStep>,
    /// Extra `mcpServers` entries (e.g. the host's bridge server), added to every worktree.
    pub mcp_extra: serde_json::Map<String, serde_json::Value>,
    /// Use the node_modules cache (restore on hit, populate after an install). Default true.
    pub use_cache: bool,
    /// Run the project's install on a cache miss. Default true.
    pub install: bool,
    /// Worker threads of the node_modules restore that runs beside the checkout; `None`: one when
    /// one finishes before the checkout (estimated from the tracked files and the entry's files),
    /// else the cache's default (one per core, at most 4).
    pub restore_workers: Option<usize>,
    /// History database; default `~/.vibetrees/history.sqlite`. `None` with
    /// `record_history: false` keeps nothing.
    pub history_path: Option<PathBuf>,
    /// Record each creation's timings and trace in the history. Default true.
    pub record_history: bool,
}

impl WorktreeOptions {
    /// Default options for the project at `root_dir`.
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        Self {
            root_dir: root_dir.into(),
            worktree_base: None,
            cache_dir: None,
            compose_file: None,
            runtime: ContainerRuntime::Auto,
            critical_services: None,
            push_branch: false,
            push_timeout: std::time::Duration::from_secs(60),
            on_progress: None,
            host_steps: Vec::new(),
            mcp_extra: serde_json::Map::new(),
            use_cache: true,
            install: true,
            restore_workers: None,
            history_path: None,
            record_history: true,
        }
    }
}

impl std::fmt::Debug for WorktreeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorktreeOptions")
            .field("root_dir", &self.root_dir)
            .field("worktree_base", &self.worktree_base)
            .field("cache_dir", &self.cache_dir)
            .field("compose_file", &self.compose_file)
            .field("runtime", &self.runtime)
            .field("critical_services", &self.critical_services)
            .field("push_branch", &self.push_branch)
            .field("host_steps", &self.host_steps)
            .field("use_cache", &self.use_cache)
            .field("install", &self.install)
            .finish_non_exhaustive()
    }
}
