//! Worktree creation: the whole `create_worktree_optimized` as one dependency graph.
//!
//! - [`slug`]: names and the safety checks done before anything is touched.
//! - [`checkout`]: registration through libgit2 and a parallel checkout of our own (its
//!   [`loose`] object reader is re-exported here under its old path).
//! - [`git`]: refs and objects through git2, registration and checkout through the git CLI.
//! - [`install`]: the project's install on a cache miss, its output lines as progress.
//! - [`manager`]: [`WorktreeManager`] and `create_worktree_optimized`, the creation graph.
//! - [`options`], [`outcome`]: its settings and its results (the contract's shapes).
//! - [`history`]: every creation's step timings in SQLite, p50/p95 and advice.

pub mod checkout;
pub mod git;
pub mod history;
pub mod install;
pub mod manager;
pub mod options;
pub mod outcome;
pub mod slug;

pub use checkout::loose;

pub use manager::{STEP_NAMES, TOTAL_SPAN, WorktreeManager, chrome_trace};
pub use options::{ContainerRuntime, HostStep, HostStepFn, HostStepInput, WorktreeOptions};
pub use outcome::{
    CacheReport, CreateOutcome, CreatedWorktree, RemoveOutcome, StepTiming, WorktreeInfo,
    failure_json,
};
