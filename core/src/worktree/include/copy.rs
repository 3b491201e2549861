//! The copy of the selected entries into a new worktree. Each entry is built in a staging folder
//! on the worktree's filesystem and renamed into place (`RENAME_NOREPLACE`): the worktree never
//! holds half an entry, and a path the branch already has is left alone (reported as skipped).
//! Files are cloned (`FICLONE`/`clonefile` through `platform`), falling back per file to a plain
//! copy; never hardlinked. Folders go through the cache's tree copy (`cache/treecopy.rs`), in
//! parallel. Every call is relative to folder handles; the worktree's folders are opened beneath
//! it without following a link (`platform::ConfinedDir`).

use super::select::{EntryKind, Selected};
use crate::cache::fsops::{self, Placed, Plan};
use crate::cache::listing::Listing;
use crate::cache::store::{cstr, path_cstr, unique_name};
use crate::cache::treecopy::{CopyOptions, Fault, TreeCopy};
use crate::platform::{self, ConfinedDir};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, RenameFlags};
use rustix::io::Errno;
use serde::Serialize;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the copy did. JSON: `{ entries, files, bytes, cloned, copied, direct, method, skipped,
/// ms }`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncludeCopied {
    /// Entries copied (files, folders, symlinks named by the rules).
    pub entries: usize,
    /// Regular files copied.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files cloned (reflink: shared blocks, copy-on-write).
    pub cloned: u64,
    /// Files copied byte for byte.
    pub copied: u64,
    /// Of those, files written by direct I/O (the `includeDirectIo` setting; 0 when it is off,
    /// for files under 4 KiB, and where the filesystem refuses direct I/O).
    pub direct: u64,
    /// `cloned`, `copied`, `mixed`, or `none` (nothing to copy).
    pub method: &'static str,
    /// Entries left alone because the new worktree has that path already.
    pub skipped: Vec<PathBuf>,
    /// Wall time of the copy, ms.
    pub ms: f64,
    /// What is left to copy in the background after ready (entries marked for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<Deferred>,
    /// Those entries (for `create/background.rs`).
    #[serde(skip)]
    pub deferred: Option<std::sync::Arc<Selected>>,
}

/// The entries deferred to the background. JSON: `{ entries, files, bytes }`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deferred {
    /// Entries.
    pub entries: usize,
    /// Regular files in them.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Worker threads of a buffered copy, whatever the number of cores: a copy waits on page faults
/// as much as it computes, and on 2 cores 4 workers copied the benchmark's 1 GB build cache in
/// 0.58x of `cp -a` where 2 took 0.70x (docs/include.md, run 4).
pub const COPY_WORKERS: usize = 4;

/// Worker threads of a copy by direct I/O: each write waits for the disk, so a worker mostly
/// waits and more writes in flight keep the disk busy. On 2 cores 16 workers copied the
/// benchmark's build cache in 0.24x of `cp -a` where 4 took 0.5-0.8x (docs/include.md, run 8).
pub const DIRECT_COPY_WORKERS: usize = 16;

/// The worker threads of a copy, by whether it writes by direct I/O.
pub fn copy_workers(direct_io: bool) -> usize {
    if direct_io {
        DIRECT_COPY_WORKERS
    } else {
        COPY_WORKERS
    }
}

/// Whether the copy into the worktree `dest` writes by direct I/O: as `setting` says when it is
/// given (the `includeDirectIo` option), else where the disk suits it
/// ([`platform::direct_io_suits`]: an SSD or a VM's disk, on Linux).
pub fn use_direct_io(setting: Option<bool>, dest: &Path) -> bool {
    setting.unwrap_or_else(|| platform::direct_io_suits(dest))
}

/// Never a hardlink: a clone where the filesystems allow it, else a copy, decided per file.
const CLONE_OR_COPY: Plan = Plan {
    link: false,
    clone: true,
    copy: true,
    link_fallback: false,
    direct: false,
};

/// A plain copy of every file: where no clone can work (another filesystem, or one without
/// reflink), trying one per file first costs a create and an unlink each.
const COPY: Plan = Plan {
    link: false,
    clone: false,
    copy: true,
    link_fallback: false,
    direct: false,
};

/// The plan for copies from `src` into `stage` (on the worktree's filesystem): clone-or-copy
/// when both are one filesystem that clones (probed once per filesystem and process, inside
/// the staging folder: nothing is written into the main worktree), else copy.
fn plan_for(src: &ConfinedDir, stage: &ConfinedDir) -> Plan {
    let same = match (platform::fstat(src.as_fd()), platform::fstat(stage.as_fd())) {
        (Ok(a), Ok(b)) => a.dev == b.dev,
        _ => false,
    };
    if same && probe_clone(stage) {
        CLONE_OR_COPY
    } else {
        COPY
    }
}

