//! A worktree made the fast way: registration through libgit2 and a parallel checkout of our own
//! over git2's object database, as an alternative to `git worktree add` (see
//! [`super::git::add_worktree`], which chooses between them, and docs/worktree.md for the
//! measurements).
//!
//! This module owns what a checkout *is* (the shared types below) and re-exports each part's
//! public functions under the names callers have always used (`checkout::register`,
//! `checkout::checkout_tree`, ...). Each part owns one concern and touches nothing of the others':
//!
//! - `register.rs`: the registration under `.git/worktrees/<name>` (its files written as the
//!   git CLI writes them, the registration lock, the files beside HEAD); never the worktree's
//!   files.
//! - `eligibility.rs`: whether the repository or tree needs the git CLI's checkout (attributes,
//!   conversion config, names git refuses); reads only, decides only.
//! - `folding.rs`: which names the worktree's filesystem takes for one (case, Unicode
//!   normalisation): probed once per worktree base, and from `core.ignorecase` and
//!   `core.precomposeunicode`; a folder with such twins goes to the git CLI.
//! - `hook.rs`: the `post-checkout` hook git would run, run the way git runs it.
//! - `writer.rs`: the work-stealing writer of a tree's files ([`checkout_tree`]), relative to open
//!   directory fds; it writes inside the destination folder only.
//! - `blob.rs`: the objects a writer thread reads, and each blob into its file with bounded
//!   memory (loose ones inflated chunk by chunk, big packed ones streamed by `git cat-file`).
//! - `index.rs`: the worktree's index file, written by us in one write (version 2 entries, the
//!   cache-tree extension, the checksum), for a new worktree or a near spare's update; never the
//!   files.
//! - `index_read.rs`: an index file we wrote, read back once and checked (version 2, our one
//!   extension, the checksum), for a near spare's update; reads only.
//! - [`loose`] (`loose.rs`): loose objects read straight from the objects folder (the writer's
//!   hot path).
//!
//! It must not touch anything outside the new worktree's folder and its own registration
//! (the caller, `git.rs`, owns branches, locks' lifetimes and the choice of the CLI).

mod blob;
mod eligibility;
mod folding;
mod hook;
mod index;
mod index_read;
#[cfg(test)]
mod index_tests;
pub mod loose;
mod register;
mod writer;

pub(crate) use blob::{DEFAULT_BIG_FILE_THRESHOLD, Objects};
pub(crate) use eligibility::unsafe_name;
pub use eligibility::{attributes_change_checkout, cli_reason};
pub use folding::NameFolding;
pub use hook::{post_checkout_hook, run_post_checkout_hook};
pub use index::{cache_tree_extension, write_index, write_updated_index};
pub use index_read::{IndexEntryRef, IndexFile};
pub use register::{
    left_registering, plain_name, register, register_claimed, registration_lock, unregister,
    write_head_files,
};
pub use writer::{CheckoutOptions, DEFAULT_MAX_TREE_DEPTH, checkout_tree, checkout_tree_with};

use crate::Error;
use git2::Oid;
use std::path::{Path, PathBuf};

/// How a worktree's files were checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMethod {
    /// Registration by libgit2, files by [`checkout_tree`] (our parallel checkout).
    Git2Parallel,
    /// `git worktree add` (registration and checkout by the git CLI).
    GitCli,
}

impl CheckoutMethod {
    /// The name used in the task output (`"git2-parallel"` or `"git-cli"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMethod::Git2Parallel => "git2-parallel",
            CheckoutMethod::GitCli => "git-cli",
        }
    }
}

/// One checked-out path with the stat data of what was written (for the index).
#[derive(Debug, Clone)]
pub struct CheckedOut {
    /// Path relative to the worktree, `/`-separated.
    pub path: Vec<u8>,
    /// Index mode: `0o100644`, `0o100755`, `0o120000` or `0o160000`.
    pub mode: u32,
    /// The blob (or, for a gitlink, the commit).
    pub id: Oid,
    /// `lstat` of what was written.
    pub stat: rustix::fs::Stat,
}

/// A folder [`checkout_tree`] wrote: what the index's cache-tree (`TREE` extension) records
/// of it, as `git worktree add` records it (git's `prime_cache_tree`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTree {
    /// Path relative to the worktree with a trailing `/` (empty at the top).
    pub prefix: Vec<u8>,
    /// The tree it was written from.
    pub id: Oid,
    /// Its entries that are not folders (files, symlinks, submodules).
    pub files: usize,
    /// Names of its subfolders, in tree order.
    pub subtrees: Vec<Box<[u8]>>,
}

/// What [`checkout_tree`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Every entry, sorted in index order, with its stat data.
    pub entries: Vec<CheckedOut>,
    /// Every folder (any order).
    pub trees: Vec<WrittenTree>,
}

/// Why [`checkout_tree`] stopped without an I/O or object error.
#[derive(Debug)]
pub enum CheckoutError {
    /// A `.gitattributes` that changes the checkout (eol, filters, ...; see
    /// [`attributes_change_checkout`]) or an unusual entry was found: the caller must use the git
    /// CLI.
    NeedsCli(String),
    /// A real failure (object missing, disk full, a path in the way, ...).
    Failed(Error),
}

impl From<Error> for CheckoutError {
    fn from(e: Error) -> Self {
        CheckoutError::Failed(e)
    }
}

/// `p` with a leading `~/` replaced by `$HOME/` (git's reading of paths in its config).
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => Path::new(&h).join(rest),
        _ => PathBuf::from(p),
    }
}
