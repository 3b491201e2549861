//! Restore: materialize an entry as a node_modules folder, fast and all-or-nothing.
//!
//! Driven by the entry's listing (no directory reads of the cache), with every call relative to
//! open directory descriptors (`mkdirat`, `linkat`, `symlinkat`, `openat`), split over worker
//! threads by whole package folders (big ones split into their sub-folders), largest first.
//! The tree is built in a hidden sibling of the target (`.<name>.vt-restore-<world>-<pid>-<n>`) and renamed
//! into place (`RENAME_NOREPLACE`, or `RENAME_EXCHANGE` over an existing folder, which is then
//! deleted), so the target never holds a partial node_modules.
//!
//! With `verify` on (the default), each cached file's size, mtime and mode are checked against the
//! listing as it is linked: an entry mutated through a shared inode is never served; the restore
//! fails with [`Error::Cache`](crate::Error::Cache) naming the file, and the entry is evicted.

use super::fsops::{self, Plan, RestoreMethod};
use super::key::CacheKey;
use super::listing::{Listing, NodeKind};
use super::phases::{PhaseTime, Phases};
use super::store::{NodeModulesCache, cstr, io_err, path_cstr, unique_name};
use super::treecopy::{CopyOptions, Fault, TreeCopy, report_progress};
use crate::progress::CountProgress;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, FileType, RenameFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Options of a restore.
#[derive(Clone, Default)]
pub struct RestoreOptions {
    /// How files are placed (default `auto`: hardlink, falling back per file to clone then copy).
    pub method: RestoreMethod,
    /// `(done, total)` counts of placed nodes, called at most ~20 times a second and once at the end.
    pub progress: Option<CountProgress>,
    /// Skip the per-file check against the listing (size, mtime, mode). Faster; then a mutated
    /// entry can be served. Off by default.
    pub skip_verify: bool,
    /// Refuse (instead of replacing) an existing target, even with `replace`.
    pub keep_existing: bool,
    /// Replace an existing target (a real `node_modules` folder: swapped out atomically, then
    /// deleted). Off by default: an existing target is refused ([`Error::AlreadyExists`]), and
    /// one that is not a `node_modules` folder always is ([`Error::InvalidArgument`]): see
    /// [`super::check_target`].
    pub replace: bool,
    /// Worker threads for this restore (default: the cache's).
    pub workers: Option<usize>,
    /// Profiler span id to nest this operation's spans under.
    pub parent_span: Option<String>,
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("method", &self.method)
            .field("progress", &self.progress.is_some())
            .field("skip_verify", &self.skip_verify)
            .field("keep_existing", &self.keep_existing)
            .field("workers", &self.workers)
            .finish()
    }
}

/// The report of one restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStats {
    /// The entry restored.
    pub key: CacheKey,
    /// The node_modules folder made.
    pub target: String,
    /// The method asked for.
    pub method: RestoreMethod,
    /// What the probe chose for most files: `hardlink`, `clone` or `copy`.
    pub method_used: String,
    /// Files hardlinked.
    pub linked: u64,
    /// Files cloned (reflink).
    pub cloned: u64,
    /// Files copied.
    pub copied: u64,
    /// Regular files.
    pub files: u64,
    /// Folders, the root included.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Bytes of regular files.
    pub bytes: u64,
    /// Worker threads used.
    pub workers: usize,
    /// Whether each file was checked against the listing.
    pub verified: bool,
    /// Whether an existing folder at the target was replaced.
    pub replaced_existing: bool,
    /// Wall time in milliseconds (the deletion of a replaced folder included).
    pub duration_ms: f64,
    /// Time of each phase.
    pub phases: Vec<PhaseTime>,
}

