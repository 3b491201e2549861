//! The store: `<cacheDir>/node_modules/<key>/` entries, their locks, lookup and listing.
//!
//! An entry folder holds `tree/` (the node_modules content), `listing.bin` (see `listing.rs`),
//! `manifest.json`, `lock` (flock: shared while restoring, exclusive to evict) and `last-used`
//! (its mtime is the last use). Entries are made complete in a `.staging-*` folder and renamed into
//! place, so an entry folder that exists is complete. Evicted entries are renamed to `.trash-*`
//! before they are deleted.

use super::fsops;
use super::key::CacheKey;
use super::manifest::{ENTRY_FORMAT, EntryInfo, Manifest};
use crate::{Error, Result};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Options of a [`NodeModulesCache`].
#[derive(Clone, Default)]
pub struct CacheOptions {
    /// The cache folder; `None` means `~/.vibetrees/cache` (from `$HOME`).
    pub cache_dir: Option<PathBuf>,
    /// Worker threads of a restore; `None` picks two per core, 2 to 8.
    pub workers: Option<usize>,
    /// Profiler that gets a span for every phase of populate, restore, verify and prune.
    pub profiler: Option<Arc<crate::profiler::Profiler>>,
}

impl std::fmt::Debug for CacheOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheOptions")
            .field("cache_dir", &self.cache_dir)
            .field("workers", &self.workers)
            .field("profiler", &self.profiler.is_some())
            .finish()
    }
}

/// The default cache folder: `$HOME/.vibetrees/cache`.
pub fn default_cache_dir() -> Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h).join(".vibetrees").join("cache")),
        _ => Err(Error::InvalidArgument(
            "no cache folder given and $HOME is not set".into(),
        )),
    }
}

/// A content-addressed node_modules cache. Blocking; cheap to share behind an `Arc`; safe to use
/// from many threads and many processes on one cache folder at once.
pub struct NodeModulesCache {
    pub(crate) root: PathBuf,
    pub(crate) entries_dir: PathBuf,
    pub(crate) workers: usize,
    pub(crate) profiler: Option<Arc<crate::profiler::Profiler>>,
}

impl std::fmt::Debug for NodeModulesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeModulesCache")
            .field("root", &self.root)
            .field("workers", &self.workers)
            .finish()
    }
}

/// A held lock on an entry: shared while restoring, exclusive while evicting.
pub(crate) struct LockedEntry {
    pub path: PathBuf,
    pub dir: OwnedFd,
    pub _lock: OwnedFd,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name unique to this process and call: `<prefix>-<pid>-<seq>`.
pub(crate) fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in our own names")
}

pub(crate) fn path_cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("path {} contains a NUL byte", p.display())))
}

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

