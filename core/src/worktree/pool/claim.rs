//! Claiming a spare for a creation: one `rename(2)` of the spare to `<worktreeBase>/<slug>` (never
//! over anything: [`crate::platform::rename_no_replace`]) is the claim; the claimer holds the
//! spare's flock from before the rename until the folder is registered, so recovery can tell a
//! claim in progress from one whose process died. Two claimers of one spare: one rename
//! succeeds, the other gets `ENOENT` and tries the next spare or creates the normal way.
//!
//! Then [`register`]: the registration written as `git worktree add` writes it
//! (`checkout::register_claimed`, under the registration lock), with the files beside HEAD and
//! our creation marker, and the spare's marker folder removed. [`release`] gives back a claimed
//! folder whose creation failed before it was registered.
//!
//! Owns: the claimed folder until it is registered. Must not touch other spares, branches or
//! other registrations.

use super::layout::{self, SpareMeta};
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
        // held by another claimer (or a discard) right now: not ours to take
        let Some(lock) = layout::try_lock(&layout::spare_lock_path(&spare.path), false) else {
            continue;
        };
        match crate::platform::rename_no_replace(&spare.path, path) {
            Ok(()) => {
                return Some(Claimed {
                    age_ms: spare.meta.age_ms(),
                    meta: spare.meta,
                    _lock: lock,
                });
            }
            // another claimer renamed it first
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!("pool: cannot claim {}: {e}", spare.path.display());
                return None;
            }
        }
    }
    None
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