impl NodeModulesCache {
    /// Restores entry `key` as the node_modules folder `target` (its parent is created if needed).
    ///
    /// Errors: [`Error::NotFound`] when there is no entry (counted as a miss); [`Error::Cache`] when
    /// the entry was found mutated (it is then evicted; the message names the file);
    /// [`Error::AlreadyExists`] when `keep_existing` is set and `target` exists.
    pub fn restore(
        &self,
        key: &CacheKey,
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<RestoreStats> {
        let mut phases = Phases::start(
            self.profiler.as_deref(),
            "cache-restore",
            opts.parent_span.as_deref(),
        );
        let r = self.restore_inner(key, target, opts, &mut phases);
        phases.finish(r.as_ref().err());
        match &r {
            Ok(_) => self.record_outcome(true),
            Err(Error::NotFound(_)) => self.record_outcome(false),
            Err(_) => {}
        }
        r.map(|mut s| {
            s.duration_ms = phases.elapsed_ms();
            s.phases = std::mem::take(&mut phases.times);
            s
        })
    }

    fn restore_inner(
        &self,
        key: &CacheKey,
        target: &Path,
        opts: &RestoreOptions,
        phases: &mut Phases<'_>,
    ) -> Result<RestoreStats> {
        let (parent, name) = split_target(target)?;
        if !opts.keep_existing {
            super::target::check_target(target, opts.replace)?;
        }
        let (entry, listing) = phases.run("cache-restore-open", || {
            let entry = self
                .lock_entry(key, false, true)?
                .ok_or_else(|| Error::NotFound(format!("cache entry {key}")))?;
            let lpath = entry.path.join("listing.bin");
            let bytes = std::fs::read(&lpath).map_err(|e| Error::io_path("read", &lpath, e))?;
            let listing =
                Listing::parse(bytes).map_err(|e| Error::Cache(format!("entry {key}: {e}")))?;
            Ok((entry, listing))
        })?;
        if opts.keep_existing && std::fs::symlink_metadata(target).is_ok() {
            return Err(Error::AlreadyExists(format!(
                "{} (restore target; keep_existing is set)",
                target.display()
            )));
        }

        // The hidden sibling the tree is built in, and its cleaner.
        let tmp_name = unique_name(&format!(
            ".{}.vt-restore-{}",
            name,
            crate::platform::this_world_tag()
        ));
        let tmp_path = parent.join(&tmp_name);
        let tmp_guard = TmpGuard(Some(tmp_path.clone()));
        let (parent_fd, tmp_fd, plan, copy, root_fixup) =
            phases.run("cache-restore-plan", || {
                std::fs::create_dir_all(&parent)
                    .map_err(|e| Error::io_path("create folder", &parent, e))?;
                clean_stale_siblings(&parent, &name);
                let parent_fd = fsops::open_path_dir(&parent)
                    .map_err(|e| Error::io_path("open", &parent, e))?;
                let root_mode = listing.nodes[0].mode;
                let tmp_c = cstr(&tmp_name);
                let root_fixup = fsops::make_dir(parent_fd.as_fd(), &tmp_c, root_mode)
                    .map_err(|e| io_err("create", &tmp_path, e))?;
                let tmp_fd = fsops::open_dir_path(parent_fd.as_fd(), &tmp_c)
                    .map_err(|e| io_err("open", &tmp_path, e))?;
                let scratch = fsops::open_path_dir(&self.entries_dir)
                    .map_err(|e| Error::io_path("open", &self.entries_dir, e))?;
                let probe = fsops::probe(scratch.as_fd(), tmp_fd.as_fd());
                let plan = Plan::new(opts.method, probe);
                let tree = fsops::open_dir_path(entry.dir.as_fd(), &cstr("tree"))
                    .map_err(|e| io_err("open", &entry.path.join("tree"), e))?;
                let tmp_dup = tmp_fd
                    .try_clone()
                    .map_err(|e| Error::io_path("dup", &tmp_path, e))?;
                let copy = TreeCopy::plan(
                    &listing,
                    tree,
                    tmp_dup,
                    CopyOptions {
                        plan,
                        // `hardlink` asked explicitly links everything; `auto` keeps the files
                        // directly in node_modules private (package managers rewrite them).
                        root_plan: if opts.method == RestoreMethod::Hardlink {
                            plan
                        } else {
                            plan.private(probe.clone)
                        },
                        verify: !opts.skip_verify,
                        workers: opts.workers.unwrap_or(self.workers).max(1),
                        progress: opts.progress.clone(),
                    },
                )
                .map_err(|f| fault_error(f, &listing, &entry.path, &tmp_path))?;
                Ok((parent_fd, tmp_fd, plan, copy, root_fixup))
            })?;

        let total = listing.nodes.len() as u64;
        let workers = copy.workers();
        phases.run("cache-restore-place", || {
            copy.run();
            Ok(())
        })?;
        let copied = match copy.finish() {
            Ok(c) => c,
            Err(fault) => {
                let mutated = matches!(fault, Fault::Mutated { .. });
                let err = fault_error(fault, &listing, &entry.path, &tmp_path);
                drop(tmp_guard);
                if mutated {
                    let trash = self.move_to_trash(&entry.path, key).ok();
                    drop(entry);
                    if let Some(t) = trash {
                        self.delete_if_unlocked(&t, 0, 0);
                    }
                    return Err(Error::Cache(format!(
                        "{err}; the entry was evicted (a file shared by hardlink was changed in \
                         place); it will be populated again"
                    )));
                }
                return Err(err);
            }
        };

        let replaced = phases.run("cache-restore-commit", || {
            let mut fixups = copied.fixups.clone();
            fixups.sort_unstable_by(|a, b| b.cmp(a));
            for node in fixups {
                let rel = listing.rel_path(node);
                let c = path_cstr(&rel)?;
                rustix::fs::chmodat(
                    &tmp_fd,
                    c.as_c_str(),
                    crate::platform::mode(listing.nodes[node].mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("set mode of", &tmp_path.join(&rel), e))?;
            }
            let tmp_c = cstr(&tmp_name);
            if root_fixup {
                rustix::fs::chmodat(
                    &parent_fd,
                    tmp_c.as_c_str(),
                    crate::platform::mode(listing.nodes[0].mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("set mode of", &tmp_path, e))?;
            }
            let name_c = path_cstr(Path::new(&name))?;
            match rustix::fs::renameat_with(
                &parent_fd,
                &tmp_c,
                &parent_fd,
                &name_c,
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => Ok(false),
                Err(Errno::EXIST) | Err(Errno::NOTEMPTY) if !opts.keep_existing => {
                    rustix::fs::renameat_with(
                        &parent_fd,
                        &tmp_c,
                        &parent_fd,
                        &name_c,
                        RenameFlags::EXCHANGE,
                    )
                    .map_err(|e| io_err("swap restored node_modules into", target, e))?;
                    Ok(true)
                }
                Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(Error::AlreadyExists(format!(
                    "{} (restore target; keep_existing is set)",
                    target.display()
                ))),
                Err(e) => Err(io_err("move restored node_modules to", target, e)),
            }
        })?;
        if replaced {
            // The old folder now sits at the temporary name: delete it.
            phases.run("cache-restore-remove-old", || {
                fsops::remove_tree(&tmp_path)
                    .map_err(|e| Error::io_path("delete replaced node_modules at", &tmp_path, e))
            })?;
        }
        tmp_guard.disarm();
        let _ = rustix::fs::utimensat(
            &entry.dir,
            "last-used",
            &rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                },
            },
            AtFlags::empty(),
        );
        if let Some(p) = &opts.progress {
            report_progress(p, total, total);
        }
        let (mut files, mut dirs, mut symlinks, mut bytes) = (0, 0, 0, 0);
        for n in &listing.nodes {
            match n.kind {
                NodeKind::File => {
                    files += 1;
                    bytes += n.size;
                }
                NodeKind::Dir => dirs += 1,
                NodeKind::Symlink => symlinks += 1,
            }
        }
        Ok(RestoreStats {
            key: key.clone(),
            target: target.display().to_string(),
            method: opts.method,
            method_used: plan.primary().to_string(),
            linked: copied.linked,
            cloned: copied.cloned,
            copied: copied.copied,
            files,
            dirs,
            symlinks,
            bytes,
            workers,
            verified: !opts.skip_verify,
            replaced_existing: replaced,
            duration_ms: 0.0,
            phases: Vec::new(),
        })
    }
}

/// Splits a target into (parent folder, file name), refusing `/`, `..` and the like.
fn split_target(target: &Path) -> Result<(PathBuf, String)> {
    let abs = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("read the current folder", e))?
            .join(target)
    };
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "." && *n != "..")
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "restore target {} has no usable folder name",
                target.display()
            ))
        })?
        .to_string();
    let parent = abs.parent().map(Path::to_path_buf).ok_or_else(|| {
        Error::InvalidArgument(format!("restore target {} has no parent", target.display()))
    })?;
    Ok((parent, name))
}

