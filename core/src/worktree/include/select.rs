//! Which paths of the main worktree are copied: a walk of its folders (never following a link)
//! that keeps what the include rules name **and** git ignores, minus tracked files. A folder
//! that is named and ignored becomes one entry (copied whole, with its listing: negated and
//! tracked paths inside left out); a file or symlink becomes one entry. Never descends into
//! `.git`, `node_modules` (the cache's job) or the worktree base.

use super::IncludeRules;
use crate::cache::listing::ListingWriter;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What one selected entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder, copied whole (what its listing holds).
    Dir,
    /// A symbolic link, copied as a link (never followed).
    Symlink,
}

/// One path to copy, relative to the worktree root.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectedEntry {
    /// The path, relative to the root.
    pub path: PathBuf,
    /// File, folder or symlink.
    pub kind: EntryKind,
    /// Regular files in it (1 for a file).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// For a folder: its listing (the cache's format) of what is copied.
    #[serde(skip)]
    pub listing: Option<Vec<u8>>,
}

/// Everything selected.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selected {
    /// The entries, in walk order.
    pub entries: Vec<SelectedEntry>,
    /// Regular files in all entries.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Names never walked into nor copied.
const NEVER: &[&str] = &[".git", "node_modules"];

struct Walk<'a> {
    root: &'a Path,
    repo: &'a git2::Repository,
    rules: &'a IncludeRules,
    tracked: HashSet<Vec<u8>>,
    skip_dirs: Vec<PathBuf>,
    out: Selected,
}

/// Walks the main worktree at `root` (the repository `repo`'s workdir) and selects what `rules`
/// name and git ignores. `skip` are absolute folders never walked (the worktree base).
pub fn select(
    root: &Path,
    repo: &git2::Repository,
    rules: &IncludeRules,
    skip: &[PathBuf],
) -> Result<Selected> {
    let index = repo.index().map_err(|e| Error::git("read the index", e))?;
    let tracked = index.iter().map(|e| e.path).collect();
    let mut w = Walk {
        root,
        repo,
        rules,
        tracked,
        skip_dirs: skip.to_vec(),
        out: Selected::default(),
    };
    w.dir(Path::new(""))?;
    Ok(w.out)
}

impl Selected {
    /// Splits off the entries `rules` marks for the background: (now, later).
    pub fn split_background(self, rules: &IncludeRules) -> (Selected, Selected) {
        let (mut now, mut later) = (Selected::default(), Selected::default());
        for e in self.entries {
            let to = if rules.in_background(&e.path, e.kind == EntryKind::Dir) {
                &mut later
            } else {
                &mut now
            };
            to.files += e.files;
            to.bytes += e.bytes;
            to.entries.push(e);
        }
        (now, later)
    }
}

fn read_dir(path: &Path) -> Result<Vec<(std::ffi::OsString, std::fs::Metadata)>> {
    let rd = std::fs::read_dir(path).map_err(|e| Error::io_path("read folder", path, e))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io_path("read folder", path, e))?;
        let meta = std::fs::symlink_metadata(e.path())
            .map_err(|err| Error::io_path("stat", e.path(), err))?;
        v.push((e.file_name(), meta));
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(v)
}

impl Walk<'_> {
    fn ignored(&self, rel: &Path) -> Result<bool> {
        self.repo
            .is_path_ignored(rel)
            .map_err(|e| Error::git(format!("ignore status of {}", rel.display()), e))
    }

    fn is_tracked(&self, rel: &Path) -> bool {
        self.tracked.contains(rel.as_os_str().as_bytes())
    }

    fn dir(&mut self, rel: &Path) -> Result<()> {
        for (name, meta) in read_dir(&self.root.join(rel))? {
            if NEVER.iter().any(|n| name.as_bytes() == n.as_bytes()) {
                continue;
            }
            let child = rel.join(&name);
            let ft = meta.file_type();
            if ft.is_dir() {
                if self.skip_dirs.iter().any(|s| *s == self.root.join(&child)) {
                    continue;
                }
                if self.rules.matches(&child, true) == Some(true) && self.ignored(&child)? {
                    self.folder_entry(child)?;
                } else {
                    self.dir(&child)?;
                }
            } else if (ft.is_file() || ft.is_symlink())
                && self.rules.matches(&child, false) == Some(true)
                && !self.is_tracked(&child)
                && self.ignored(&child)?
            {
                let (kind, files, bytes) = if ft.is_file() {
                    (EntryKind::File, 1, meta.len())
                } else {
                    (EntryKind::Symlink, 0, 0)
                };
                self.out.files += files;
                self.out.bytes += bytes;
                self.out.entries.push(SelectedEntry {
                    path: child,
                    kind,
                    files,
                    bytes,
                    listing: None,
                });
            }
        }
        Ok(())
    }

    /// A named, ignored folder: its listing, less what negations exclude and tracked files.
    fn folder_entry(&mut self, rel: PathBuf) -> Result<()> {
        let meta = std::fs::symlink_metadata(self.root.join(&rel))
            .map_err(|e| Error::io_path("stat", self.root.join(&rel), e))?;
        let mut writer = ListingWriter::new();
        writer.enter_dir(b"", meta.mode());
        let (mut files, mut bytes) = (0, 0);
        self.list(&rel, &mut writer, &mut files, &mut bytes)?;
        writer.leave_dir();
        self.out.files += files;
        self.out.bytes += bytes;
        self.out.entries.push(SelectedEntry {
            path: rel,
            kind: EntryKind::Dir,
            files,
            bytes,
            listing: Some(writer.into_bytes()),
        });
        Ok(())
    }

    fn list(
        &self,
        rel: &Path,
        w: &mut ListingWriter,
        files: &mut u64,
        bytes: &mut u64,
    ) -> Result<()> {
        for (name, meta) in read_dir(&self.root.join(rel))? {
            if NEVER.iter().any(|n| name.as_bytes() == n.as_bytes()) {
                continue;
            }
            let child = rel.join(&name);
            let ft = meta.file_type();
            if self.rules.matches(&child, ft.is_dir()) == Some(false) || self.is_tracked(&child) {
                continue;
            }
            let n = name.as_bytes();
            if ft.is_dir() {
                w.enter_dir(n, meta.mode());
                self.list(&child, w, files, bytes)?;
                w.leave_dir();
            } else if ft.is_file() {
                w.file(
                    n,
                    meta.mode(),
                    meta.len(),
                    (meta.mtime(), meta.mtime_nsec() as u32),
                    meta.ino(),
                );
                *files += 1;
                *bytes += meta.len();
            } else if ft.is_symlink() {
                let p = self.root.join(&child);
                let target =
                    std::fs::read_link(&p).map_err(|e| Error::io_path("read link", &p, e))?;
                w.symlink(n, target.as_os_str().as_bytes());
            }
            // sockets, fifos and devices are not copied
        }
        Ok(())
    }
}