/// Refuses ([`Error::UnsafePath`]) a cache folder that another user owns or that the group or
/// others may write: whoever can write there can change the files every restored worktree gets
/// (they are hardlinked into them).
pub fn check_private(dir: &Path) -> Result<()> {
    let st = rustix::fs::stat(dir).map_err(|e| io_err("stat", dir, e))?;
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(Error::UnsafePath(format!(
            "cache folder {} belongs to uid {}, not to this user (uid {me}): refused; use a \
             cache folder of your own (cacheDir)",
            dir.display(),
            st.st_uid
        )));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and others",
            (true, false) => "its group",
            _ => "others",
        };
        return Err(Error::UnsafePath(format!(
            "cache folder {} (mode {mode:o}) is writable by {who}: refused; fix it with \
             `chmod go-w {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

pub(crate) fn io_err(op: &str, path: &Path, e: Errno) -> Error {
    Error::io_path(op, path, errno_io(e))
}

impl NodeModulesCache {
    /// Opens (creating if needed) the cache in `opts.cache_dir` (default `~/.vibetrees/cache`).
    pub fn open(opts: CacheOptions) -> Result<NodeModulesCache> {
        let root = match opts.cache_dir {
            Some(d) => d,
            None => default_cache_dir()?,
        };
        let entries_dir = root.join("node_modules");
        if root.exists() {
            check_private(&root)?; // before anything is made in it
        }
        // new folders: 0755 whatever the umask (a umask of 002 would make them group-writable)
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o755)
            .create(&entries_dir)
            .map_err(|e| Error::io_path("create cache folder", &entries_dir, e))?;
        check_private(&root)?;
        check_private(&entries_dir)?;
        super::key::remember_node_abi_in(&root);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // Twice the cores: restore threads mostly wait in the kernel (directory locks, inode
        // allocation), and measured here 4 workers beat 2 on 2 cores (docs/cache.md).
        let workers = opts.workers.unwrap_or((cores * 2).clamp(2, 8)).max(1);
        Ok(NodeModulesCache {
            root,
            entries_dir,
            workers,
            profiler: opts.profiler,
        })
    }

    /// The cache folder.
    pub fn cache_dir(&self) -> &Path {
        &self.root
    }

    /// The folder of the entry for `key` (which may not exist).
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.entries_dir.join(key.as_str())
    }

    /// True when a complete entry for `key` exists.
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.entry_path(key).join("manifest.json").is_file()
    }

    /// The entry for `key`, or `None` when there is none. Does not count as a hit or a miss.
    pub fn lookup(&self, key: &CacheKey) -> Result<Option<EntryInfo>> {
        self.read_entry(&self.entry_path(key))
    }

    /// Every complete entry, most recently used first.
    pub fn entries(&self) -> Result<Vec<EntryInfo>> {
        let mut out = Vec::new();
        for name in self.entry_names()? {
            if let Ok(Some(info)) = self.read_entry(&self.entries_dir.join(&name)) {
                out.push(info);
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.last_used_ms));
        Ok(out)
    }

    /// Names in the entries folder that are keys (not staging, trash or probe files).
    pub(crate) fn entry_names(&self) -> Result<Vec<String>> {
        let rd = std::fs::read_dir(&self.entries_dir)
            .map_err(|e| Error::io_path("list cache entries in", &self.entries_dir, e))?;
        let mut names = Vec::new();
        for e in rd.flatten() {
            if let Some(name) = e.file_name().to_str() {
                if CacheKey::parse(name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    pub(crate) fn read_entry(&self, path: &Path) -> Result<Option<EntryInfo>> {
        let mpath = path.join("manifest.json");
        let bytes = match std::fs::read(&mpath) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io_path("read", &mpath, e)),
        };
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
            what: mpath.display().to_string(),
            message: e.to_string(),
        })?;
        if manifest.format != ENTRY_FORMAT {
            return Ok(None);
        }
        let last_used_ms = std::fs::metadata(path.join("last-used"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(manifest.created_ms);
        Ok(Some(EntryInfo {
            manifest,
            last_used_ms,
            path: path.display().to_string(),
        }))
    }

    /// Opens and locks the entry `key` (shared or exclusive), checking after the lock that the
    /// folder is still the entry (not renamed away by an eviction meanwhile).
    /// `Ok(None)`: no entry, or (non-blocking) somebody else holds a conflicting lock.
    pub(crate) fn lock_entry(
        &self,
        key: &CacheKey,
        exclusive: bool,
        blocking: bool,
    ) -> Result<Option<LockedEntry>> {
        let path = self.entry_path(key);
        let dir = match fsops::open_path_dir(&path) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io_path("open cache entry", &path, e)),
        };
        let lock = match rustix::fs::openat(
            &dir,
            "lock",
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_err("open lock of", &path, e)),
        };
        let op = match (exclusive, blocking) {
            (true, true) => FlockOperation::LockExclusive,
            (true, false) => FlockOperation::NonBlockingLockExclusive,
            (false, true) => FlockOperation::LockShared,
            (false, false) => FlockOperation::NonBlockingLockShared,
        };
        match rustix::fs::flock(&lock, op) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) if !blocking => return Ok(None),
            Err(e) => return Err(io_err("lock cache entry", &path, e)),
        }
        // Still the entry? An evictor renames the folder away while it holds the exclusive lock.
        let here = rustix::fs::fstat(&dir).map_err(|e| io_err("stat", &path, e))?;
        match rustix::fs::stat(&path) {
            Ok(now) if now.st_ino == here.st_ino && now.st_dev == here.st_dev => {}
            _ => return Ok(None),
        }
        Ok(Some(LockedEntry {
            path,
            dir,
            _lock: lock,
        }))
    }

    /// Moves the entry folder at `path` out of the way (to `.trash-*`); returns the trash path.
    /// Readers holding it keep working from their open descriptors.
    pub(crate) fn move_to_trash(&self, path: &Path, key: &CacheKey) -> Result<PathBuf> {
        let trash = self
            .entries_dir
            .join(unique_name(&format!(".trash-{}", &key.as_str()[..16])));
        std::fs::rename(path, &trash)
            .map_err(|e| Error::io_path("move evicted entry to trash", path, e))?;
        Ok(trash)
    }

    /// Deletes a trash or staging folder if nobody holds its lock. Returns true if deleted.
    /// `min_age_locked_s`: a folder younger than this is kept even with a free lock (its maker may
    /// not have taken the lock yet); `min_age_unlocked_s`: the same for a folder without a lock file.
    pub(crate) fn delete_if_unlocked(
        &self,
        dir: &Path,
        min_age_locked_s: u64,
        min_age_unlocked_s: u64,
    ) -> bool {
        let old_enough = |min: u64| {
            min == 0
                || std::fs::symlink_metadata(dir)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map(|d| d.as_secs() >= min)
                    .unwrap_or(false)
        };
        match std::fs::File::open(dir.join("lock")) {
            Ok(f) => {
                if rustix::fs::flock(f.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
                    return false;
                }
                old_enough(min_age_locked_s) && fsops::remove_tree(dir).is_ok()
            }
            // Made by a process that died before it created its lock, or being deleted.
            Err(_) => old_enough(min_age_unlocked_s) && fsops::remove_tree(dir).is_ok(),
        }
    }

    /// Deletes abandoned `.staging-*` and `.trash-*` folders and stray probe files.
    pub(crate) fn clean_abandoned(&self) -> u64 {
        let mut removed = 0;
        let Ok(rd) = std::fs::read_dir(&self.entries_dir) else {
            return 0;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let path = e.path();
            if name.starts_with(".staging-") {
                if self.delete_if_unlocked(&path, 5, 120) {
                    removed += 1;
                }
            } else if name.starts_with(".trash-") {
                if self.delete_if_unlocked(&path, 0, 0) {
                    removed += 1;
                }
            } else if name.starts_with(".vt-probe-") {
                let _ = std::fs::remove_file(&path);
            }
        }
        removed
    }
}