/// Whether a file of `stage` can be cloned into a folder of `stage` (the probe is memoized per
/// filesystem pair; it needs two folders).
fn probe_clone(stage: &ConfinedDir) -> bool {
    let sub = cstr(&unique_name("probe"));
    if rustix::fs::mkdirat(stage.as_fd(), &sub, platform::mode(0o700)).is_err() {
        return true; // cannot tell: clone per file, falling back per file
    }
    let clone = match fsops::open_dir_path(stage.as_fd(), &sub) {
        Ok(dir) => fsops::probe(stage.as_fd(), dir.as_fd()).clone,
        Err(_) => true,
    };
    let _ = rustix::fs::unlinkat(stage.as_fd(), &sub, AtFlags::REMOVEDIR);
    clone
}

/// Copies `selected` from the main worktree `root` into the worktree `dest`, building each entry
/// in `staging` (a folder on `dest`'s filesystem, made if missing, left empty), on `workers`
/// threads. With `direct_io`, the files that are copied rather than cloned are written by direct
/// I/O (`O_DIRECT` on Linux, see `platform::copy_contents_direct`): their bytes go to the disk
/// during the copy and are not kept a second time in the page cache (docs/include.md,
/// "Direct I/O").
pub fn copy_selected(
    root: &Path,
    dest: &Path,
    staging: &Path,
    selected: &Selected,
    workers: usize,
    direct_io: bool,
) -> Result<IncludeCopied> {
    let start = Instant::now();
    let mut out = IncludeCopied::default();
    if selected.entries.is_empty() {
        out.method = "none";
        return Ok(out);
    }
    std::fs::create_dir_all(staging).map_err(|e| Error::io_path("create folder", staging, e))?;
    let src_root = ConfinedDir::open(root)?;
    let dst_root = ConfinedDir::open(dest)?;
    let stage = ConfinedDir::open(staging)?;
    let plan = Plan {
        direct: direct_io,
        ..plan_for(&src_root, &stage)
    };
    for entry in &selected.entries {
        let (parent_rel, name) = split(&entry.path)?;
        let src_parent = open_parent(&src_root, parent_rel)?;
        if let Some(p) = parent_rel {
            let mode = std::fs::symlink_metadata(root.join(p)).map_or(0o755, |m| m.mode());
            dst_root.create_dir_all(p, mode & 0o7777)?;
        }
        let dst_parent = open_parent(&dst_root, parent_rel)?;
        let at = |e: Errno| {
            Error::io_path(
                "copy",
                dest.join(&entry.path),
                std::io::Error::from_raw_os_error(e.raw_os_error()),
            )
        };
        let placed = match entry.kind {
            EntryKind::Symlink => {
                let target = std::fs::read_link(root.join(&entry.path))
                    .map_err(|e| Error::io_path("read link", root.join(&entry.path), e))?;
                let t = path_cstr(&target)?;
                match rustix::fs::symlinkat(&t, dst_parent.as_fd(), &name) {
                    Ok(()) => true,
                    Err(Errno::EXIST) => false,
                    Err(e) => return Err(at(e)),
                }
            }
            EntryKind::File => {
                let meta = std::fs::symlink_metadata(root.join(&entry.path))
                    .map_err(|e| Error::io_path("stat", root.join(&entry.path), e))?;
                let slot = cstr(&unique_name("f"));
                rustix::fs::mkdirat(stage.as_fd(), &slot, platform::mode(0o700)).map_err(at)?;
                let slot_dir = stage.open_dir(Path::new(slot.to_str().unwrap_or("f")))?;
                let r = fsops::place_file(
                    src_parent.as_fd(),
                    slot_dir.as_fd(),
                    &name,
                    meta.mode(),
                    (meta.mtime(), meta.mtime_nsec() as u32),
                    plan,
                )
                .and_then(|p| {
                    commit(slot_dir.as_fd(), &name, dst_parent.as_fd(), &name).map(|ok| (p, ok))
                });
                let _ = rustix::fs::unlinkat(slot_dir.as_fd(), &name, AtFlags::empty());
                let _ = rustix::fs::unlinkat(stage.as_fd(), &slot, AtFlags::REMOVEDIR);
                let (p, ok) = r.map_err(at)?;
                if ok {
                    match p {
                        Placed::Cloned => out.cloned += 1,
                        Placed::CopiedDirect => {
                            out.copied += 1;
                            out.direct += 1;
                        }
                        _ => out.copied += 1,
                    }
                }
                ok
            }
            EntryKind::Dir => copy_dir(
                &src_parent,
                &name,
                &stage,
                &dst_parent,
                entry.listing.as_deref().unwrap_or_default(),
                (plan, workers),
                &mut out,
            )
            .map_err(|e| match e {
                Failure::At(rel, errno) => at_rel(dest, &entry.path, &rel, errno),
                Failure::Error(e) => e,
            })?,
        };
        if placed {
            out.entries += 1;
            out.files += entry.files;
            out.bytes += entry.bytes;
        } else {
            out.skipped.push(entry.path.clone());
        }
    }
    out.method = match (out.cloned, out.copied) {
        (0, 0) => "none",
        (_, 0) => "cloned",
        (0, _) => "copied",
        _ => "mixed",
    };
    out.ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(out)
}

