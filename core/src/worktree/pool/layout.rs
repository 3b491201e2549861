//! Where the pool keeps its spares and how our marks look: names, the metadata file, the locks
//! that say a live process is making or claiming one, and the checks recovery asks ("is this
//! folder a spare of ours, and is anyone still at work on it?").
//!
//! ```text
//! <worktreeBase>/.pool/
//!   .fill.lock                      flock: one fill at a time (all processes)
//!   .making-<suffix>/               a spare being made (its files, then its marker)
//!   .making-<suffix>.lock           flock held by its maker: unheld = the maker died
//!   <commit12>-<suffix>/            a spare, whole
//!     .vibetrees-spare/meta.json    what it is ([`SpareMeta`]): ours
//!     .vibetrees-spare/index        its index, moved into the registration at claim
//!     .vibetrees-spare/lock         flock held by its claimer until it is registered
//!   .discard-<suffix>/              a spare being deleted (renamed out of reach first)
//! ```
//!
//! Owns: these names and files. Must not touch anything outside `.pool/` except the marker
//! folder of a claimed spare (which travels with the claimed folder until it is registered).

use crate::platform::ProcessWorld;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The pool's folder under the worktree base.
pub const POOL_DIR: &str = ".pool";
/// Our marker folder inside a spare (and inside a claimed folder until it is registered).
pub const MARKER_DIR: &str = ".vibetrees-spare";
/// Name prefix of a spare being made.
pub const MAKING_PREFIX: &str = ".making-";
/// Name prefix of a spare being deleted.
pub const DISCARD_PREFIX: &str = ".discard-";
/// The fill lock, in the pool folder.
pub const FILL_LOCK: &str = ".fill.lock";
/// What [`SpareMeta::kind`] says.
const KIND: &str = "vibetrees-spare";
/// The format of [`SpareMeta`].
pub const META_VERSION: u32 = 1;

/// The pool folder of the worktree base `base`.
pub fn pool_dir(base: &Path) -> PathBuf {
    base.join(POOL_DIR)
}

/// What a spare was made for: `<spare>/.vibetrees-spare/meta.json`. JSON, camelCase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpareMeta {
    /// Always `vibetrees-spare` (with the version: what makes the folder ours).
    pub kind: String,
    /// [`META_VERSION`].
    pub version: u32,
    /// The commit checked out.
    pub commit: String,
    /// The ref it was made from (`refs/heads/main`), the "commit source" refills follow.
    pub from: String,
    /// The node_modules cache key of that commit, when it has a package.json.
    pub cache_key: Option<String>,
    /// True when `node_modules` was restored into it (from the entry of `cache_key`).
    pub node_modules: bool,
    /// Files in that `node_modules`.
    pub node_modules_files: Option<u64>,
    /// Bytes of its own checked-out files (what the disk budget counts).
    pub bytes: u64,
    /// Files checked out.
    pub files: usize,
    /// When it was made, ms since the epoch.
    pub created_at_ms: u64,
    /// The library version that made it.
    pub made_by: String,
    /// The maker (for people; liveness is the flock).
    pub pid: u32,
    /// Where `pid` means something.
    pub world: ProcessWorld,
}

