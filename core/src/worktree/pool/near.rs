//! Near spares: a spare of an older commit brought to a newer one by a two-tree update, so a
//! creation (or a refill) whose ref moved since the spare was made pays for the change, not for
//! the project.
//!
//! [`plan`] diffs the spare's tree with the new one (git2, identical subtrees skipped by id) and
//! checks, before anything is touched, that the change is one our checkout would write: at most
//! `poolNearMaxChanges` paths, names git accepts, no `.gitattributes` changed, no two names one
//! file on this filesystem, nothing named like our marker. [`apply`] then writes it into the
//! spare's folder: removed paths unlinked (and the folders they leave empty), new and changed
//! ones written beside their place and renamed over it (blobs by the checkout's `Objects`, links
//! as links, submodules as empty folders), every path opened through [`ConfinedDir`], never
//! through a link; then the spare's index, read once (before anything is touched) and written
//! once: the changed entries with the stat data of what was written (every other entry copied
//! as it was), and its cache-tree rebuilt from the unchanged folders' old records and the
//! changed folders' trees. An index the reader refuses (not version 2, an extension but `TREE`,
//! a damaged checksum: `checkout::IndexFile`) fails the update, so the spare is discarded.
//!
//! Owns: the changed paths of the spare it is given and that spare's index. Must not touch any
//! other path of the spare (node_modules is the caller's), the repository or a registration.

use super::layout;
use crate::platform::ConfinedDir;
use crate::worktree::checkout::{self, CheckedOut, NameFolding, Objects, WrittenTree};
use crate::{Error, Result};
use git2::{Delta, Oid, Repository};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The most changed paths a near update is worth for a project of `tracked_files` files:
/// `poolNearMaxChanges`, and never more than half the tracked files. Measured (docs/worktree.md,
/// "Pool"): the update costs ~0.1 ms per changed path where a warm creation costs ~0.05 ms per
/// tracked file, so past about half the project a normal creation is faster.
pub fn max_changes(settings: &crate::worktree::WorktreeSettings, tracked_files: usize) -> usize {
    settings.pool_near_max_changes.min(tracked_files / 2)
}

/// One changed path: what the spare has there (`old`) and what it gets (`new`), as (mode, id).
#[derive(Debug, Clone)]
pub struct Change {
    /// Path relative to the worktree, `/`-separated.
    pub path: Vec<u8>,
    /// The spare's entry, if it has one.
    pub old: Option<(u32, Oid)>,
    /// The new tree's entry, if it has one.
    pub new: Option<(u32, Oid)>,
}

/// A difference update, checked: what [`apply`] writes.
#[derive(Debug, Clone)]
pub struct NearPlan {
    /// The spare's commit and tree.
    pub old_commit: Oid,
    /// The commit the spare is brought to.
    pub new_commit: Oid,
    /// Its tree.
    pub new_tree: Oid,
    /// The changed paths, in diff order.
    pub changes: Vec<Change>,
}

