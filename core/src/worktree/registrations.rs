//! The worktrees registered in a repository (`.git/worktrees/<name>`), as listing, removal and
//! crash recovery read them: where each one is, its lock reason, its branch, and whether our
//! creation of it is unfinished. Read from the registration's own files, a few small reads each
//! (libgit2's lookup opens each worktree: too slow beside dozens of them). Also the two writes
//! recovery needs: pruning one registration and removing the lock of one.

use super::checkout;
use super::recovery::CREATING_REASON;
use crate::{Error, Result};
use git2::{Repository, WorktreeLockStatus, WorktreePruneOptions};
use std::path::{Path, PathBuf};

/// One registered worktree of the repository.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Its name under `.git/worktrees/`.
    pub name: String,
    /// Its folder as registered.
    pub path: PathBuf,
    /// Whether that folder exists.
    pub folder_exists: bool,
    /// The lock reason, if locked.
    pub lock: Option<String>,
    /// The branch checked out there (short name), if any.
    pub branch: Option<String>,
}

impl Registration {
    /// True if this worktree's creation started and never finished.
    pub fn half_made(&self) -> bool {
        self.lock
            .as_deref()
            .is_some_and(|r| r.starts_with(CREATING_REASON))
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    let ca = std::fs::canonicalize(a).unwrap_or_else(|_| a.to_path_buf());
    let cb = std::fs::canonicalize(b).unwrap_or_else(|_| b.to_path_buf());
    ca == cb || a == b
}

/// True for a registration that libgit2's `git_worktree_add` (lock on; older versions registered
/// with it) made and [`checkout::register`] did not finish (its creator was killed in that
/// millisecond): an empty `locked` file and libgit2's absolute `commondir`, which the git CLI
/// never writes, and named by our own marker of a registration in progress
/// ([`checkout::left_registering`]): another tool's worktree locked without a reason is never
/// taken for ours.
fn libgit2_registration_unfinished(repo: &Repository, name: &str, gitdir: &Path) -> bool {
    std::fs::read(gitdir.join("commondir")).is_ok_and(|c| c.starts_with(b"/"))
        && checkout::left_registering(repo.commondir()).as_deref() == Some(name)
}

/// Every linked worktree registered in the repository: each `.git/worktrees/<name>` with a
/// `gitdir` file. Read from those files directly (`gitdir`, `locked`, `HEAD`), a few small reads
/// each: libgit2's lookup opens each worktree, and a creation reads this list twice, so with
/// dozens of worktrees it cost more than the rest of the registration.
pub fn registrations(repo: &Repository) -> Result<Vec<Registration>> {
    let worktrees = repo.commondir().join("worktrees");
    let rd = match std::fs::read_dir(&worktrees) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io_path("list", &worktrees, e)),
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(r) = read_registration(repo, &entry.path(), name) {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The registration in the folder `gitdir` (`.git/worktrees/<name>`), from its files; `None`
/// without a readable `gitdir` file.
fn read_registration(repo: &Repository, gitdir: &Path, name: String) -> Option<Registration> {
    // the worktree's `.git`, absolute or (worktree.useRelativePaths) relative to `gitdir`
    let path = std::fs::read_to_string(gitdir.join("gitdir"))
        .ok()
        .map(|g| gitdir.join(g.trim_end_matches(['\n', '\r'])))
        .and_then(|dot_git| dot_git.parent().map(normalize))?;
    let lock = match std::fs::read_to_string(gitdir.join("locked")) {
        Ok(r) if r.trim().is_empty() && libgit2_registration_unfinished(repo, &name, gitdir) => {
            Some(format!(
                "{CREATING_REASON} (libgit2 registration unfinished)"
            ))
        }
        Ok(r) => Some(r),
        Err(_) => None,
    };
    let branch = std::fs::read_to_string(gitdir.join("HEAD"))
        .ok()
        .and_then(|h| {
            h.trim()
                .strip_prefix("ref: refs/heads/")
                .map(|s| s.to_string())
        });
    Some(Registration {
        folder_exists: path.join(".git").exists(),
        name,
        path,
        lock,
        branch,
    })
}

/// The registration the worktree at `path` names in its `.git` file (`gitdir:
/// <common>/worktrees/<name>`), when that registration names `path` back: one registration read
/// instead of all of them (a creation asks this a few times; with 200 worktrees the scan cost
/// ~1.5 ms each). `None` when there is no such pair (no `.git` file, a link, another
/// repository's, a registration that points elsewhere): the caller scans.
fn registration_named_by(repo: &Repository, path: &Path) -> Option<Registration> {
    let dot_git = path.join(".git");
    if !std::fs::symlink_metadata(&dot_git).ok()?.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let target = Path::new(
        text.strip_prefix("gitdir: ")?
            .trim_end_matches(['\n', '\r']),
    );
    let gitdir = normalize(&path.join(target));
    let name = gitdir.file_name()?.to_str()?.to_string();
    let worktrees = repo.commondir().join("worktrees");
    if name.starts_with('.') || !same_path(gitdir.parent()?, &worktrees) {
        return None;
    }
    let r = read_registration(repo, &worktrees.join(&name), name)?;
    same_path(&r.path, path).then_some(r)
}

/// `path` with its `.` and `..` components folded lexically (a relative `gitdir` is joined to
/// the registration's folder), without resolving links.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The registration whose folder is `path`, if any.
pub fn registration_at(repo: &Repository, path: &Path) -> Result<Option<Registration>> {
    if let Some(r) = registration_named_by(repo, path) {
        return Ok(Some(r));
    }
    Ok(registrations(repo)?
        .into_iter()
        .find(|r| same_path(&r.path, path)))
}

/// Removes the registration `name` (its `.git/worktrees/<name>` folder), locked or not, whether or
/// not its folder exists. Never touches the worktree's folder.
pub fn prune_registration(repo: &Repository, name: &str) -> Result<()> {
    let pruned = repo.find_worktree(name).and_then(|wt| {
        let mut opts = WorktreePruneOptions::new();
        opts.valid(true).locked(true).working_tree(false);
        wt.prune(Some(&mut opts))
    });
    match pruned {
        Ok(()) => Ok(()),
        // A registration half-written by a process killed inside libgit2's worktree add (no
        // `commondir` yet, ...) cannot be opened, so libgit2 cannot prune it: its folder goes.
        Err(e) => {
            let dir = repo.commondir().join("worktrees").join(name);
            if name.is_empty() || name.contains('/') || !dir.is_dir() {
                return Err(Error::git(format!("prune worktree {name:?}"), e));
            }
            std::fs::remove_dir_all(&dir).map_err(|io| Error::io_path("remove", &dir, io))
        }
    }
}

/// Removes the lock of the worktree registered at `path` (its registration's name may differ
/// from the folder's: `<name>1`, ... when the name was taken).
pub fn unlock_at(repo: &Repository, path: &Path) -> Result<()> {
    match registration_at(repo, path)? {
        Some(r) => unlock(repo, &r.name),
        None => Err(Error::NotFound(format!(
            "worktree registration of {}",
            path.display()
        ))),
    }
}

/// Removes the lock of worktree `name` (the mark of a creation in progress).
pub fn unlock(repo: &Repository, name: &str) -> Result<()> {
    let wt = repo
        .find_worktree(name)
        .map_err(|e| Error::git(format!("find worktree {name:?}"), e))?;
    match wt.is_locked() {
        Ok(WorktreeLockStatus::Locked(_)) => wt
            .unlock()
            .map_err(|e| Error::git(format!("unlock worktree {name:?}"), e)),
        _ => Ok(()),
    }
}
