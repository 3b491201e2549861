//! One creation: `create_worktree_optimized` from its checks to its result, as one dependency
//! graph on the optimizer, each step a profiler span started as soon as its inputs are ready.
//!
//! ```text
//! read-inputs ──┬─ cache-restore ─────────────────────┐   (copy-ignored: after git-worktree-add)
//!               ├─ compose-services ─┬─ allocate-ports ┼─ write-env ─┬─ docker-compose-up
//!               │                    └─ pull-images ───┼─────────────┘
//! git-worktree-add ──────────────────────────────────┬─┴─ npm-bootstrap
//!                                                    └─── mcp-discovery (+ read-inputs, allocate-ports)
//! host steps: wherever their dependencies put them
//! hook:<name> (post-create hooks): after git-worktree-add, npm-bootstrap, write-env and
//!   copy-ignored, or after the steps they name (`steps/hooks.rs`)
//! ```
//!
//! - **Before the graph** ([`prepare`]): the name and the ref are checked, debris of earlier
//!   attempts cleared (`recovery.rs`); nothing is touched when a check fails. Then a pool spare
//!   of `from`'s commit is claimed when there is one (`pool/`), else a near spare (an older
//!   commit of the same ref, within `poolNearMaxChanges` changed paths): renamed to the worktree's
//!   place, it is what `git-worktree-add` updates (a near spare) and registers, and where
//!   `cache-restore` finds node_modules; a
//!   creation that fails before registering it gives it back. After ready, a claim starts a
//!   refill of the pool in the background.
//! - **Ready**: the end of the graph (span `create-worktree-total`): the worktree is unlocked,
//!   the result returned ([`result::created`]).
//! - **Settled**: the background work after ready (cache populate, the other services, the push:
//!   `background.rs`), awaited by `wait_background`.
//! - **Failed**: rolled back (`recovery.rs`); **cancelled** ([`CancellationToken`]): no new step
//!   starts, the running ones stop or end, and everything the creation made is undone.
//!
//! The steps are in `steps/`; how their typed values travel through the graph is `graph.rs`.
//! This module owns the order of those phases; it must not do a step's work itself.

mod background;
mod graph;
mod result;
mod steps;

pub use graph::BUILT_IN_STEPS;
pub(crate) use steps::tree_key_inputs;

use super::git::{self, ResolvedFrom};
use super::manager::ManagerState;
use super::outcome::CreateOutcome;
use super::pool::{self, Claimed};
use super::recovery::{Found, Made, STAGING_DIR, unique_suffix};
use super::slug;
use crate::optimizer::{CancellationToken, GraphRun, TaskError};
use crate::profiler::WORKTREE_TOTAL_OPERATION;
use crate::progress::ProgressEvent;
use crate::{Error, Result};
use graph::{GraphBuilder, StepValue, output};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// One creation, as its steps see it: read-only. Values made by steps travel through the graph,
/// never through this.
pub struct Creation {
    /// What every creation of the manager shares (settings, cache, profiler, ...).
    pub state: Arc<ManagerState>,
    /// The worktree's name and branch (the slug).
    pub name: String,
    /// Its folder, `<base>/<slug>`.
    pub path: PathBuf,
    /// The ref it is made from (`ref_name`), and the commit its files come from: `from`'s, or
    /// the branch's own when the branch already exists (it is checked out as it is).
    pub from: ResolvedFrom,
    /// Files in the main worktree's index (sizes the checkout and the restore beside it).
    pub tracked_files: usize,
    /// Where node_modules is restored while the checkout runs.
    pub staging: PathBuf,
    /// Cancels the creation (see the module doc).
    pub cancel: CancellationToken,
    /// The pool spare claimed for it in [`prepare`] (renamed to `path`, not registered yet), if
    /// one matched `from`'s commit: `git-worktree-add` registers it, `cache-restore` keeps its
    /// node_modules.
    pub claim: Option<Box<Claimed>>,
}

impl Creation {
    /// Sends a progress event of this worktree.
    pub fn emit(&self, step: &str, message: impl Into<String>) {
        if let Some(p) = &self.state.on_progress {
            p(&ProgressEvent::new(&self.name, step, message));
        }
    }

    /// `Err(CANCELLED)` once the creation is cancelled: checked before each step starts.
    pub fn check_cancelled(&self) -> std::result::Result<(), TaskError> {
        if self.cancel.is_cancelled() {
            return Err(cancelled_step());
        }
        Ok(())
    }

