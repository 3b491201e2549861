//! Making one spare: the files of a commit checked out by our writer and its index written, as a
//! creation's `git-worktree-add` step does (the same `checkout::checkout_tree_with` and
//! `checkout::write_index`, no copy), and node_modules restored from the cache, all in a folder
//! named "being made" whose flock the maker holds; then the marker and metadata are written and
//! the folder renamed into place, whole. Nothing is registered with git.
//!
//! Owns: the `.making-*` folder it made and the spare it publishes. Must not touch any other
//! folder of the pool, the repository or its registrations.

use super::layout::{self, MAKING_PREFIX, SpareMeta};
use crate::cache::RestoreOptions;
use crate::worktree::checkout::{self, CheckoutError};
use crate::worktree::create::tree_key_inputs;
use crate::worktree::git::{self, ResolvedFrom};
use crate::worktree::manager::ManagerState;
use crate::worktree::recovery::unique_suffix;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Why no spare was made (not an error: the creation path does the work instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotMade {
    /// The tree needs the git CLI's checkout (attributes, filters, names): no spare for it.
    NeedsCli(String),
    /// The tree holds a path named like our marker.
    MarkerInTree,
}

/// Makes one spare of `from` in the pool of `state`. `Ok(Err(why))` when this tree gets none.
pub(crate) fn make(
    state: &ManagerState,
    from: &ResolvedFrom,
) -> Result<std::result::Result<layout::Spare, NotMade>> {
    let repo = git::open(&state.root)?;
    if let Some(why) = checkout::cli_reason(&repo, from.tree)? {
        return Ok(Err(NotMade::NeedsCli(why)));
    }
    let tree = repo
        .find_tree(from.tree)
        .map_err(|e| Error::git(format!("tree {}", from.tree), e))?;
    if tree.get_name(layout::MARKER_DIR).is_some() {
        return Ok(Err(NotMade::MarkerInTree));
    }
    let pool = layout::pool_dir(&state.base);
    std::fs::create_dir_all(&pool).map_err(|e| Error::io_path("create directory", &pool, e))?;
    let suffix = unique_suffix();
    let making = pool.join(format!("{MAKING_PREFIX}{suffix}"));
    let lock_path = pool.join(format!("{MAKING_PREFIX}{suffix}.lock"));
    let lock = layout::lock(&lock_path)?;
    let made = (|| {
        std::fs::create_dir(&making).map_err(|e| Error::io_path("create directory", &making, e))?;
        fill(state, &repo, from, &making)
    })();
    let out = match made {
        Ok(Ok(meta)) => {
            let dest = pool.join(format!("{}-{suffix}", &meta.commit[..12]));
            match crate::platform::rename_no_replace(&making, &dest) {
                Ok(()) => Ok(Ok(layout::Spare { path: dest, meta })),
                Err(e) => Err(Error::io_path("publish the spare", &dest, e)),
            }
        }
        Ok(Err(why)) => Ok(Err(why)),
        Err(e) => Err(e),
    };
    if !matches!(out, Ok(Ok(_))) {
        let _ = std::fs::remove_dir_all(&making);
    }
    let _ = std::fs::remove_file(&lock_path);
    drop(lock);
    out
}

/// Files, index, node_modules and the marker into `dir` (empty). `Ok(Err)`: this tree gets no
/// spare.
fn fill(
    state: &ManagerState,
    repo: &git2::Repository,
    from: &ResolvedFrom,
    dir: &Path,
) -> Result<std::result::Result<SpareMeta, NotMade>> {
    let settings = &state.settings;
    let options = checkout::CheckoutOptions {
        workers: settings.checkout_threads(),
        folding: None,
        git_program: Some(settings.git_program.clone()),
    };
    let written = match checkout::checkout_tree_with(repo.commondir(), from.tree, dir, &options) {
        Ok(w) => w,
        Err(CheckoutError::NeedsCli(why)) => return Ok(Err(NotMade::NeedsCli(why))),
        Err(CheckoutError::Failed(e)) => return Err(e),
    };
    let marker = layout::marker_dir(dir);
    std::fs::create_dir(&marker).map_err(|e| Error::io_path("create directory", &marker, e))?;
    checkout::write_index(&marker.join("index"), &written)?;
    let bytes: u64 = written
        .entries
        .iter()
        .filter(|e| e.mode & 0o170000 == 0o100000)
        .map(|e| e.stat.st_size as u64)
        .sum();
    let key = tree_key_inputs(repo, from.tree)?.map(|i| i.key());
    let node_modules_files = restore_node_modules(state, key.as_ref(), dir);
    let meta = layout::new_meta(
        from.commit,
        &from.ref_name,
        key.map(|k| k.as_str().to_string()),
        node_modules_files,
        bytes,
        written.entries.len(),
    );
    std::fs::File::create(layout::spare_lock_path(dir))
        .map_err(|e| Error::io_path("create", layout::spare_lock_path(dir), e))?;
    layout::write_meta(dir, &meta)?;
    Ok(Ok(meta))
}

/// node_modules of `key` restored from the cache into the spare `dir` (which has none), when the
/// cache holds that entry and the tree has no `node_modules` of its own: the files restored, or
/// `None` (nothing restored; a failed restore is removed again).
pub(super) fn restore_node_modules(
    state: &ManagerState,
    key: Option<&crate::cache::CacheKey>,
    dir: &Path,
) -> Option<u64> {
    let (Some(key), Some(cache)) = (key, &state.cache) else {
        return None;
    };
    if !cache.contains(key) || std::fs::symlink_metadata(dir.join("node_modules")).is_ok() {
        return None;
    }
    let target: PathBuf = dir.join("node_modules");
    let opts = RestoreOptions {
        method: state.settings.cache_method,
        ..Default::default()
    };
    match cache.restore(key, &target, &opts) {
        Ok(stats) => Some(stats.files),
        Err(e) => {
            tracing::warn!("pool: node_modules not restored into a spare: {e}");
            let _ = std::fs::remove_dir_all(&target);
            None
        }
    }
}
