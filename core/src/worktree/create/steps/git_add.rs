//! `git-worktree-add`: the branch (created by git2 unless it exists), the registration (libgit2,
//! locked `vibetrees: creating (pid N)`) and the checkout (ours, or `git worktree add`), through
//! `git::add_worktree_with` with the manager's checkout settings. When the creation claimed a
//! pool spare (`Creation::claim`), its files and index are already there: only the registration
//! (`pool::claim::register`, as `git worktree add` writes it) and the `post-checkout` hook run;
//! a near spare (an older commit of `from`'s ref) first gets its difference update
//! (`pool::claim::update`).
//! Must not clear debris (done before the graph, by `recovery.rs`) nor unlock the worktree (done
//! at "ready").

use crate::optimizer::TaskError;
use crate::worktree::checkout::{self, CheckoutMethod};
use crate::worktree::create::Creation;
use crate::worktree::git::CheckoutPhases;
use crate::worktree::git::{self, AddOptions};
use crate::worktree::outcome::PoolReport;
use crate::worktree::pool::{self, Claimed};
use crate::worktree::recovery::creating_reason;
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
    /// The pool spare it was made from, when one was claimed (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolReport>,
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
    if let Some(claim) = &c.claim {
        return register_claimed(c, claim, created_branch).await;
    }
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
        pool: None,
    })
}

/// The claimed spare at `c.path` registered on the branch just made at its commit, then the
/// `post-checkout` hook run as after our checkout; each a phase (`register`, `hook`). A near spare
/// is first brought to the commit by its difference update (phase `near`).
async fn register_claimed(
    c: &Creation,
    claim: &Claimed,
    created_branch: bool,
) -> Result<WorktreeAdded> {
    let expected = match &claim.near {
        Some(plan) => plan.new_commit == c.from.commit,
        None => claim.commit() == Some(c.from.commit),
    };
    if !created_branch || !expected {
        // another process made the branch between `prepare` and now: the spare goes back
        return Err(Error::AlreadyExists(format!(
            "branch {:?} was created by another process during this creation",
            c.name
        )));
    }
    let (root, path, name, commit) = (
        c.state.root.clone(),
        c.path.clone(),
        c.name.clone(),
        c.from.commit,
    );
    let near = claim.near.clone().map(|plan| (plan, claim.meta.clone()));
    let git_program = c.state.settings.git_program.clone();
    let span = crate::optimizer::current_span();
    let phases = tokio::task::spawn_blocking(move || -> Result<_> {
        let mut phases = CheckoutPhases::under(span);
        let done = (|| {
            let repo = git::open(&root)?;
            if let Some((plan, meta)) = &near {
                // a near spare: the difference to this commit first (files and index)
                phases.begin("near");
                pool::claim::update(&repo, &path, meta, plan, &git_program)?;
            }
            phases.begin("register");
            pool::claim::register(&repo, &path, &name, &creating_reason(), commit)?;
            if let Some(hook) = checkout::post_checkout_hook(&repo) {
                phases.begin("hook");
                checkout::run_post_checkout_hook(&hook, &path, commit)?;
            }
            Ok(())
        })();
        phases.finish(done.as_ref().err());
        done.map(|()| phases.times)
    })
    .await
    .map_err(|e| Error::Internal(format!("blocking step panicked: {e}")))??;
    c.emit(
        "git",
        format!(
            "✓ Worktree created at {} (a claimed spare)",
            c.path.display()
        ),
    );
    Ok(WorktreeAdded {
        path: c.path.clone(),
        branch: c.name.clone(),
        created_branch,
        checkout_workers: 0,
        checkout: CheckoutMethod::Git2Parallel,
        checkout_cli_because: None,
        checkout_phases_ms: phases
            .iter()
            .map(|(n, ms)| (*n, (ms * 100.0).round() / 100.0))
            .collect(),
        pool: Some(PoolReport {
            claimed: true,
            spare_age_ms: Some(claim.age_ms),
            near_changes: claim.near.as_ref().map(|p| p.changes.len()),
        }),
    })
}