    /// Awaits `fut` unless the creation is cancelled first (then `fut` is dropped: its child
    /// processes, spawned with `kill_on_drop`, are killed).
    pub async fn until_cancelled<T>(
        &self,
        fut: impl Future<Output = T>,
    ) -> std::result::Result<T, TaskError> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(cancelled_step()),
            out = fut => Ok(out),
        }
    }
}

fn cancelled_step() -> TaskError {
    TaskError::with_code("CANCELLED", "the creation was cancelled")
}

/// The graph of built-in steps, in [`BUILT_IN_STEPS`] order. The dependencies come from each
/// step's input type.
fn built_in_steps(g: &mut GraphBuilder) {
    g.blocking(steps::read_inputs);
    g.spawn(steps::add_worktree);
    g.blocking(steps::restore);
    g.blocking(steps::copy_ignored);
    g.spawn(steps::load_services);
    g.blocking(steps::allocate_ports);
    g.spawn(steps::pull_images);
    g.blocking(steps::write_env);
    g.blocking(steps::configure_mcp);
    g.spawn(steps::bootstrap);
    g.spawn(steps::start_critical);
}

/// What [`prepare`] found.
enum Prepared {
    Existed,
    Go {
        from: ResolvedFrom,
        tracked_files: usize,
        claim: Option<Box<Claimed>>,
    },
}

