//! `git-worktree-add`: the branch (created by git2 unless it exists), the registration (libgit2,
//! locked `vibetrees: creating (pid N)`) and the checkout (ours, or `git worktree add`), through
//! `git::add_worktree_with` with the manager's checkout settings. Must not clear debris (done
//! before the graph, by `recovery.rs`) nor unlock the worktree (done at "ready").

use crate::optimizer::TaskError;
use crate::worktree::checkout::CheckoutMethod;
use crate::worktree::create::Creation;
use crate::worktree::git::{self, AddOptions};
use crate::{Error, Result};
use indexmap::IndexMap;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// The worktree, registered and checked out. JSON: `{ path, branch, createdBranch,
/// checkoutWorkers, checkout, checkoutCliBecause, checkoutPhasesMs }`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorktreeAdded {
    /// The worktree's folder.
    pub path: PathBuf,
    /// Its branch.
    pub branch: String,
    /// True when this creation made the branch.
    pub created_branch: bool,
    /// Threads of our checkout, or `checkout.workers` of the git CLI's.
    pub checkout_workers: usize,
    /// `git2-parallel` (ours) or `git-cli`.
    #[serde(serialize_with = "method_name")]
    pub checkout: CheckoutMethod,
    /// Why the git CLI checked out although ours was asked for.
    pub checkout_cli_because: Option<String>,
    /// Our checkout's phases (`register`, `files`, `index`, `hook`), wall ms to 0.01.
    pub checkout_phases_ms: IndexMap<&'static str, f64>,
}

fn method_name<S: serde::Serializer>(
    m: &CheckoutMethod,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

/// Creates the branch if needed, then registers and checks out the worktree.
pub async fn add_worktree(
    c: Arc<Creation>,
    (): (),
) -> std::result::Result<WorktreeAdded, TaskError> {
    Ok(add(&c).await?)
}

async fn add(c: &Creation) -> Result<WorktreeAdded> {
    c.emit(
        "git",
        format!("Creating worktree {} from {}", c.name, c.from.ref_name),
    );
    let (root, name, commit) = (c.state.root.clone(), c.name.clone(), c.from.commit);
    let started = std::time::SystemTime::now();
    let (_, created_branch) = tokio::task::spawn_blocking(move || {
        git::ensure_branch(&git::open(&root)?, &name, commit, started)
    })
    .await
    .map_err(|e| Error::Internal(format!("blocking step panicked: {e}")))??;
    if let Some(parent) = c.path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io_path("create directory", parent, e))?;
    }
    let opts = AddOptions::from_settings(&c.state.settings, c.tracked_files);
    let added = git::add_worktree_with(&c.state.root, &c.path, &c.name, &opts).await?;
    // our marker in the registration: who creates it (for `remove` and the debris checks)
    let (root, path) = (c.state.root.clone(), c.path.clone());
    tokio::task::spawn_blocking(move || {
        crate::worktree::marker::mark_started(&git::open(&root)?, &path)
    })
    .await
    .map_err(|e| Error::Internal(format!("blocking step panicked: {e}")))??;
    c.emit("git", format!("✓ Worktree created at {}", c.path.display()));
    Ok(WorktreeAdded {
        path: c.path.clone(),
        branch: c.name.clone(),
        created_branch,
        checkout_workers: added.workers,
        checkout: added.method,
        checkout_cli_because: added.cli_because,
        checkout_phases_ms: added
            .phases
            .iter()
            .map(|(n, ms)| (*n, (ms * 100.0).round() / 100.0))
            .collect(),
    })
}