/// The difference update, for a spare in the pool of the worktree base `base`, from `old_commit` to `new_commit`/`new_tree`, or why there is none
/// (too many changes, a change our checkout would not write, the old commit gone). Reads only.
pub fn plan(
    repo: &Repository,
    base: &Path,
    old_commit: Oid,
    new_commit: Oid,
    new_tree: Oid,
    max_changes: usize,
) -> std::result::Result<NearPlan, String> {
    let old_tree = repo
        .find_commit(old_commit)
        .and_then(|c| c.tree())
        .map_err(|_| format!("commit {old_commit} is gone"))?;
    let tree = repo.find_tree(new_tree).map_err(|e| e.to_string())?;
    let mut opts = git2::DiffOptions::new();
    opts.include_typechange(true);
    let diff = repo
        .diff_tree_to_tree(Some(&old_tree), Some(&tree), Some(&mut opts))
        .map_err(|e| e.to_string())?;
    let n = diff.deltas().len();
    if n > max_changes {
        return Err(format!(
            "{n} changed paths, poolNearMaxChanges is {max_changes}"
        ));
    }
    if let Ok(Some(why)) = checkout::cli_reason(repo, new_tree) {
        return Err(why);
    }
    let folding = folding(repo, base);
    let mut changes = Vec::with_capacity(n);
    for d in diff.deltas() {
        let side = |f: git2::DiffFile<'_>| (u32::from(f.mode()), f.id());
        let old = (d.status() != Delta::Added).then(|| side(d.old_file()));
        let new = (d.status() != Delta::Deleted).then(|| side(d.new_file()));
        let path = d
            .new_file()
            .path_bytes()
            .or(d.old_file().path_bytes())
            .unwrap_or_default()
            .to_vec();
        let shown = String::from_utf8_lossy(&path).into_owned();
        let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        if parts.iter().any(|p| checkout::unsafe_name(p))
            || parts[0] == layout::MARKER_DIR.as_bytes()
            || parts.len() > crate::worktree::checkout::DEFAULT_MAX_TREE_DEPTH
        {
            return Err(format!("unusual path {shown}"));
        }
        if parts.last() == Some(&&b".gitattributes"[..]) {
            return Err(format!("{shown} changed"));
        }
        if let Some((mode, _)) = new {
            if !matches!(mode, 0o100644 | 0o100755 | 0o120000 | 0o160000) {
                return Err(format!("entry {shown} has mode {mode:o}"));
            }
            if old.is_none() && folding.folds() {
                let parent = &path[..path.len() - parts[parts.len() - 1].len()];
                let sub;
                let in_tree = if parent.is_empty() {
                    &tree
                } else {
                    let p = Path::new(OsStr::from_bytes(&parent[..parent.len() - 1]));
                    sub = tree
                        .get_path(p)
                        .and_then(|e| e.to_object(repo))
                        .and_then(|o| o.peel_to_tree())
                        .map_err(|e| e.to_string())?;
                    &sub
                };
                let names: Vec<Vec<u8>> = in_tree.iter().map(|e| e.name_bytes().to_vec()).collect();
                if folding.collision(names.iter().map(|n| &n[..])).is_some() {
                    return Err(format!("{shown} is one file with another name here"));
                }
            }
        }
        changes.push(Change { path, old, new });
    }
    Ok(NearPlan {
        old_commit,
        new_commit,
        new_tree,
        changes,
    })
}

