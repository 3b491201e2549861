//! A pool of ready worktrees (issue 17): spares made before anyone asks, so a
//! creation from their commit only renames one into place and registers it.
//!
//! - [`layout`]: the pool's folder, names, marker and metadata, the locks that tell a live maker
//!   or claimer from a dead one.
//! - [`spare`]: making one spare (files and index by our checkout writer, node_modules from the
//!   cache), published whole by a rename; never registered with git, so neither `git worktree
//!   list` nor `list_worktrees` shows it.
//! - [`claim`]: the claim (one `rename(2)`), the registration written as `git worktree add`
//!   writes it, and giving back a claimed folder whose creation failed first.
//! - [`refill`]: filling for a commit source within `poolSize` and `poolMaxBytes`, in the
//!   background at low priority, yielding to creations; clearing; sweeping dead makers' debris.
//! - [`near`]: near spares: a spare of an older commit of the same ref brought to the new one by
//!   a two-tree update of the changed paths (at a claim, and in the refill).
//!
//! A creation decides claim-or-not before its graph (`create/mod.rs` `prepare`); its
//! `git-worktree-add` and `cache-restore` steps then use the claimed folder. Recovery of a claim
//! killed before its registration is `recovery.rs`'s (through [`layout::claimed_folder`]).
//!
//! Owns: `<worktreeBase>/.pool/` and, until it is registered, a claimed folder. Must not touch
//! anything there without our marks, nor branches or registrations other than the claimer's.
//!
//! Not yet: the bindings' own API.

pub mod claim;
pub mod layout;
pub mod near;
pub mod refill;
pub mod spare;

pub use claim::Claimed;
pub use refill::{FillReport, clear};
pub(crate) use refill::{fill, spawn_refill};

use serde::Serialize;
use std::path::{Path, PathBuf};

/// True when the pool is on: `poolSize` above 0 and our checkout chosen (spares are written by
/// it; `checkout: "cli"` asks for the git CLI's, so nothing is pooled then).
pub fn enabled(settings: &super::WorktreeSettings) -> bool {
    settings.pool_size > 0 && settings.checkout == super::CheckoutChoice::Ours
}

/// One spare, as [`status`] reports it. JSON, camelCase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpareInfo {
    /// Its folder.
    pub path: PathBuf,
    /// The commit it holds.
    pub commit: String,
    /// The ref it was made from.
    pub from: String,
    /// Its node_modules cache key, if the project has one.
    pub cache_key: Option<String>,
    /// Whether node_modules is in it.
    pub node_modules: bool,
    /// Bytes of its checked-out files.
    pub bytes: u64,
    /// Files checked out.
    pub files: usize,
    /// Its age, ms.
    pub age_ms: u64,
}

/// The pool of a project. JSON, camelCase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    /// The pool's folder.
    pub dir: PathBuf,
    /// `poolSize`.
    pub size: usize,
    /// `poolMaxBytes`.
    pub max_bytes: u64,
    /// Bytes the spares hold (their checked-out files).
    pub bytes: u64,
    /// The spares, oldest first.
    pub spares: Vec<SpareInfo>,
}

/// The pool of the worktree base `base` with the settings `size` and `max_bytes`.
pub fn status(base: &Path, size: usize, max_bytes: u64) -> PoolStatus {
    let spares: Vec<SpareInfo> = layout::spares(base)
        .into_iter()
        .map(|s| SpareInfo {
            age_ms: s.meta.age_ms(),
            path: s.path,
            commit: s.meta.commit,
            from: s.meta.from,
            cache_key: s.meta.cache_key,
            node_modules: s.meta.node_modules,
            bytes: s.meta.bytes,
            files: s.meta.files,
        })
        .collect();
    PoolStatus {
        dir: layout::pool_dir(base),
        size,
        max_bytes,
        bytes: spares.iter().map(|s| s.bytes).sum(),
        spares,
    }
}