/// Resolves `from` and clears debris at `path` (blocking); then claims a pool spare of `from`'s
/// commit when the pool is on ([`pool::enabled`]) and the branch is new (a branch that exists
/// may be checked out elsewhere or point elsewhere: the normal path handles it). Runs before
/// anything is made.
fn prepare(
    state: &ManagerState,
    name: &str,
    path: &std::path::Path,
    from: &str,
) -> Result<Prepared> {
    let repo = git::open(&state.root)?;
    let mut resolved = git::resolve_from(&repo, from)?;
    // An existing branch is checked out as it is (`from` only starts a new one): the files the
    // steps read (package.json, lockfiles, compose file, hooks, .worktreeinclude) are that
    // branch's, or its node_modules would be restored for another lockfile.
    if let Ok(branch) = repo.find_branch(name, git2::BranchType::Local)
        && let Ok(commit) = branch.get().peel_to_commit()
    {
        resolved.commit = commit.id();
        resolved.tree = commit.tree_id();
    }
    match state.recovery.clear_debris(&repo, name, path)? {
        Found::Complete => Ok(Prepared::Existed),
        Found::Clear => {
            let tracked_files = repo.index().map(|i| i.len()).unwrap_or(0);
            let claim = (pool::enabled(&state.settings) && !git::branch_exists(&repo, name))
                .then(|| {
                    pool::claim::claim(&state.base, resolved.commit, path).or_else(|| {
                        let max = pool::near::max_changes(&state.settings, tracked_files);
                        pool::claim::claim_near(&repo, &state.base, &resolved, max, path)
                    })
                })
                .flatten()
                .map(Box::new);
            Ok(Prepared::Go {
                from: resolved,
                tracked_files,
                claim,
            })
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking step panicked: {e}")))?
}

/// Creates the worktree of `branch` (slugged) from the ref `from`; see the module doc.
pub async fn create(
    state: &Arc<ManagerState>,
    branch: &str,
    from: &str,
    cancel: CancellationToken,
) -> Result<CreateOutcome> {
    let name = slug::worktree_name(branch)?;
    slug::validate_from(from)?;
    // one creation of a name at a time in this process (other processes: the git lock)
    let _creating = state.start_creating(&name)?;
    if cancel.is_cancelled() {
        return Err(cancelled(&name));
    }
    let path = state.base.join(&name);
    let started_at = result::now_unix_ms();

    // Everything that can refuse runs first; then debris of earlier attempts is cleared.
    let (s2, n2, p2, f2) = (
        Arc::clone(state),
        name.clone(),
        path.clone(),
        from.to_string(),
    );
    let (from, tracked_files, claim) = match blocking(move || prepare(&s2, &n2, &p2, &f2)).await? {
        Prepared::Existed => {
            return Ok(CreateOutcome::Existed {
                branch: name.clone(),
                name,
                path,
            });
        }
        Prepared::Go {
            from,
            tracked_files,
            claim,
        } => (from, tracked_files, claim),
    };

    let total = state.profiler.start(WORKTREE_TOTAL_OPERATION, None)?;
    let staging = state
        .base
        .join(STAGING_DIR)
        .join(format!("{name}.{}", unique_suffix()));
    let creation = Arc::new(Creation {
        state: Arc::clone(state),
        name,
        path,
        from,
        tracked_files,
        staging,
        cancel,
        claim,
    });
    if let Some(c) = &creation.claim {
        creation.emit(
            "pool",
            format!(
                "Claimed a spare worktree of {} (made {:.1} s ago)",
                &c.meta.commit[..12],
                c.age_ms as f64 / 1000.0
            ),
        );
    }
    let history_warning = state.history_warning.lock().take();
    if let Some(w) = history_warning {
        creation.emit("history", w);
    }
    let c2 = Arc::clone(&creation);
    let hooks = match blocking(move || steps::plan_hooks(&c2, started_at)).await {
        Ok(h) => h,
        Err(e) => {
            let _ = state.profiler.end_failed(&total, &e.to_string());
            undo(&creation, None, &e).await;
            return Err(e);
        }
    };
    let mut graph = GraphBuilder::new(Arc::clone(&creation));
    built_in_steps(&mut graph);
    for step in &state.host_steps {
        graph.host(step);
    }
    steps::add_post_create(&mut graph, &hooks);
    let run = match graph.build() {
        Ok(tasks) => {
            state
                .optimizer
                .with_parent_span(total.clone())
                .run_graph(tasks)
                .await
        }
        Err(e) => Err(e),
    };
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            let _ = state.profiler.end_failed(&total, &e.to_string());
            undo(&creation, None, &e).await;
            return Err(e);
        }
    };
    let failure = if creation.cancel.is_cancelled() {
        Some(cancelled(&creation.name))
    } else {
        run.error()
    };
    if let Some(err) = failure {
        let _ = state.profiler.end_failed(&total, &err.to_string());
        undo(&creation, Some(&run), &err).await;
        return Err(err);
    }
    // Ready: the worktree is no longer "being created".
    let (root, p) = (state.root.clone(), creation.path.clone());
    if let Err(e) = blocking(move || {
        super::marker::stamp_ready(&p)?;
        git::unlock_at(&git::open(&root)?, &p)
    })
    .await
    {
        let _ = state.profiler.end_failed(&total, &e.to_string());
        undo(&creation, Some(&run), &e).await;
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&creation.staging);
    let total_result = state.profiler.end(&total)?;
    creation.emit(
        "complete",
        format!(
            "✓ Worktree {} ready in {:.0} ms",
            creation.name, total_result.duration
        ),
    );
    // What the creation wrote is recorded in its marker (not the user's changes: `removal.rs`),
    // off the critical path: a git status costs ~10% of a creation of 4k files. Until it is
    // recorded, `remove` counts those files as changes (refuses; never the other way round);
    // what changes after `ready` is the user's and is never recorded.
    let (root, p) = (state.root.clone(), creation.path.clone());
    state
        .jobs
        .spawn(format!("record {}", creation.name), async move {
            let _ = tokio::task::spawn_blocking(move || {
                super::marker::record_written(&git::open(&root)?, &p)
            })
            .await;
        });
    let background = background::start(&creation, &run, &hooks);
    if creation.claim.is_some() {
        pool::spawn_refill(state, Some(creation.from.ref_name.clone()));
    }
    let created = result::created(
        &creation,
        &run,
        &total_result,
        started_at,
        background,
        &hooks,
    );
    Ok(CreateOutcome::Created(Box::new(created)))
}

fn cancelled(name: &str) -> Error {
    Error::Cancelled(format!("the creation of worktree {name:?} was cancelled"))
}

/// Rolls back a failed creation, or undoes a cancelled one ([`Error::Cancelled`]): see
/// `recovery.rs`. Errors of the undo itself are logged: the creation's own error is the one
/// reported.
async fn undo(c: &Creation, run: Option<&GraphRun<StepValue>>, why: &Error) {
    let added = run.and_then(output::<steps::WorktreeAdded>);
    if c.claim.is_some() && added.is_none() {
        // claimed, not registered: the spare goes back to the pool (or is deleted)
        let (base, path) = (c.state.base.clone(), c.path.clone());
        let _ = blocking(move || {
            pool::claim::release(&base, &path);
            Ok(())
        })
        .await;
    }
    let recovery = &c.state.recovery;
    let outcome = if matches!(why, Error::Cancelled(_)) {
        let services = run.and_then(output::<steps::ServicesLoaded>);
        let up_started = run
            .and_then(|r| r.outcome("docker-compose-up"))
            .is_some_and(|o| o.start_ms.is_some());
        let containers = services
            .filter(|_| up_started)
            .and_then(|s| Some((s.engine.clone()?, s.project(c))));
        let made = Made {
            registered: added.is_some(),
            created_branch: added.as_ref().is_some_and(|a| a.created_branch),
            containers,
        };
        recovery
            .undo_cancelled(&c.name, &c.path, &c.staging, made)
            .await
    } else {
        let (r, name, path, staging) = (
            recovery.clone(),
            c.name.clone(),
            c.path.clone(),
            c.staging.clone(),
        );
        let registered = added.is_some();
        blocking(move || r.roll_back(&name, &path, &staging, registered)).await
    };
    if let Err(e) = outcome {
        tracing::warn!("undoing the creation of {}: {e}", c.name);
    }
}