/// How names compare in the worktrees of `base`: the repository's config, or the base as
/// probed (both folding when it cannot be probed).
fn folding(repo: &Repository, base: &Path) -> NameFolding {
    let from_config = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map(|c| NameFolding::from_config(&c))
        .unwrap_or(NameFolding::EXACT);
    from_config.or(NameFolding::of_folder(base).unwrap_or(NameFolding {
        case: true,
        unicode: true,
    }))
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Applied {
    /// Paths removed.
    pub removed: usize,
    /// Paths written.
    pub written: usize,
}

/// Writes `plan` into the spare (or claimed folder) `dir`, whose index is
/// `<dir>/.vibetrees-spare/index`. On an error the folder is half-updated: the caller discards
/// it (its index is removed first here, so it is never given back as whole).
pub fn apply(
    repo: &Repository,
    dir: &Path,
    plan: &NearPlan,
    git_program: &Path,
) -> Result<Applied> {
    let index_path = layout::marker_dir(dir).join("index");
    let done = apply_inner(repo, dir, &index_path, plan, git_program);
    if done.is_err() {
        let _ = std::fs::remove_file(&index_path);
    }
    done
}

fn apply_inner(
    repo: &Repository,
    dir: &Path,
    index_path: &Path,
    plan: &NearPlan,
    git_program: &Path,
) -> Result<Applied> {
    // the spare's index, read once and checked before anything is touched: one we cannot
    // update exactly (not ours, damaged) fails the claim here
    let old_index = checkout::IndexFile::read(index_path)?;
    let root = ConfinedDir::open(dir)?;
    let mut applied = Applied::default();
    // removals first (a file that becomes a folder, and back), then the writes
    for c in &plan.changes {
        let replaced_same_kind = matches!((c.old, c.new), (Some((o, _)), Some((n, _)))
            if kind(o) == kind(n) && kind(o) != 0o160000);
        if let Some((mode, _)) = c.old
            && !replaced_same_kind
        {
            remove(&root, &c.path, mode == 0o160000)?;
            applied.removed += 1;
        }
    }
    let cfg = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map_err(|e| Error::git("read git config", e))?;
    let big = cfg
        .get_i64("core.bigFileThreshold")
        .ok()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(checkout::DEFAULT_BIG_FILE_THRESHOLD);
    let mut objects = Objects::new(repo, repo.commondir(), git_program, big)?;
    let mut written = Vec::new();
    for c in &plan.changes {
        if let Some((mode, id)) = c.new {
            let st = write(&root, &mut objects, repo, &c.path, mode, id)?;
            written.push(CheckedOut {
                path: c.path.clone(),
                mode,
                id,
                stat: st,
            });
            applied.written += 1;
        }
    }
    // the index in one write: the changed entries out, the written ones in, every other entry
    // copied as it was, and the cache-tree of the new tree (the unchanged folders' records
    // reused)
    let mut trees = Vec::new();
    folders(
        repo,
        plan.new_tree,
        Vec::new(),
        old_index.cache_tree(),
        &mut trees,
    )?;
    let changed: Vec<&[u8]> = plan.changes.iter().map(|c| &c.path[..]).collect();
    checkout::write_updated_index(index_path, &old_index, &changed, written, &trees)?;
    Ok(applied)
}

fn kind(mode: u32) -> u32 {
    mode & 0o170000
}

/// Splits `path` into its parent folder (`None` at the top) and its name.
fn split(path: &[u8]) -> (Option<&Path>, &OsStr) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (
            Some(Path::new(OsStr::from_bytes(&path[..i]))),
            OsStr::from_bytes(&path[i + 1..]),
        ),
        None => (None, OsStr::from_bytes(path)),
    }
}

fn io_err(what: &str, path: &[u8], e: rustix::io::Errno) -> Error {
    Error::io(
        format!("{what} {}", String::from_utf8_lossy(path)),
        std::io::Error::from(e),
    )
}

