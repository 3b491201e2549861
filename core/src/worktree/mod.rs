//! Worktree creation: the whole `create_worktree_optimized` as one dependency graph, and the
//! rest of a project's worktree API. Each module owns one concept:
//!
//! - [`manager`]: [`WorktreeManager`], the API (create, remove, list, warm, background).
//! - `create/`: one creation: the graph (ready vs settled) and its steps, one file each.
//! - [`recovery`]: debris of dead creations, staging, trash, rollback, the undo of a cancelled
//!   creation; the lock kinds are listed in its doc.
//! - [`removal`]: what `remove` may delete (registered, unlocked, clean or forced) and how;
//!   [`marker`]: our marker in a registration (creator, files the creation wrote);
//!   [`trash`]: removed worktrees with changes, kept for a grace period and restorable.
//! - [`settings`], [`options`]: the plain-data settings every binding deserializes, and the
//!   callbacks beside them. [`outcome`]: the results (the contract's shapes).
//! - [`slug`]: names and the safety checks done before anything is touched.
//! - [`checkout`]: the registration, written as `git worktree add` writes it, and a parallel
//!   checkout of our own (its [`loose`] object reader is re-exported here under its old path).
//! - [`git`]: refs and objects through git2, registration and checkout through the git CLI;
//!   [`registrations`]: the registered worktrees as listing and recovery read them.
//! - [`install`]: the project's install on a cache miss, its output lines as progress.
//! - [`history`]: every creation's step timings in SQLite, p50/p95 and advice.
//! - [`jobs`]: the background jobs a manager awaits ("settled").
//! - [`phases`]: the timing of our checkout's phases (spans inside `git-worktree-add`).
//! - [`pool`]: spare worktrees made ahead, claimed by a creation from their commit.

pub mod checkout;
mod create;
pub mod git;
pub mod git_env;
pub mod history;
pub mod hooks;
pub mod include;
pub mod install;
pub mod jobs;
pub mod manager;
pub mod marker;
pub mod options;
pub mod outcome;
pub mod phases;
pub mod pool;
pub mod recovery;
pub mod registrations;
pub mod removal;
pub mod settings;
pub mod slug;
pub mod trash;

pub use checkout::loose;

pub use crate::optimizer::CancellationToken;
pub use crate::profiler::WORKTREE_TOTAL_OPERATION;
pub use manager::{STEP_NAMES, WorktreeManager};
pub use options::{ContainerRuntime, HostStep, HostStepFn, HostStepInput, WorktreeOptions};
pub use outcome::{
    CacheOutcome, CacheReport, CreateOutcome, CreatedWorktree, HooksReport, PoolReport,
    RemoveOutcome, SkippedHook, StepTiming, WorktreeInfo, failure_json,
};
pub use removal::RemoveOptions;
pub use settings::{CheckoutChoice, WorktreeSettings};
pub use trash::TrashEntry;

/// A Chrome trace (Trace Event Format) of one creation: its total span and its children.
pub fn chrome_trace(total: &crate::profiler::OperationResult) -> String {
    crate::profiler::results_chrome_trace(total, &[])
}