/// Deletes `.<name>.vt-restore-<world>-<pid>-<n>` siblings left by processes that certainly no
/// longer run: of our world (boot, pid namespace: [`crate::platform::world_tag`]) and gone. A
/// sibling of another world (a folder shared with a container), or one named before names
/// carried a world, is kept: its pid cannot be checked from here.
fn clean_stale_siblings(parent: &Path, name: &str) {
    let prefix = format!(".{name}.vt-restore-");
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let fname = e.file_name();
        let Some(rest) = fname.to_str().and_then(|s| s.strip_prefix(&prefix)) else {
            continue;
        };
        if let Some(pid) = dead_restorer(rest) {
            tracing::debug!(pid, "removing the temporary folder of a dead restore");
            let _ = fsops::remove_tree(&e.path());
        }
    }
}

/// The pid of the dead process that left a `<world>-<pid>-<n>` temporary sibling (the part after
/// `.vt-restore-`), or `None` when it may still run or its world is not ours (or unknown).
fn dead_restorer(rest: &str) -> Option<u32> {
    let mut parts = rest.split('-');
    let tag = parts.next()?;
    let pid = parts.next()?.parse::<u32>().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    (parts.next().is_none()
        && pid != std::process::id()
        && !crate::platform::tagged_holder_alive(pid, Some(tag)))
    .then_some(pid)
}