/// Removes the entry `path` (a folder for a submodule, which must be empty), then the folders it
/// leaves empty, up to the top. A path already gone is fine.
fn remove(root: &ConfinedDir, path: &[u8], folder: bool) -> Result<()> {
    let (parent, name) = split(path);
    let pdir = match parent {
        Some(p) => match root.open_dir(p) {
            Ok(d) => Some(d),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(());
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let at = pdir.as_ref().map_or(root.as_fd(), |d| d.as_fd());
    let flags = if folder {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    match rustix::fs::unlinkat(at, name, flags) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(io_err("remove", path, e)),
    }
    // the folders left empty, deepest first (git removes them too)
    let mut p = parent.map(Path::to_path_buf);
    while let Some(folder) = p {
        let (up, last) = split(folder.as_os_str().as_bytes());
        let up_dir = up.map(|u| root.open_dir(u)).transpose()?;
        let at = up_dir.as_ref().map_or(root.as_fd(), |d| d.as_fd());
        match rustix::fs::unlinkat(at, last, AtFlags::REMOVEDIR) {
            Ok(()) => p = up.map(Path::to_path_buf),
            Err(rustix::io::Errno::NOTEMPTY | rustix::io::Errno::EXIST) => break,
            Err(e) => {
                return Err(io_err(
                    "remove the folder",
                    folder.as_os_str().as_bytes(),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// Writes entry `path` (`mode`, `id`) beside its place and renames it over it; returns its
/// `lstat` there.
fn write(
    root: &ConfinedDir,
    objects: &mut Objects<'_>,
    repo: &Repository,
    path: &[u8],
    mode: u32,
    id: Oid,
) -> Result<rustix::fs::Stat> {
    let (parent, name) = split(path);
    let pdir = match parent {
        Some(p) => {
            root.create_dir_all(p, 0o777)?;
            Some(root.open_dir(p)?)
        }
        None => None,
    };
    let at = pdir.as_ref().map_or(root.as_fd(), |d| d.as_fd());
    let tmp = format!(".vt-near-{}-{id}", std::process::id());
    let shown = || String::from_utf8_lossy(path).into_owned();
    match kind(mode) {
        0o100000 => {
            let exec = mode & 0o111 != 0;
            let file = rustix::fs::openat(
                at,
                &tmp,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(if exec { 0o777 } else { 0o666 }),
            )
            .map_err(|e| io_err("create a file beside", path, e))?;
            let wrote = objects.write_blob(id, &file, shown);
            drop(file);
            if let Err(e) = wrote {
                let _ = rustix::fs::unlinkat(at, &tmp, AtFlags::empty());
                return Err(e);
            }
        }
        0o120000 => {
            let blob = repo
                .find_blob(id)
                .map_err(|e| Error::git(format!("read link {}", shown()), e))?;
            rustix::fs::symlinkat(OsStr::from_bytes(blob.content()), at, &tmp)
                .map_err(|e| io_err("create a link beside", path, e))?;
        }
        _ => {
            // a submodule: an empty folder, as `git worktree add` leaves it
            match rustix::fs::mkdirat(at, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(io_err("create directory", path, e)),
            }
            return rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io_err("stat", path, e));
        }
    }
    // the rename replaces a file or a link itself (never its target); the stat is taken after
    // it, as the rename changes the ctime
    if let Err(e) = rustix::fs::renameat(at, &tmp, at, name) {
        let _ = rustix::fs::unlinkat(at, &tmp, AtFlags::empty());
        return Err(io_err("replace", path, e));
    }
    rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW).map_err(|e| io_err("stat", path, e))
}

/// The folders of `tree` at `prefix` for the cache-tree: copied from `old` (the spare's
/// records) where the folder's id is unchanged, read from the tree where it changed.
fn folders(
    repo: &Repository,
    tree: Oid,
    prefix: Vec<u8>,
    old: &HashMap<Vec<u8>, WrittenTree>,
    out: &mut Vec<WrittenTree>,
) -> Result<()> {
    if let Some(t) = old.get(&prefix).filter(|t| t.id == tree) {
        let mark = out.len();
        if copy(t, old, out) {
            return Ok(());
        }
        out.truncate(mark);
    }
    let t = repo
        .find_tree(tree)
        .map_err(|e| Error::git(format!("tree {tree}"), e))?;
    let mut files = 0;
    let mut subs = Vec::new();
    for e in t.iter() {
        if e.kind() == Some(git2::ObjectType::Tree) {
            subs.push((e.name_bytes().to_vec(), e.id()));
        } else {
            files += 1;
        }
    }
    out.push(WrittenTree {
        prefix: prefix.clone(),
        id: tree,
        files,
        subtrees: subs
            .iter()
            .map(|(n, _)| n.clone().into_boxed_slice())
            .collect(),
    });
    for (name, id) in subs {
        let mut p = prefix.clone();
        p.extend_from_slice(&name);
        p.push(b'/');
        folders(repo, id, p, old, out)?;
    }
    Ok(())
}

/// Copies `t` and every folder below it from `old`; false when one is missing there.
fn copy(t: &WrittenTree, old: &HashMap<Vec<u8>, WrittenTree>, out: &mut Vec<WrittenTree>) -> bool {
    out.push(t.clone());
    t.subtrees.iter().all(|s| {
        let mut p = t.prefix.clone();
        p.extend_from_slice(s);
        p.push(b'/');
        old.get(&p).is_some_and(|c| copy(c, old, out))
    })
}
