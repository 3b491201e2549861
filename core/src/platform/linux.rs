//! Linux's fast paths of the OS seam: `statx`, `FICLONE`, `O_PATH`, `openat2`, `/proc`, and
//! `PR_SET_PDEATHSIG`. What Linux does the portable way is re-exported from [`super::portable`].
//!
//! Compiled on Linux only; owns no policy.

use super::FileStat;
use super::portable;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::CStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// `statx` asking only for what the core reads (type, mode, size, mtime, inode); `fstatat` where
/// `statx` is missing (kernels before 4.11, old container seccomp profiles).
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<FileStat, Errno> {
    match rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE
            | StatxFlags::MODE
            | StatxFlags::SIZE
            | StatxFlags::MTIME
            | StatxFlags::INO,
    ) {
        Ok(st) => Ok(FileStat {
            mode: u32::from(st.stx_mode),
            size: st.stx_size,
            mtime_sec: st.stx_mtime.tv_sec,
            mtime_nsec: st.stx_mtime.tv_nsec,
            ino: st.stx_ino,
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        }),
        Err(Errno::NOSYS) => portable::stat_at(dir, name),
        Err(e) => Err(e),
    }
}

/// `FICLONE`: the new file is created (`O_EXCL`, never through a link) with `mode`, then made to
/// share the source's blocks; removed again if the filesystem refuses.
pub(crate) fn clone_file_at(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
) -> Result<Option<OwnedFd>, Errno> {
    let src = super::open_file_at(src_dir, name)?;
    let dst = super::create_file_at(dst_dir, name, mode)?;
    match rustix::fs::ioctl_ficlone(&dst, &src) {
        Ok(()) => Ok(Some(dst)),
        Err(e) => {
            drop(dst);
            let _ = rustix::fs::unlinkat(dst_dir, name, AtFlags::empty());
            Err(e)
        }
    }
}

/// `copy_file_range` from the current offsets until the source's end: the bytes move inside the
/// kernel, with none of `std::io::copy`'s per-call `dup`s and `fstat`s. Where the kernel or the
/// filesystem pair refuses it before the first byte (`ENOSYS`, `EXDEV` before 5.3, `EINVAL`,
/// `EOPNOTSUPP`, `EPERM` from a seccomp filter), [`portable::copy_contents`] does the copy.
pub(crate) fn copy_contents(src: &OwnedFd, dst: &OwnedFd) -> Result<(), Errno> {
    let mut first = true;
    loop {
        match rustix::fs::copy_file_range(src, None, dst, None, 1 << 30) {
            // Some virtual files read as empty to copy_file_range: trust an empty first answer
            // only from a file that is empty.
            Ok(0) if first && rustix::fs::fstat(src)?.st_size > 0 => {
                return portable::copy_contents(src, dst);
            }
            Ok(0) => return Ok(()),
            Ok(_) => first = false,
            Err(Errno::INTR) => {}
            Err(e)
                if first
                    && matches!(
                        e,
                        Errno::NOSYS | Errno::XDEV | Errno::INVAL | Errno::OPNOTSUPP | Errno::PERM
                    ) =>
            {
                return portable::copy_contents(src, dst);
            }
            Err(e) => return Err(e),
        }
    }
}

/// `O_PATH|O_DIRECTORY|O_NOFOLLOW`: a handle for `*at` calls that needs no read permission.
pub(crate) fn open_dir_handle(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `O_PATH|O_DIRECTORY` on a path.
pub(crate) fn open_dir_handle_path(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Set once `openat2` was refused (`ENOSYS` before Linux 5.6, `EPERM` or `ENOSYS` from a seccomp
/// filter): every later open walks component by component.
static OPENAT2_REFUSED: AtomicBool = AtomicBool::new(false);

/// `openat2(root, rel, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`: one call
/// that fails with `ELOOP` on a symlink anywhere in `rel` and `EXDEV` on an escape. `None` where
/// the kernel refuses `openat2` itself (then the caller walks).
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &CStr,
    flags: OFlags,
    mode: Mode,
) -> Option<Result<OwnedFd, Errno>> {
    if OPENAT2_REFUSED.load(Ordering::Relaxed) {
        return None;
    }
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let refused = |e: Errno| matches!(e, Errno::NOSYS | Errno::PERM | Errno::TOOBIG);
    match rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
        resolve,
    ) {
        Err(e) if refused(e) => {
            // EPERM is also a real refusal of this one file (an immutable file written, ...):
            // only when opening the root itself is refused too is it openat2 that is refused.
            let root_again = rustix::fs::openat2(
                root,
                c".",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            );
            match root_again {
                Err(again) if refused(again) => {
                    OPENAT2_REFUSED.store(true, Ordering::Relaxed);
                    None
                }
                _ => Some(Err(e)),
            }
        }
        r => Some(r),
    }
}

/// A bind probe with std's `TcpListener` (`SO_REUSEADDR`): on Linux that option never lets two
/// sockets listen on overlapping addresses, so a refused bind means a listener, and sockets in
/// TIME_WAIT do not count.
pub(crate) fn port_in_use(port: u16) -> bool {
    let addrs = [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
    ];
    addrs.iter().any(|a| match TcpListener::bind(a) {
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::AddrInUse,
    })
}

/// The LISTEN sockets of `/proc/net/tcp` and `/proc/net/tcp6` (`None` if neither is readable).
pub(crate) fn listening_ports() -> Option<HashSet<u16>> {
    let mut out = HashSet::new();
    let mut read_any = false;
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(f) {
            read_any = true;
            out.extend(super::formats::proc_net_tcp_listeners(&text));
        }
    }
    read_any.then_some(out)
}

/// Scans `/proc/<pid>/environ` of every process we may read.
pub(crate) fn processes_with_env(entry: &[u8]) -> Vec<u32> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // other users' processes are unreadable: never ours
        let Ok(env) = std::fs::read(p.path().join("environ")) else {
            continue;
        };
        if super::formats::nul_separated(&env).any(|var| var == entry) {
            found.push(pid);
        }
    }
    found
}

/// `PR_SET_PDEATHSIG(SIGTERM)` in the child: the kernel signals it when this process dies, even
/// by SIGKILL. Linux ties it to the spawning thread; the core spawns from runtime worker threads,
/// which live as long as the process.
pub(crate) fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid, raise).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // the parent died before prctl: act as if the signal came
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}
