//! [`WorktreeOptions`]: what a [`super::WorktreeManager`] is made with, i.e. its
//! [`WorktreeSettings`] (plain data, in `settings.rs`) beside the host's callbacks: the progress
//! sink and the host's own steps ([`HostStep`]). Owns no behaviour; must not grow plain-data
//! options (they go into [`WorktreeSettings`], so every binding gets them).

use crate::optimizer::TaskFuture;
use crate::progress::ProgressSink;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

pub use super::settings::WorktreeSettings;
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

/// Everything a [`super::WorktreeManager`] is made with: its plain-data [`WorktreeSettings`]
/// (what the bindings deserialize) and the host's callbacks, which are not data.
#[derive(Clone, Default)]
pub struct WorktreeOptions {
    /// Every plain-data option.
    pub settings: WorktreeSettings,
    /// Where progress events go.
    pub on_progress: Option<ProgressSink>,
    /// The host's own steps.
    pub host_steps: Vec<HostStep>,
    /// A profiler of the host's to record every creation into (the server's `manager.profiler`,
    /// so its metrics endpoint shows our steps); `None`: the manager makes its own.
    pub profiler: Option<Arc<crate::profiler::Profiler>>,
}

impl WorktreeOptions {
    /// Default options for the project at `root_dir`.
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        WorktreeSettings::new(root_dir).into()
    }

    /// These options with `sink` receiving the progress events.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.on_progress = Some(sink);
        self
    }

    /// These options with every creation recorded into `profiler` (shared with the host).
    pub fn with_profiler(mut self, profiler: Arc<crate::profiler::Profiler>) -> Self {
        self.profiler = Some(profiler);
        self
    }
}

impl From<WorktreeSettings> for WorktreeOptions {
    fn from(settings: WorktreeSettings) -> Self {
        Self {
            settings,
            on_progress: None,
            host_steps: Vec::new(),
            profiler: None,
        }
    }
}

impl std::fmt::Debug for WorktreeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorktreeOptions")
            .field("settings", &self.settings)
            .field("on_progress", &self.on_progress.is_some())
            .field("host_steps", &self.host_steps)
            .field("profiler", &self.profiler.is_some())
            .finish()
    }
}