impl SpareMeta {
    /// Its age now, ms.
    pub fn age_ms(&self) -> u64 {
        now_ms().saturating_sub(self.created_at_ms)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The marker folder of `folder`.
pub fn marker_dir(folder: &Path) -> PathBuf {
    folder.join(MARKER_DIR)
}

/// Our metadata in `folder`, when it is a real folder (not a link) holding a marker of ours.
pub fn read_meta(folder: &Path) -> Option<SpareMeta> {
    let dir = marker_dir(folder);
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    if !is_dir(folder) || !is_dir(&dir) {
        return None;
    }
    let bytes = std::fs::read(dir.join("meta.json")).ok()?;
    let meta: SpareMeta = serde_json::from_slice(&bytes).ok()?;
    let commit_ok =
        matches!(meta.commit.len(), 40 | 64) && meta.commit.bytes().all(|b| b.is_ascii_hexdigit());
    (meta.kind == KIND && meta.version == META_VERSION && commit_ok).then_some(meta)
}

/// Writes `meta` into the marker folder of `folder` (a temporary file renamed over).
pub fn write_meta(folder: &Path, meta: &SpareMeta) -> Result<()> {
    let dir = marker_dir(folder);
    let path = dir.join("meta.json");
    let tmp = dir.join("meta.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(meta)?)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::io_path("write", &path, e))
}

/// A new [`SpareMeta`] (kind, version, maker filled in).
#[allow(clippy::too_many_arguments)]
pub fn new_meta(
    commit: git2::Oid,
    from: &str,
    cache_key: Option<String>,
    node_modules_files: Option<u64>,
    bytes: u64,
    files: usize,
) -> SpareMeta {
    SpareMeta {
        kind: KIND.into(),
        version: META_VERSION,
        commit: commit.to_string(),
        from: from.into(),
        cache_key,
        node_modules: node_modules_files.is_some(),
        node_modules_files,
        bytes,
        files,
        created_at_ms: now_ms(),
        made_by: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        world: crate::platform::this_world(),
    }
}

/// One whole spare in the pool.
#[derive(Debug, Clone)]
pub struct Spare {
    /// Its folder, `.pool/<commit12>-<suffix>`.
    pub path: PathBuf,
    /// What it is.
    pub meta: SpareMeta,
}

/// Every whole spare in the pool of `base`, oldest first. Folders without our marker, links and
/// the pool's own dot-names are skipped (never touched).
pub fn spares(base: &Path) -> Vec<Spare> {
    let Ok(rd) = std::fs::read_dir(pool_dir(base)) else {
        return Vec::new();
    };
    let mut out: Vec<Spare> = rd
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let path = e.path();
            read_meta(&path).map(|meta| Spare { path, meta })
        })
        .collect();
    out.sort_by_key(|s| s.meta.created_at_ms);
    out
}

/// Opens (creating it) and takes the flock `path`, exclusive, without waiting: `None` when
/// another holder has it (or it cannot be opened). Released when the file is dropped, or when
/// its process dies.
pub fn try_lock(path: &Path, create: bool) -> Option<File> {
    let f = std::fs::OpenOptions::new()
        .create(create)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(f)
}

/// Takes the flock `path` (creating it), exclusive, waiting for it.
pub fn lock(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .and_then(|f| {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
            Ok(f)
        })
        .map_err(|e| Error::io_path("lock", path, e))
}

/// The lock of the spare (or claimed folder) `folder`.
pub fn spare_lock_path(folder: &Path) -> PathBuf {
    marker_dir(folder).join("lock")
}

/// What is at a worktree's path that holds our spare marker and is not registered.
#[derive(Debug, PartialEq, Eq)]
pub enum ClaimedFolder {
    /// A live process is claiming it right now (it holds the spare's lock).
    BeingClaimed,
    /// Its claimer died between the claim and the registration: ours to delete.
    Abandoned,
}

/// Whether `path` (a worktree's place, no registration there) is a spare a claim renamed in and
/// did not register: `None` when it holds no marker of ours (not ours: never deleted).
pub fn claimed_folder(path: &Path) -> Option<ClaimedFolder> {
    read_meta(path)?;
    Some(match try_lock(&spare_lock_path(path), false) {
        Some(_) => ClaimedFolder::Abandoned,
        None => ClaimedFolder::BeingClaimed,
    })
}

/// Removes the marker folder of a registered worktree (the claim's last act; also recovery's,
/// for a claim killed right after it registered), only when it is ours.
pub fn drop_marker(path: &Path) {
    if read_meta(path).is_some() {
        let _ = std::fs::remove_dir_all(marker_dir(path));
    }
}
