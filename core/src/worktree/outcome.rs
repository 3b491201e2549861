//! What a creation returns, serialized to the contract's shapes:
//! `{ success: true, worktree: { name, path, branch, ports, dockerStatus: [], ... } }` or
//! `{ success: true, name, path, branch, existed: true, message: 'Worktree already exists' }`.
//! Failures are `Err(Error)`; bindings turn them into `{ success: false, error }`.
//! Owns the shapes (and their typed outcomes: [`CacheOutcome`], the step status); must not
//! compute them (`create/result.rs` does). The Node and Python packages declare the same shapes
//! by hand, and their tests compare those declarations with real results.

use crate::optimizer::TaskStatus;
use indexmap::IndexMap;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::path::PathBuf;

/// What the node_modules cache gave a creation. Serialized as today's strings: `hit`, `near`,
/// `miss`, `none`, `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    /// The project's entry was restored.
    Hit,
    /// An older entry of the project was restored, then an incremental install ran.
    Near,
    /// No usable entry: the project's clean install ran.
    Miss,
    /// No package.json: nothing to cache.
    #[default]
    None,
    /// The cache is off (`useCache: false`).
    Disabled,
}

impl CacheOutcome {
    /// The string it serializes to.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Near => "near",
            CacheOutcome::Miss => "miss",
            CacheOutcome::None => "none",
            CacheOutcome::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for CacheOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for CacheOutcome {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for CacheOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The node_modules outcome of a creation.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CacheReport {
    /// What the cache gave.
    pub outcome: CacheOutcome,
    /// The cache key, when there is a package.json.
    pub key: Option<String>,
    /// How files were restored (`hardlink`, `reflink`, `copy`), on a hit or near hit.
    pub method: Option<String>,
    /// Files restored.
    pub files: Option<u64>,
    /// The install run, if any (`npm ci --prefer-offline --no-audit --no-fund`).
    pub install_command: Option<String>,
    /// The install's error, if it failed (the creation still succeeds; the step is reported).
    pub install_error: Option<String>,
    /// True when the cache is being populated in the background after this creation.
    pub populating: bool,
}

/// A step's timing in a creation, in ms since the creation started.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTiming {
    /// Step name.
    pub name: String,
    /// `ok`, `failed`, `skipped`, `cancelled`.
    pub status: TaskStatus,
    /// Start, ms since the graph started.
    pub start_ms: Option<f64>,
    /// Duration, ms.
    pub duration_ms: Option<f64>,
    /// Error message, if failed.
    pub error: Option<String>,
}

/// A repository hook that was not run because its text is not approved.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SkippedHook {
    /// The hook's name.
    pub name: String,
    /// The file it came from (`vibetrees.json`, `.config/wt.toml`, `conductor.json`).
    pub source: String,
    /// Its command.
    pub command: String,
}

/// The hooks of a creation.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HooksReport {
    /// The creation's hook log, when a hook ran.
    pub log: Option<PathBuf>,
    /// Post-create hooks run (their task names, `hook:<name>`).
    pub post_create: Vec<String>,
    /// Post-ready hooks started in the background.
    pub post_ready: Vec<String>,
    /// Repository hooks skipped: not approved (`vibetrees hooks approve`).
    pub skipped: Vec<SkippedHook>,
}

/// Whether a creation claimed a pool spare (`worktree/pool/`). JSON: `{ claimed, spareAgeMs,
/// nearChanges }` (`spareAgeMs` only when one was claimed, `nearChanges` when it was a near one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolReport {
    /// True when the worktree is a claimed spare.
    pub claimed: bool,
    /// The spare's age when claimed, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spare_age_ms: Option<u64>,
    /// Paths the difference update changed, when the spare was a near one (an older commit of
    /// `from`'s ref; see `pool/near.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub near_changes: Option<usize>,
}

