//! Setup hooks: the project's own commands (codegen, `prisma generate`, a seed script) run as
//! part of a creation.
//!
//! - Where they come from (`config.rs`): the host's `hooks` option (always run), and from the
//!   repository (the `from` tree): `vibetrees.json` `"hooks"`, worktrunk's `.config/wt.toml`,
//!   Conductor's `conductor.json` (mapping in docs/include.md).
//! - Trust (`trust.rs`): a repository hook runs only when its exact text is approved for the
//!   project (`vibetrees hooks approve`, `~/.vibetrees/hooks-approved.json`) or the host set
//!   `trustProjectHooks`; otherwise it is skipped with a progress message saying how to approve.
//! - How they run (`run.rs`): `sh -c` in the worktree, its own process group, a timeout, the
//!   `.env` plus `VIBETREES_*` in the environment, output as progress (`step: 'hooks'`) and in
//!   a log file per creation; waited for by exit, not end-of-file.
//! - When: `post-create` hooks are tasks of the creation graph (`create/steps/hooks.rs`);
//!   `post-ready` hooks run in the background after ready (`create/background.rs`).

mod config;
mod run;
mod trust;

pub use config::{host_hooks, repository_hooks, repository_hooks_in_dir, repository_hooks_in_tree};
pub use run::{HookEnv, HookRan, HookRunner, log_path, run_hook};
pub use trust::{Approvals, approvals_path};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Time limit of a hook without its own: 10 minutes.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(600);

/// One hook as the host options and `vibetrees.json` write it: a command, or an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HookDef {
    /// Just the command (run through `sh -c`).
    Command(String),
    /// The command with its options.
    Full(HookSpec),
}

/// A hook with its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HookSpec {
    /// The command, run through `sh -c` in the worktree.
    pub command: String,
    /// Its name in progress and results (default: `<source>-<phase>-<n>`).
    #[serde(default)]
    pub name: Option<String>,
    /// A failure (or timeout) does not fail the creation.
    #[serde(default)]
    pub optional: bool,
    /// Steps it runs after (post-create only); default: the checkout, node_modules, `.env`
    /// and the copied files.
    #[serde(default)]
    pub after: Option<Vec<String>>,
    /// Time limit in ms (default 10 minutes).
    #[serde(default)]
    pub timeout_ms: Option<f64>,
}

/// The hooks of one source, by phase (`{"post-create": [...], "post-ready": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Run as steps of the creation, before ready.
    #[serde(default, rename = "post-create", alias = "postCreate")]
    pub post_create: Vec<HookDef>,
    /// Run in the background after ready.
    #[serde(default, rename = "post-ready", alias = "postReady")]
    pub post_ready: Vec<HookDef>,
}

impl HooksConfig {
    /// No hook at all.
    pub fn is_empty(&self) -> bool {
        self.post_create.is_empty() && self.post_ready.is_empty()
    }
}

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HookPhase {
    /// A step of the graph, before ready.
    #[serde(rename = "post-create")]
    PostCreate,
    /// In the background after ready.
    #[serde(rename = "post-ready")]
    PostReady,
}

impl HookPhase {
    /// `post-create` or `post-ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::PostCreate => "post-create",
            HookPhase::PostReady => "post-ready",
        }
    }
}

/// Where a hook was declared. JSON: its file name (`vibetrees.json`, ...) or `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSource {
    /// The host's `hooks` option: trusted.
    Host,
    /// The repository's `vibetrees.json`.
    VibetreesJson,
    /// The repository's `.config/wt.toml` (worktrunk).
    WtToml,
    /// The repository's `conductor.json` (Conductor).
    ConductorJson,
}

impl Serialize for HookSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl HookSource {
    /// The file (or option) it came from.
    pub fn as_str(self) -> &'static str {
        match self {
            HookSource::Host => "host",
            HookSource::VibetreesJson => "vibetrees.json",
            HookSource::WtToml => ".config/wt.toml",
            HookSource::ConductorJson => "conductor.json",
        }
    }
}

/// One hook, resolved: what runs, when, from where.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// Unique within the creation; its graph task is `hook:<name>`.
    pub name: String,
    /// The command text (what approval is keyed by).
    pub command: String,
    /// When it runs.
    pub phase: HookPhase,
    /// Where it was declared.
    pub source: HookSource,
    /// Failure is reported, not fatal.
    pub optional: bool,
    /// Steps it runs after (post-create), `None`: the default ones.
    pub after: Option<Vec<String>>,
    /// Its time limit.
    #[serde(skip)]
    pub timeout: Duration,
}

impl Hook {
    /// True for hooks that come from the repository (and so need approval).
    pub fn from_repository(&self) -> bool {
        self.source != HookSource::Host
    }

    /// The hash approval is keyed by: BLAKE3 of the exact command text, hex.
    pub fn command_hash(&self) -> String {
        command_hash(&self.command)
    }
}

/// BLAKE3 of a command's exact text, hex.
pub fn command_hash(command: &str) -> String {
    blake3::hash(command.as_bytes()).to_hex().to_string()
}
