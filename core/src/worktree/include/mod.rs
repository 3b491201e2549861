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

pub use copy::{
    COPY_WORKERS, DIRECT_COPY_WORKERS, Deferred, IncludeCopied, copy_selected, copy_workers,
    use_direct_io,
};
pub use select::{EntryKind, Selected, SelectedEntry, select};

use crate::{Error, Result};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::path::Path;

/// The file at the project root that names the ignored paths to copy.
pub const INCLUDE_FILE: &str = ".worktreeinclude";

/// The comment directive that marks a pattern for the background (other tools read it as a
/// comment): `#vibetrees:background target/` copies `target/` after ready.
pub const BACKGROUND_DIRECTIVE: &str = "#vibetrees:background ";

/// The patterns of one project: `.worktreeinclude`'s lines, then the host's; and those of them
/// copied in the background after ready.
pub struct IncludeRules {
    matcher: Gitignore,
    background: Option<Gitignore>,
    patterns: usize,
}

impl IncludeRules {
    /// Rules from the text of `.worktreeinclude` (if any) and the host's extra patterns, for a
    /// project at `root`. `None` when there is no pattern at all (nothing to copy).
    /// Errors: [`Error::Parse`] naming a pattern the gitignore syntax refuses.
    pub fn new(root: &Path, file_text: Option<&str>, extra: &[String]) -> Result<Option<Self>> {
        Self::with_background(root, file_text, extra, &[])
    }

    /// [`new`](Self::new), plus the host's patterns to copy in the background after ready
    /// (`includeBackground`; they are copied, so they count as include patterns too), beside the
    /// file's [`BACKGROUND_DIRECTIVE`] lines.
    pub fn with_background(
        root: &Path,
        file_text: Option<&str>,
        extra: &[String],
        background: &[String],
    ) -> Result<Option<Self>> {
        let mut b = GitignoreBuilder::new(root);
        let mut bg = GitignoreBuilder::new(root);
        let (mut patterns, mut bg_patterns) = (0, 0);
        let lines = file_text
            .into_iter()
            .flat_map(str::lines)
            .map(|l| (INCLUDE_FILE, l, false))
            .chain(
                extra
                    .iter()
                    .map(|l| ("the include option", l.as_str(), false)),
            )
            .chain(
                background
                    .iter()
                    .map(|l| ("the includeBackground option", l.as_str(), true)),
            );
        for (from, line, in_background) in lines {
            let (t, in_background) = match line.strip_prefix(BACKGROUND_DIRECTIVE) {
                Some(rest) => (rest.trim(), true),
                None => (line.trim_end(), in_background),
            };
            if t.trim().is_empty() || t.starts_with('#') {
                continue;
            }
            let bad = |e: ignore::Error| Error::Parse {
                what: from.to_string(),
                message: format!("pattern {t:?}: {e}"),
            };
            b.add_line(None, t).map_err(bad)?;
            patterns += 1;
            if in_background {
                bg.add_line(None, t).map_err(bad)?;
                bg_patterns += 1;
            }
        }
        if patterns == 0 {
            return Ok(None);
        }
        let matcher = b.build().map_err(|e| Error::Parse {
            what: INCLUDE_FILE.to_string(),
            message: e.to_string(),
        })?;
        let background = if bg_patterns == 0 {
            None
        } else {
            Some(bg.build().map_err(|e| Error::Parse {
                what: INCLUDE_FILE.to_string(),
                message: e.to_string(),
            })?)
        };
        Ok(Some(Self {
            matcher,
            background,
            patterns,
        }))
    }

    /// How many patterns there are.
    pub fn len(&self) -> usize {
        self.patterns
    }

    /// Never true: rules without patterns are `None` (see [`IncludeRules::new`]).
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Whether the entry `rel` is copied in the background after ready.
    pub fn in_background(&self, rel: &Path, is_dir: bool) -> bool {
        self.background
            .as_ref()
            .is_some_and(|g| g.matched_path_or_any_parents(rel, is_dir).is_ignore())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negations_directives_and_the_background() {
        let r = IncludeRules::with_background(
            Path::new("/p"),
            Some("# a comment\n.env.local\ncerts/\n!certs/*.key\n#vibetrees:background target/\n"),
            &["extra/".into()],
            &[".turbo/".into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r.matches(Path::new(".env.local"), false), Some(true));
        assert_eq!(r.matches(Path::new("certs/a.pem"), false), Some(true));
        assert_eq!(r.matches(Path::new("certs/a.key"), false), Some(false));
        assert_eq!(r.matches(Path::new("src/x.js"), false), None);
        assert_eq!(r.matches(Path::new("target/debug/x"), false), Some(true));
        assert!(r.in_background(Path::new("target"), true));
        assert!(r.in_background(Path::new(".turbo"), true));
        assert!(!r.in_background(Path::new("certs"), true));
        assert!(
            IncludeRules::new(Path::new("/p"), Some("# only a comment\n"), &[])
                .unwrap()
                .is_none()
        );
    }
}
