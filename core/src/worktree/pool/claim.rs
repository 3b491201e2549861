//! Claiming a spare for a creation: one `rename(2)` of the spare to `<worktreeBase>/<slug>` (never
//! over anything: [`crate::platform::rename_no_replace`]) is the claim; the claimer holds the
//! spare's flock from before the rename until the folder is registered, so recovery can tell a
//! claim in progress from one whose process died. Two claimers of one spare: one rename
//! succeeds, the other gets `ENOENT` and tries the next spare or creates the normal way.
//! [`claim_near`] claims a spare of an older commit of the same ref the same way when its
//! difference is a near plan (`near.rs`); [`update`] applies that plan in the claimed folder.
//!
//! Then [`register`]: the registration written as `git worktree add` writes it
//! (`checkout::register_claimed`, under the registration lock), with the files beside HEAD and
//! our creation marker, and the spare's marker folder removed. [`release`] gives back a claimed
//! folder whose creation failed before it was registered.
//!
//! Owns: the claimed folder until it is registered. Must not touch other spares, branches or
//! other registrations.

use super::layout::{self, SpareMeta};
use super::near::{self, NearPlan};
use crate::Result;
use crate::worktree::checkout;
use crate::worktree::marker::CreationMarker;
use crate::worktree::recovery::unique_suffix;
use git2::{Oid, Repository};
use std::fs::File;
use std::path::Path;

/// A spare renamed to a worktree's place, not registered yet. Holds the spare's flock.
#[derive(Debug)]
pub struct Claimed {
    /// What the spare was made for.
    pub meta: SpareMeta,
    /// How old it was when claimed, ms.
    pub age_ms: u64,
    /// The difference update that brings it to the creation's commit, when it is a near spare
    /// (applied by `git-worktree-add` before the registration).
    pub near: Option<NearPlan>,
    _lock: File,
}

impl Claimed {
    /// The commit the spare holds.
    pub fn commit(&self) -> Option<Oid> {
        Oid::from_str(&self.meta.commit).ok()
    }
}

/// Claims a spare of `commit` from the pool of `base` by renaming it to `path` (which must not
/// exist). `None` when there is none, or every one was taken by another claimer first.
pub fn claim(base: &Path, commit: Oid, path: &Path) -> Option<Claimed> {
    let commit = commit.to_string();
    for spare in layout::spares(base)
        .into_iter()
        .filter(|s| s.meta.commit == commit)
    {
        match take(spare, path, None) {
            Ok(c) => return Some(c),
            Err(NotTaken::Gone) => continue,
            Err(NotTaken::Failed) => return None,
        }
    }
    None
}

/// Why [`take`] did not claim a spare.
enum NotTaken {
    /// Held or renamed by another claimer (or a discard) first: try the next one.
    Gone,
    /// The rename failed otherwise (logged): stop claiming.
    Failed,
}

/// Locks `spare` and renames it to `path` (never over anything): the one step of every claim.
fn take(
    spare: layout::Spare,
    path: &Path,
    near: Option<NearPlan>,
) -> std::result::Result<Claimed, NotTaken> {
    let Some(lock) = layout::try_lock(&layout::spare_lock_path(&spare.path), false) else {
        return Err(NotTaken::Gone);
    };
    match crate::platform::rename_no_replace(&spare.path, path) {
        Ok(()) => Ok(Claimed {
            age_ms: spare.meta.age_ms(),
            meta: spare.meta,
            near,
            _lock: lock,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NotTaken::Gone),
        Err(e) => {
            tracing::warn!("pool: cannot claim {}: {e}", spare.path.display());
            Err(NotTaken::Failed)
        }
    }
}

/// Claims a near spare for `from` (see [`near`]): a spare made from the same ref at an older
/// commit, newest first, whose difference to `from`'s commit is a [`NearPlan`] of at most
/// `max_changes` paths. Renamed to `path` like [`claim`]; the plan travels in the claim.
pub fn claim_near(
    repo: &Repository,
    base: &Path,
    from: &crate::worktree::git::ResolvedFrom,
    max_changes: usize,
    path: &Path,
) -> Option<Claimed> {
    if max_changes == 0 {
        return None;
    }
    let current = from.commit.to_string();
    let mut candidates: Vec<_> = layout::spares(base)
        .into_iter()
        .filter(|s| s.meta.from == from.ref_name && s.meta.commit != current)
        .collect();
    candidates.reverse(); // newest first: the smallest difference, most likely
    for spare in candidates {
        let Ok(old) = Oid::from_str(&spare.meta.commit) else {
            continue;
        };
        let plan = match near::plan(repo, base, old, from.commit, from.tree, max_changes) {
            Ok(p) => p,
            Err(why) => {
                tracing::debug!("pool: {} is not near: {why}", spare.path.display());
                continue;
            }
        };
        match take(spare, path, Some(plan)) {
            Ok(c) => return Some(c),
            Err(NotTaken::Gone) => continue,
            Err(NotTaken::Failed) => return None,
        }
    }
    None
}

/// Brings the claimed folder `path` to `plan`'s commit ([`near::apply`]) and records that commit
/// in its metadata (so a creation that fails before registering gives back a spare of the
/// commit it holds). On an error the folder is no longer whole: [`release`] deletes it.
pub fn update(
    repo: &Repository,
    path: &Path,
    meta: &SpareMeta,
    plan: &NearPlan,
    git_program: &Path,
) -> Result<near::Applied> {
    let applied = near::apply(repo, path, plan, git_program)?;
    let mut meta = meta.clone();
    meta.commit = plan.new_commit.to_string();
    layout::write_meta(path, &meta)?;
    Ok(applied)
}

/// Registers the claimed folder `path` on `branch` (which this creation just made at `commit`,
/// so no worktree has it checked out), locked with `lock_reason` until ready, with the files
/// `git worktree add` leaves beside HEAD and our creation marker; then removes the spare's
/// marker. Returns the registration's name.
pub fn register(
    repo: &Repository,
    path: &Path,
    branch: &str,
    lock_reason: &str,
    commit: Oid,
) -> Result<String> {
    let index = layout::marker_dir(path).join("index");
    let name = checkout::register_claimed(repo, path, branch, lock_reason, &index, |gitdir| {
        checkout::write_head_files(repo, gitdir, commit)?;
        CreationMarker::for_this_process().write(gitdir)
    })?;
    layout::drop_marker(path);
    Ok(name)
}

/// Gives back the claimed folder at `path` when it was not registered (its creation failed or
/// was cancelled first): into the pool again when it is still whole (marker, index, no `.git`),
/// else deleted (it is ours: our marker is in it). Anything else at `path` is left alone.
pub fn release(base: &Path, path: &Path) {
    let Some(meta) = layout::read_meta(path) else {
        return;
    };
    let whole = layout::marker_dir(path).join("index").is_file()
        && std::fs::symlink_metadata(path.join(".git")).is_err();
    if whole {
        let dest =
            layout::pool_dir(base).join(format!("{}-{}", &meta.commit[..12], unique_suffix()));
        if crate::platform::rename_no_replace(path, &dest).is_ok() {
            return;
        }
    }
    if let Err(e) = std::fs::remove_dir_all(path) {
        tracing::warn!("pool: removing the claimed folder {}: {e}", path.display());
    }
}
