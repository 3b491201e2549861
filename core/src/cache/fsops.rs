//! Low-level file placement relative to open directory descriptors: hardlink, clone, copy, with
//! the per-file fallback chain of `auto`, and the once-per-filesystem-pair probe. The OS calls
//! that differ by platform (clone, stat, directory handles, the umask) go through
//! [`crate::platform`].

use crate::platform;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::{Mutex, OnceLock};

/// How files get from the cache into a node_modules (and from a node_modules into the cache).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreMethod {
    /// Hardlink; per file, fall back to clone then copy on EXDEV, EMLINK or EPERM. The default,
    /// on APFS too (docs/platform.md says why and how to measure the other order).
    #[default]
    Auto,
    /// Hardlink only (fails where the filesystem refuses a link).
    Hardlink,
    /// Clone only (reflink `FICLONE` on XFS/btrfs, `clonefile` on APFS): no shared inodes,
    /// shared blocks.
    Clone,
    /// Plain copy of every file.
    Copy,
    /// Reflink where possible, copy otherwise: never a shared inode.
    CloneOrCopy,
}

impl RestoreMethod {
    /// The method's name as the CLI and the bindings spell it (`auto`, `hardlink`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreMethod::Auto => "auto",
            RestoreMethod::Hardlink => "hardlink",
            RestoreMethod::Clone => "clone",
            RestoreMethod::Copy => "copy",
            RestoreMethod::CloneOrCopy => "clone-or-copy",
        }
    }

    /// Parses a method name (`auto`, `hardlink`, `clone`, `copy`, `clone-or-copy`).
    pub fn parse(s: &str) -> crate::Result<RestoreMethod> {
        Ok(match s {
            "auto" => RestoreMethod::Auto,
            "hardlink" => RestoreMethod::Hardlink,
            "clone" | "reflink" => RestoreMethod::Clone,
            "copy" => RestoreMethod::Copy,
            "clone-or-copy" => RestoreMethod::CloneOrCopy,
            other => {
                return Err(crate::Error::InvalidArgument(format!(
                    "unknown restore method '{other}' (auto, hardlink, clone, copy, clone-or-copy)"
                )));
            }
        })
    }
}

/// How one file was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    Linked,
    Cloned,
    Copied,
    /// Copied, with the bytes (their block-aligned part) written by direct I/O ([`Plan::direct`]).
    CopiedDirect,
}

/// What a (source filesystem, target filesystem) pair allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    pub link: bool,
    pub clone: bool,
}

/// The per-file plan: which ways to try, in order link, clone, copy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub link: bool,
    pub clone: bool,
    pub copy: bool,
    /// Fall back from link on EXDEV/EMLINK/EPERM (auto) instead of failing.
    pub link_fallback: bool,
    /// Copies bypass the page cache for the new file (`platform::copy_contents_direct`): for
    /// bulk copies nobody reads right away, the include copy's build caches.
    pub direct: bool,
}

impl Plan {
    /// The plan for `method` on a filesystem pair that allows `probe`.
    pub fn new(method: RestoreMethod, probe: Probe) -> Plan {
        match method {
            RestoreMethod::Auto => Plan {
                link: probe.link,
                clone: probe.clone,
                copy: true,
                link_fallback: true,
                direct: false,
            },
            RestoreMethod::Hardlink => Plan {
                link: true,
                clone: false,
                copy: false,
                link_fallback: false,
                direct: false,
            },
            RestoreMethod::Clone => Plan {
                link: false,
                clone: true,
                copy: false,
                link_fallback: false,
                direct: false,
            },
            RestoreMethod::Copy => Plan {
                link: false,
                clone: false,
                copy: true,
                link_fallback: false,
                direct: false,
            },
            RestoreMethod::CloneOrCopy => Plan {
                link: false,
                clone: probe.clone,
                copy: true,
                link_fallback: false,
                direct: false,
            },
        }
    }

    /// The plan for files that must never share an inode (clone or copy, whatever `self` is).
    pub fn private(&self, probe_clone: bool) -> Plan {
        Plan {
            link: false,
            clone: probe_clone && (self.clone || self.link),
            copy: true,
            link_fallback: false,
            direct: self.direct,
        }
    }

    /// The method most files will be placed by, for reports.
    pub fn primary(&self) -> &'static str {
        if self.link {
            "hardlink"
        } else if self.clone {
            "clone"
        } else {
            "copy"
        }
    }
}

fn is_link_fallback(e: Errno) -> bool {
    e == Errno::XDEV || e == Errno::MLINK || e == Errno::PERM || e == Errno::ACCESS
}

/// Places the file `name` of `src_dir` as `name` in `dst_dir` following `plan`.
/// `mode` and `mtime` are applied to clones and copies (a hardlink shares them).
pub(crate) fn place_file(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    mtime: (i64, u32),
    plan: Plan,
) -> Result<Placed, Errno> {
    if plan.link {
        match rustix::fs::linkat(src_dir, name, dst_dir, name, AtFlags::empty()) {
            Ok(()) => return Ok(Placed::Linked),
            Err(e) if plan.link_fallback && is_link_fallback(e) => {}
            Err(e) => return Err(e),
        }
    }
    if plan.clone {
        match clone_file(src_dir, dst_dir, name, mode, mtime) {
            Ok(placed) => return Ok(placed),
            Err(e) if plan.copy && platform::clone_unsupported(e) => {}
            Err(e) => return Err(e),
        }
    }
    if !plan.copy {
        return Err(Errno::XDEV);
    }
    let src = platform::open_file_at(src_dir, name)?;
    let dst = platform::create_file_at(dst_dir, name, mode)?;
    let direct = if plan.direct {
        platform::copy_contents_direct(&src, &dst)?
    } else {
        platform::copy_contents(&src, &dst)?;
        false
    };
    finish_copy(&dst, mode, mtime)?;
    Ok(if direct {
        Placed::CopiedDirect
    } else {
        Placed::Copied
    })
}