/// Deletes the temporary sibling unless disarmed.
struct TmpGuard(Option<PathBuf>);

impl TmpGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fsops::remove_tree(&p);
        }
    }
}

fn fault_error(f: Fault, listing: &Listing, entry: &Path, tmp: &Path) -> Error {
    match f {
        Fault::Io { op, node, errno } => {
            let rel = listing.rel_path(node);
            Error::io_path(
                &format!(
                    "{op} (cache file {})",
                    entry.join("tree").join(&rel).display()
                ),
                tmp.join(&rel),
                std::io::Error::from_raw_os_error(errno.raw_os_error()),
            )
        }
        Fault::Mutated { node, detail } => Error::Cache(format!(
            "cached file {} was changed after caching ({detail})",
            entry.join("tree").join(listing.rel_path(node)).display()
        )),
    }
}

/// How the file `name` of `dir` differs from its listing record, if it does.
pub(crate) fn mutation(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    node: &super::listing::Node,
) -> std::result::Result<Option<String>, Errno> {
    let st = match crate::platform::stat_at(dir, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Some("missing".into())),
        Err(e) => return Err(e),
    };
    Ok(if st.file_type() != FileType::RegularFile {
        Some("no longer a regular file".to_string())
    } else if st.size != node.size {
        Some(format!("size {} -> {}", node.size, st.size))
    } else if st.mtime_sec != node.mtime_sec || st.mtime_nsec != node.mtime_nsec {
        Some("modification time changed".to_string())
    } else if st.permissions() != node.mode & 0o7777 {
        Some(format!(
            "mode {:o} -> {:o}",
            node.mode & 0o7777,
            st.permissions()
        ))
    } else {
        None
    })
}