enum Failure {
    At(PathBuf, Errno),
    Error(Error),
}

fn at_rel(dest: &Path, entry: &Path, rel: &Path, e: Errno) -> Error {
    Error::io_path(
        "copy",
        dest.join(entry).join(rel),
        std::io::Error::from_raw_os_error(e.raw_os_error()),
    )
}

/// A folder: built in a hidden folder of `stage` by the tree copy, then renamed into place.
/// Returns false when the worktree had the path already (nothing changed there).
fn copy_dir(
    src_parent: &ConfinedDir,
    name: &std::ffi::CStr,
    stage: &ConfinedDir,
    dst_parent: &ConfinedDir,
    listing: &[u8],
    (plan, workers): (Plan, usize),
    out: &mut IncludeCopied,
) -> std::result::Result<bool, Failure> {
    let listing = Listing::parse(listing.to_vec()).map_err(Failure::Error)?;
    let root_mode = listing.nodes[0].mode;
    let tmp = cstr(&unique_name("d"));
    let root_fixup = fsops::make_dir(stage.as_fd(), &tmp, root_mode)
        .map_err(|e| Failure::At(PathBuf::new(), e))?;
    let cleanup = |stage: &ConfinedDir| {
        let _ = fsops::remove_tree(&stage.path().join(tmp.to_str().unwrap_or("d")));
    };
    let r = (|| {
        let src = fsops::open_dir_path(src_parent.as_fd(), name)
            .map_err(|e| Failure::At(PathBuf::new(), e))?;
        let dst = fsops::open_dir_path(stage.as_fd(), &tmp)
            .map_err(|e| Failure::At(PathBuf::new(), e))?;
        let dst_dup = dst
            .try_clone()
            .map_err(|e| Failure::Error(Error::io("dup", e)))?;
        let copy = TreeCopy::plan(
            &listing,
            src,
            dst_dup,
            CopyOptions {
                plan,
                root_plan: plan,
                verify: false,
                workers,
                progress: None,
            },
        )
        .map_err(|f| fault(&listing, f))?;
        copy.run();
        let copied = copy.finish().map_err(|f| fault(&listing, f))?;
        let mut fixups = copied.fixups;
        fixups.sort_unstable_by(|a, b| b.cmp(a));
        for node in fixups {
            let rel = listing.rel_path(node);
            let c = path_cstr(&rel).map_err(Failure::Error)?;
            rustix::fs::chmodat(
                &dst,
                c.as_c_str(),
                platform::mode(listing.nodes[node].mode),
                AtFlags::empty(),
            )
            .map_err(|e| Failure::At(rel, e))?;
        }
        if root_fixup {
            rustix::fs::chmodat(
                stage.as_fd(),
                &tmp,
                platform::mode(root_mode),
                AtFlags::empty(),
            )
            .map_err(|e| Failure::At(PathBuf::new(), e))?;
        }
        let placed = commit(stage.as_fd(), &tmp, dst_parent.as_fd(), name)
            .map_err(|e| Failure::At(PathBuf::new(), e))?;
        out.cloned += copied.cloned;
        out.copied += copied.copied;
        out.direct += copied.direct;
        Ok(placed)
    })();
    cleanup(stage);
    r
}

fn fault(listing: &Listing, f: Fault) -> Failure {
    match f {
        Fault::Io { node, errno, .. } => Failure::At(listing.rel_path(node), errno),
        Fault::Mutated { node, detail } => Failure::Error(Error::Internal(format!(
            "{}: {detail}",
            listing.rel_path(node).display()
        ))),
    }
}

/// Renames the staged `from` into place as `to`, never replacing: false if `to` exists.
fn commit(
    from_dir: BorrowedFd<'_>,
    from: &std::ffi::CStr,
    to_dir: BorrowedFd<'_>,
    to: &std::ffi::CStr,
) -> std::result::Result<bool, Errno> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Ok(false),
        Err(e) => Err(e),
    }
}

/// (parent folder, last name) of an entry's relative path.
fn split(rel: &Path) -> Result<(Option<&Path>, std::ffi::CString)> {
    let name = rel.file_name().ok_or_else(|| {
        Error::InvalidArgument(format!("include entry {} has no name", rel.display()))
    })?;
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("NUL in {}", rel.display())))?;
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty());
    Ok((parent, name))
}

/// The folder `rel` beneath `root` (the root itself when `None`), never through a link.
fn open_parent(root: &ConfinedDir, rel: Option<&Path>) -> Result<ConfinedDir> {
    match rel {
        Some(p) => root.open_dir(p),
        None => ConfinedDir::open(root.path()),
    }
}