/// Clones the file, then gives the clone the exact mode and the source's mtime.
fn clone_file(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
    mtime: (i64, u32),
) -> Result<Placed, Errno> {
    match platform::clone_file_at(src_dir, dst_dir, name, mode)? {
        Some(dst) => finish_copy(&dst, mode, mtime)?,
        None => finish_at(dst_dir, name, mode, mtime)?,
    }
    Ok(Placed::Cloned)
}

/// Whether a file created with `mode` lost bits to the umask (or carries set-id/sticky bits,
/// which creation may drop): then its mode is set again.
fn needs_chmod(mode: u32) -> bool {
    mode & 0o7777 & platform::umask() != 0 || mode & 0o7000 != 0
}

/// Access and modification time both `mtime`.
fn timestamps(mtime: (i64, u32)) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.0,
        tv_nsec: mtime.1 as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Exact mode (the umask stripped bits at create time) and the source's mtime on a new file.
fn finish_copy(dst: &OwnedFd, mode: u32, mtime: (i64, u32)) -> Result<(), Errno> {
    if needs_chmod(mode) {
        rustix::fs::fchmod(dst, platform::mode(mode))?;
    }
    rustix::fs::futimens(dst, &timestamps(mtime))
}

/// [`finish_copy`] by name, for a clone the platform made without opening it.
fn finish_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32, mtime: (i64, u32)) -> Result<(), Errno> {
    if needs_chmod(mode) {
        rustix::fs::chmodat(dir, name, platform::mode(mode), AtFlags::empty())?;
    }
    rustix::fs::utimensat(dir, name, &timestamps(mtime), AtFlags::SYMLINK_NOFOLLOW)
}

/// Makes folder `name` in `dst_dir` writable for us, returning whether its final mode
/// differs from what mkdir gave (then the caller fixes it after filling the folder).
pub(crate) fn make_dir(dst_dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<bool, Errno> {
    let create = (mode & 0o7777) | 0o700;
    rustix::fs::mkdirat(dst_dir, name, platform::mode(create))?;
    Ok(create & !platform::umask() != mode & 0o7777)
}

/// Opens folder `name` of `dir` for `*at` calls, never through a link (see
/// [`platform::open_dir_handle`]).
pub(crate) fn open_dir_path(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    platform::open_dir_handle(dir, name)
}

/// Opens folder `name` of `dir` for reading its entries.
pub(crate) fn open_dir_read(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens a path as a folder for `*at` calls.
pub(crate) fn open_path_dir(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    platform::open_dir_handle_path(path)
}

/// Process-wide memo of probes, by (source device, target device).
fn probes() -> &'static Mutex<HashMap<(u64, u64), Probe>> {
    static P: OnceLock<Mutex<HashMap<(u64, u64), Probe>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Finds out, once per (source filesystem, target filesystem) pair and process, whether a file of
/// `src_scratch` (a writable folder on the source filesystem) can be hardlinked and cloned into
/// `dst_dir`. Leaves nothing behind.
pub(crate) fn probe(src_scratch: BorrowedFd<'_>, dst_dir: BorrowedFd<'_>) -> Probe {
    let (Ok(s), Ok(d)) = (platform::fstat(src_scratch), platform::fstat(dst_dir)) else {
        return Probe {
            link: false,
            clone: false,
        };
    };
    let pair = (s.dev, d.dev);
    if let Some(p) = probes().lock().unwrap().get(&pair) {
        return *p;
    }
    let p = run_probe(src_scratch, dst_dir);
    probes().lock().unwrap().insert(pair, p);
    p
}

fn run_probe(src_dir: BorrowedFd<'_>, dst_dir: BorrowedFd<'_>) -> Probe {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = std::ffi::CString::new(format!(".vt-probe-{}-{n}", std::process::id())).unwrap();
    let mut probe = Probe {
        link: false,
        clone: false,
    };
    let Ok(src) = rustix::fs::openat(
        src_dir,
        name.as_c_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        platform::mode(0o600),
    ) else {
        return probe;
    };
    let _ = rustix::io::write(&src, &[b'x'; 16]);
    if rustix::fs::linkat(
        src_dir,
        name.as_c_str(),
        dst_dir,
        name.as_c_str(),
        AtFlags::empty(),
    )
    .is_ok()
    {
        probe.link = true;
        let _ = rustix::fs::unlinkat(dst_dir, name.as_c_str(), AtFlags::empty());
    }
    if platform::clone_file_at(src_dir, dst_dir, name.as_c_str(), 0o600).is_ok() {
        probe.clone = true;
        let _ = rustix::fs::unlinkat(dst_dir, name.as_c_str(), AtFlags::empty());
    }
    drop(src);
    let _ = rustix::fs::unlinkat(src_dir, name.as_c_str(), AtFlags::empty());
    probe
}

/// Removes a whole tree at `path` (a folder, a file or a symlink, never followed). Missing is fine.
pub(crate) fn remove_tree(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                // A restored read-only folder must be made writable to be emptied.
                make_tree_writable(path);
                match std::fs::remove_dir_all(path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    r => r,
                }
            }
            r => r,
        },
        Ok(_) => std::fs::remove_file(path),
    }
}

fn make_tree_writable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    if m.permissions().mode() & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode(m.permissions().mode() | 0o700),
        );
    }
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                make_tree_writable(&e.path());
            }
        }
    }
}