/// A worktree just made.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWorktree {
    /// Worktree name (the slug).
    pub name: String,
    /// Its folder.
    pub path: PathBuf,
    /// Its branch (the slug).
    pub branch: String,
    /// The ref it was made from, in full (`refs/heads/main`).
    pub from: String,
    /// True when the branch was created (false: an existing branch was checked out).
    pub created_branch: bool,
    /// `service -> port`.
    pub ports: IndexMap<String, u16>,
    /// Container states (as the server shows them); empty until containers report.
    pub docker_status: Vec<serde_json::Value>,
    /// Time to ready, ms (the creation's `create-worktree-total` span).
    pub total_ms: f64,
    /// Per-step timings, in graph order.
    pub timings: Vec<StepTiming>,
    /// The chain of steps that set the time to ready.
    pub critical_path: Vec<String>,
    /// The node_modules outcome.
    pub cache: CacheReport,
    /// Results of each step (JSON), by name, including host steps.
    pub steps: serde_json::Map<String, serde_json::Value>,
    /// Steps still running after ready (cache populate, other services, push, post-ready
    /// hooks).
    pub background: Vec<String>,
    /// The hooks: their log file, the ones skipped for want of approval (each post-create
    /// hook's own result is in `steps` as `hook:<name>`).
    pub hooks: HooksReport,
    /// Id of this creation in the history database, when recorded.
    pub creation_id: Option<i64>,
    /// Whether it is a claimed pool spare.
    pub pool: PoolReport,
}

/// What `create_worktree_optimized` returns.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// Made now.
    Created(Box<CreatedWorktree>),
    /// Branch, folder and registration were all there: nothing was changed.
    Existed {
        /// Worktree name.
        name: String,
        /// Its folder.
        path: PathBuf,
        /// Its branch.
        branch: String,
    },
}

impl CreateOutcome {
    /// The worktree's name.
    pub fn name(&self) -> &str {
        match self {
            CreateOutcome::Created(w) => &w.name,
            CreateOutcome::Existed { name, .. } => name,
        }
    }

    /// The worktree's folder.
    pub fn path(&self) -> &std::path::Path {
        match self {
            CreateOutcome::Created(w) => &w.path,
            CreateOutcome::Existed { path, .. } => path,
        }
    }

    /// True for [`CreateOutcome::Existed`].
    pub fn existed(&self) -> bool {
        matches!(self, CreateOutcome::Existed { .. })
    }

    /// The contract's JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("outcome serializes")
    }
}

impl Serialize for CreateOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CreateOutcome::Created(w) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("success", &true)?;
                m.serialize_entry("worktree", w)?;
                m.end()
            }
            CreateOutcome::Existed { name, path, branch } => {
                let mut m = s.serialize_map(Some(6))?;
                m.serialize_entry("success", &true)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("path", path)?;
                m.serialize_entry("branch", branch)?;
                m.serialize_entry("existed", &true)?;
                m.serialize_entry("message", "Worktree already exists")?;
                m.end()
            }
        }
    }
}

/// The failure shape `{ success: false, error, code }` for an error.
pub fn failure_json(err: &crate::Error) -> serde_json::Value {
    serde_json::json!({ "success": false, "error": err.full_message(), "code": err.code() })
}

/// One worktree of the project, as `list_worktrees` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeInfo {
    /// Name (registration name; the slug for worktrees made here).
    pub name: String,
    /// Folder.
    pub path: PathBuf,
    /// Branch checked out, if any.
    pub branch: Option<String>,
    /// Ports from the registry.
    pub ports: IndexMap<String, u16>,
    /// True for the project's main worktree.
    pub is_main: bool,
    /// True when the registration's folder is gone (prunable).
    pub missing: bool,
    /// True when its creation started and never finished.
    pub half_made: bool,
}

/// What `remove_worktree` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveOutcome {
    /// Always true (failures are errors).
    pub success: bool,
    /// Worktree name.
    pub name: String,
    /// Ports released (`service -> port`).
    pub released_ports: IndexMap<String, u16>,
    /// Where the folder went before its background deletion.
    pub trashed_to: Option<PathBuf>,
    /// Container step message.
    pub containers: String,
    /// When it held changes of the user's: the trash entry keeping it (restorable until its
    /// grace period ends; `trashed_to` is then `None`).
    pub kept: Option<super::trash::TrashEntry>,
}