#[cfg(test)]
mod tests {
    use super::graph::Dependency;
    use super::*;
    use crate::worktree::{WorktreeManager, WorktreeSettings};

    /// A creation of a throw-away repository (never run: for building graphs).
    fn creation() -> (tempfile::TempDir, Arc<Creation>) {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let m = WorktreeManager::new(
            WorktreeSettings {
                use_cache: false,
                record_history: false,
                ..WorktreeSettings::new(dir.path())
            }
            .into(),
        )
        .unwrap();
        let c = Arc::new(Creation {
            state: Arc::clone(m.state()),
            name: "x".into(),
            path: dir.path().join(".worktrees/x"),
            from: ResolvedFrom {
                ref_name: "refs/heads/main".into(),
                commit: git2::Oid::ZERO_SHA1,
                tree: git2::Oid::ZERO_SHA1,
            },
            tracked_files: 0,
            staging: dir.path().join(".worktrees/.staging/x"),
            cancel: CancellationToken::new(),
            claim: None,
        });
        (dir, c)
    }

    #[test]
    fn the_graph_comes_from_the_step_types() {
        let (_dir, c) = creation();
        let mut g = GraphBuilder::new(c);
        built_in_steps(&mut g);
        let shape: Vec<(&str, bool, Vec<&str>)> = g
            .typed()
            .iter()
            .map(|(s, o, d)| (*s, *o, d.iter().map(|d| d.step).collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("read-inputs", false, vec![]),
                ("git-worktree-add", false, vec![]),
                ("cache-restore", false, vec!["read-inputs"]),
                ("copy-ignored", false, vec!["git-worktree-add"]),
                ("compose-services", false, vec!["read-inputs"]),
                ("allocate-ports", false, vec!["compose-services"]),
                ("pull-images", true, vec!["compose-services"]),
                (
                    "write-env",
                    false,
                    vec!["git-worktree-add", "allocate-ports"]
                ),
                (
                    "mcp-discovery",
                    false,
                    vec!["read-inputs", "git-worktree-add", "allocate-ports"]
                ),
                (
                    "npm-bootstrap",
                    false,
                    vec!["git-worktree-add", "cache-restore", "read-inputs"]
                ),
                (
                    "docker-compose-up",
                    true,
                    vec!["write-env", "pull-images", "compose-services"]
                ),
            ]
        );
        let names: Vec<&str> = shape.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(names, BUILT_IN_STEPS);
        assert_eq!(g.build().unwrap().len(), BUILT_IN_STEPS.len());
    }

    #[test]
    fn a_missing_producer_or_a_required_optional_output_is_refused_before_running() {
        // a step whose inputs come from steps not in the graph
        let (_dir, c) = creation();
        let mut g = GraphBuilder::new(c);
        g.spawn(steps::start_critical);
        let e = g.build().unwrap_err();
        assert_eq!(e.code(), "INVALID_GRAPH");
        assert!(e.to_string().contains("'write-env'"), "{e}");
        // a required input made by an optional step
        let dep = |step, required| Dependency { step, required };
        let e = graph::check(&[
            ("pull-images", true, vec![]),
            ("uses-images", false, vec![dep("pull-images", true)]),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("optional step 'pull-images'"), "{e}");
        assert!(
            graph::check(&[
                ("pull-images", true, vec![]),
                ("uses-images", false, vec![dep("pull-images", false)]),
            ])
            .is_ok()
        );
        let e = graph::check(&[("a", false, vec![]), ("a", false, vec![])]).unwrap_err();
        assert!(e.to_string().contains("added twice"), "{e}");
    }
}
