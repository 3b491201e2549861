//! Our marker in a worktree's registration, `<gitdir>/vibetrees-created.json`: written when the
//! creation registers the worktree (who creates it: pid, boot, pid namespace), added to by the
//! steps that write files, and completed right after "ready" with what the creation itself wrote into the folder (`.env`, the MCP settings, a
//! lockfile the install rewrote: each file's BLAKE3 hash; `node_modules`: the whole folder).
//!
//! It answers two questions for `removal.rs` and `recovery.rs`: "is this ours, and is its
//! creator still running?" and "are these changes the creation's own, as it wrote them?". The
//! changes check ([`changes`]) is git's (modified, staged, untracked; ignored files do not count,
//! as for `git worktree remove`) minus what the marker lists unchanged.
//!
//! Owns: the marker file. Must not touch anything else in the registration or the folder.

use crate::platform::ProcessWorld;
use crate::{Error, Result};
use git2::{Repository, Status, StatusOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The marker's file name in the registration folder.
pub const MARKER_FILE: &str = "vibetrees-created.json";

/// Untracked folders taken whole (never hashed file by file): the dependencies.
const WHOLE_FOLDERS: &[&str] = &["node_modules"];

/// What [`MARKER_FILE`] holds. JSON, camelCase.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationMarker {
    /// Format version (1).
    pub version: u32,
    /// The creating process.
    pub pid: u32,
    /// Where `pid` is meaningful.
    #[serde(default)]
    pub world: ProcessWorld,
    /// When the creation registered the worktree (ms since the epoch).
    pub started_at_ms: u64,
    /// True once the creation was ready and `files`/`folders` were recorded.
    #[serde(default)]
    pub ready: bool,
    /// Files the creation wrote or changed (relative, `/`-separated) and their BLAKE3 (hex).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Untracked folders the creation made, taken whole (relative, `/`-separated, no trailing `/`).
    #[serde(default)]
    pub folders: Vec<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl CreationMarker {
    /// A marker naming this process as the creator, started now.
    pub fn for_this_process() -> Self {
        Self {
            version: 1,
            pid: std::process::id(),
            world: crate::platform::this_world(),
            started_at_ms: now_ms(),
            ..Default::default()
        }
    }

    /// The marker's path in the registration folder `gitdir`.
    pub fn path(gitdir: &Path) -> PathBuf {
        gitdir.join(MARKER_FILE)
    }

    /// The marker of the registration `gitdir`, if it has a readable one.
    pub fn read(gitdir: &Path) -> Option<Self> {
        let text = std::fs::read(Self::path(gitdir)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes it (a temporary file renamed over: readers never see half of it).
    pub fn write(&self, gitdir: &Path) -> Result<()> {
        let path = Self::path(gitdir);
        let tmp = gitdir.join(format!("{MARKER_FILE}.tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(self)?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io_path("write", &path, e))
    }

    /// True unless its creator is certainly gone (see [`crate::platform::holder_alive`]).
    pub fn creator_alive(&self) -> bool {
        crate::platform::holder_alive(self.pid, &self.world)
    }
}

/// The registration folder (`<common dir>/worktrees/<name>`) of registration `name`.
pub fn gitdir_of(repo: &Repository, name: &str) -> PathBuf {
    repo.commondir().join("worktrees").join(name)
}

/// Writes a fresh marker for this process into the registration of the worktree at `path`.
pub fn mark_started(repo: &Repository, path: &Path) -> Result<()> {
    let Some(r) = super::git::registration_at(repo, path)? else {
        return Err(Error::NotFound(format!(
            "registration of {}",
            path.display()
        )));
    };
    CreationMarker::for_this_process().write(&gitdir_of(repo, &r.name))
}

/// Serializes the read-modify-write of markers by the steps of this process (write-env and
/// mcp-discovery run at once).
static NOTING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Records in the marker of the worktree at `path` (project `root`) the file `rel` that a step
/// of the creation just wrote, with its hash, so that debris of a creation that dies later is
/// known byte for byte. Best-effort: a marker that cannot be written only makes that debris be
/// kept in the trash instead of deleted.
pub fn note_written(root: &Path, path: &Path, rel: &str) {
    let _one = NOTING.lock();
    let Ok(repo) = super::git::open(root) else {
        return;
    };
    let Ok(Some(r)) = super::git::registration_at(&repo, path) else {
        return;
    };
    let gitdir = gitdir_of(&repo, &r.name);
    let Some(mut m) = CreationMarker::read(&gitdir) else {
        return;
    };
    if let Some(h) = hash_file(&path.join(rel)) {
        m.files.insert(rel.to_string(), h);
        let _ = m.write(&gitdir);
    }
}

/// True if the file `rel` of the worktree at `path` is, byte for byte, what the marker says the
/// creation wrote.
pub fn written_unchanged(m: &CreationMarker, path: &Path, rel: &str) -> bool {
    m.files
        .get(rel)
        .is_some_and(|h| hash_file(&path.join(rel)).as_deref() == Some(h.as_str()))
}

/// The stamp written at "ready" in the registration folder: its mtime, on the filesystem's own
/// clock and granularity, separates what the creation wrote from what came after.
const READY_STAMP: &str = "vibetrees-ready";

/// The registration folder named by the worktree's `.git` file (`gitdir: <path>`).
fn gitdir_of_worktree(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    Some(PathBuf::from(text.strip_prefix("gitdir:")?.trim()))
}

/// At "ready" (on the critical path: one small read and one write): stamps the registration of
/// the worktree at `path` with the ready time.
pub fn stamp_ready(path: &Path) -> Result<()> {
    let Some(gitdir) = gitdir_of_worktree(path) else {
        return Ok(());
    };
    let stamp = gitdir.join(READY_STAMP);
    std::fs::write(&stamp, b"").map_err(|e| Error::io_path("write", &stamp, e))
}

/// The ctime or mtime of `p`, whichever is later (`cp -p`, `touch -d` cannot set a ctime).
fn last_change(p: &Path) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).ok()?;
    let ctime = UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec().max(0) as u32);
    Some(m.modified().unwrap_or(ctime).max(ctime))
}

/// True if the file at `p` was written or changed at or after `t` (the same clock tick counts as
/// after: when in doubt, it is the user's), or cannot be read.
fn changed_after(p: &Path, t: SystemTime) -> bool {
    last_change(p).is_none_or(|c| c >= t)
}

/// After "ready" (a background job of the creation): records in the marker of the worktree at
/// `path` every change git sees there that was made before the ready stamp ([`stamp_ready`];
/// what this creation wrote; a file written or touched since is the user's and is not
/// recorded), so that [`changes`] does not count them while they stay as written.
pub fn record_written(repo: &Repository, path: &Path) -> Result<()> {
    let ready = gitdir_of_worktree(path)
        .and_then(|g| last_change(&g.join(READY_STAMP)))
        .unwrap_or(UNIX_EPOCH);
    let Some(r) = super::git::registration_at(repo, path)? else {
        return Ok(());
    };
    let gitdir = gitdir_of(repo, &r.name);
    let mut marker = CreationMarker::read(&gitdir).unwrap_or_else(CreationMarker::for_this_process);
    for entry in status_entries(path)? {
        match entry {
            Entry::Folder(rel) if is_whole_folder(&rel) => marker.folders.push(rel),
            Entry::Folder(rel) => {
                // a file a step noted as it wrote it keeps that hash (a later edit is the user's)
                for (f, hash) in hash_tree(&path.join(&rel), &rel) {
                    if !changed_after(&path.join(&f), ready) {
                        marker.files.entry(f).or_insert(hash);
                    }
                }
            }
            Entry::File(rel) => {
                let p = path.join(&rel);
                if let Some(h) = hash_file(&p).filter(|_| !changed_after(&p, ready)) {
                    marker.files.entry(rel).or_insert(h);
                }
            }
            Entry::Staged(_) => {}
        }
    }
    marker.ready = true;
    marker.write(&gitdir)
}

/// The changes in the worktree at `path` that are not the creation's own as it wrote them:
/// modified, staged and untracked paths (relative), ignored files excepted. Empty: clean.
pub fn changes(path: &Path, marker: Option<&CreationMarker>) -> Result<Vec<String>> {
    let empty = CreationMarker::default();
    let m = marker.unwrap_or(&empty);
    let same = |rel: &str| {
        m.files
            .get(rel)
            .is_some_and(|h| hash_file(&path.join(rel)).as_deref() == Some(h.as_str()))
    };
    let mut out = Vec::new();
    for entry in status_entries(path)? {
        match entry {
            Entry::Staged(rel) => out.push(rel),
            Entry::File(rel) => {
                if !same(&rel) {
                    out.push(rel);
                }
            }
            Entry::Folder(rel) => {
                // the dependencies of a worktree of ours are never the user's work, also before
                // the background record lists them
                if m.folders.contains(&rel) || (marker.is_some() && is_whole_folder(&rel)) {
                    continue;
                }
                let files = hash_tree(&path.join(&rel), &rel);
                if files.is_empty() {
                    out.push(format!("{rel}/"));
                }
                for (f, hash) in files {
                    if m.files.get(&f) != Some(&hash) {
                        out.push(f);
                    }
                }
            }
        }
    }
    Ok(out)
}

enum Entry {
    /// A change in the index (staged): never the creation's.
    Staged(String),
    /// A modified, deleted, renamed or untracked file.
    File(String),
    /// An untracked folder (not recursed by git).
    Folder(String),
}

fn is_whole_folder(rel: &str) -> bool {
    let last = rel.rsplit('/').next().unwrap_or(rel);
    WHOLE_FOLDERS.contains(&last)
}

/// git's status of the worktree at `path`: untracked folders not recursed, ignored left out.
fn status_entries(path: &Path) -> Result<Vec<Entry>> {
    let repo = Repository::open(path)
        .map_err(|e| Error::git(format!("open worktree {}", path.display()), e))?;
    let mut opts = StatusOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut opts))
        .map_err(|e| Error::git(format!("status of {}", path.display()), e))?;
    let staged = Status::INDEX_NEW
        | Status::INDEX_MODIFIED
        | Status::INDEX_DELETED
        | Status::INDEX_RENAMED
        | Status::INDEX_TYPECHANGE;
    let mut out = Vec::new();
    for s in statuses.iter() {
        let st = s.status();
        if st.is_empty() || st.contains(Status::IGNORED) {
            continue;
        }
        let rel = String::from_utf8_lossy(s.path_bytes()).into_owned();
        if st.intersects(staged) {
            out.push(Entry::Staged(rel));
        } else if st.contains(Status::WT_NEW) && rel.ends_with('/') {
            out.push(Entry::Folder(rel.trim_end_matches('/').to_string()));
        } else {
            out.push(Entry::File(rel));
        }
    }
    Ok(out)
}

/// BLAKE3 of a file's bytes (a symlink: of its target's path), or `None` if it is gone.
fn hash_file(p: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(p).ok()?;
    let bytes = if meta.file_type().is_symlink() {
        let mut b = b"symlink:".to_vec();
        b.extend(std::fs::read_link(p).ok()?.as_os_str().as_encoded_bytes());
        b
    } else if meta.is_file() {
        std::fs::read(p).ok()?
    } else {
        return None;
    };
    Some(blake3::hash(&bytes).to_hex().to_string())
}

/// Every file under `dir` (not following links) with its hash, named `<rel>/<sub path>`.
fn hash_tree(dir: &Path, rel: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), rel.to_string())];
    while let Some((d, r)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let (p, sub) = (e.path(), format!("{r}/{name}"));
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((p, sub));
            } else if let Some(h) = hash_file(&p) {
                out.push((sub, h));
            }
        }
    }
    out.sort();
    out
}
