//! Copied ignored files: the paths of the main worktree that `.worktreeinclude` (gitignore
//! syntax, as Claude Code, Codex and worktrunk read it) names **and** git ignores, copied into a
//! new worktree: `.env.local`, certificates, `.next/cache`, `.turbo`, a Rust `target/`.
//!
//! - [`IncludeRules`]: the patterns (the file's, then the host's `include` option), matched by
//!   the `ignore` crate's gitignore matcher (negations, `**`, anchored and folder-only patterns).
//! - `select.rs`: which paths of the main worktree are copied ([`select`]); tracked files never,
//!   `node_modules` never (the cache's job), `.git` and the worktree base never.
//! - `copy.rs`: the copy ([`copy_selected`]): by reflink, falling back per file to a plain copy,
//!   never a hardlink, modes, symlinks and mtimes kept, written relative to folder handles and
//!   never through a link, each entry all-or-nothing (built in the creation's staging folder and
//!   renamed into place), folders in parallel by the cache's tree copy (`cache/treecopy.rs`).
//!
//! Must not write into the main worktree, nor replace anything the new worktree already has.

mod copy;
mod select;

pub use copy::{IncludeCopied, copy_selected};
pub use select::{EntryKind, Selected, SelectedEntry, select};

use crate::{Error, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::Path;

/// The file at the project root that names the ignored paths to copy.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// The patterns of one project: `.worktreeinclude`'s lines, then the host's.
pub struct IncludeRules {
    matcher: Gitignore,
    patterns: usize,
}

impl IncludeRules {
    /// Rules from the text of `.worktreeinclude` (if any) and the host's extra patterns, for a
    /// project at `root`. `None` when there is no pattern at all (nothing to copy).
    /// Errors: [`Error::Parse`] naming a pattern the gitignore syntax refuses.
    pub fn new(root: &Path, file_text: Option<&str>, extra: &[String]) -> Result<Option<Self>> {
        let mut b = GitignoreBuilder::new(root);
        let mut patterns = 0;
        let lines = file_text
            .into_iter()
            .flat_map(str::lines)
            .map(|l| (INCLUDE_FILE, l))
            .chain(extra.iter().map(|l| ("the include option", l.as_str())));
        for (from, line) in lines {
            let t = line.trim_end();
            if t.trim().is_empty() || t.starts_with('#') {
                continue;
            }
            b.add_line(None, t).map_err(|e| Error::Parse {
                what: from.to_string(),
                message: format!("pattern {t:?}: {e}"),
            })?;
            patterns += 1;
        }
        if patterns == 0 {
            return Ok(None);
        }
        let matcher = b.build().map_err(|e| Error::Parse {
            what: INCLUDE_FILE.to_string(),
            message: e.to_string(),
        })?;
        Ok(Some(Self { matcher, patterns }))
    }

    /// How many patterns there are.
    pub fn len(&self) -> usize {
        self.patterns
    }

    /// Never true: rules without patterns are `None` (see [`IncludeRules::new`]).
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// `Some(true)`: `rel` (relative to the root) is named by a pattern or is under a named
    /// folder; `Some(false)`: a negation excludes it; `None`: no pattern speaks of it.
    pub fn matches(&self, rel: &Path, is_dir: bool) -> Option<bool> {
        let m = self.matcher.matched_path_or_any_parents(rel, is_dir);
        if m.is_ignore() {
            Some(true)
        } else if m.is_whitelist() {
            Some(false)
        } else {
            None
        }
    }
}

/// The text of `.worktreeinclude` in the commit tree `tree` of `repo`, if there is one (a blob).
pub fn include_file_in_tree(repo: &git2::Repository, tree: git2::Oid) -> Result<Option<String>> {
    text_in_tree(repo, tree, INCLUDE_FILE)
}

/// The text of the file `path` in the tree `tree` (a commit's), if it is there; not UTF-8 is
/// [`Error::Parse`].
pub fn text_in_tree(
    repo: &git2::Repository,
    tree: git2::Oid,
    path: &str,
) -> Result<Option<String>> {
    match crate::worktree::git::read_blob(repo, tree, path)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Parse {
                what: path.to_string(),
                message: "not UTF-8 text".into(),
            }),
    }
}
