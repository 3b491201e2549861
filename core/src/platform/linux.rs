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

/// The alignment `O_DIRECT` asks of file offsets and lengths: 4096 covers the logical block
/// sizes of the disks in use (512 and 4096); a device that wants more answers `EINVAL` and the
/// copy goes on through the page cache.
const DIRECT_ALIGN: u64 = 4096;

/// [`copy_contents`] with the new file's block-aligned part written by direct I/O: `O_DIRECT` is
/// set on `dst` for the aligned length (`copy_file_range` then moves the source's cached pages
/// straight to the disk), cleared for the tail. The new file's pages are not left in the page
/// cache. Where the filesystem refuses direct I/O (`EINVAL` from `fcntl` or the first copy,
/// `EOPNOTSUPP`, `EXDEV`, `ENOSYS`, `EPERM`), the copy goes on buffered from where it stopped;
/// any other error is returned. `src` and `dst` must be at offset 0. True when direct I/O wrote
/// some of the bytes.
pub(crate) fn copy_contents_direct(src: &OwnedFd, dst: &OwnedFd) -> Result<bool, Errno> {
    let size = u64::try_from(rustix::fs::fstat(src)?.st_size).unwrap_or(0);
    let aligned = size & !(DIRECT_ALIGN - 1);
    if aligned == 0 {
        return copy_contents(src, dst).map(|()| false);
    }
    let flags = rustix::fs::fcntl_getfl(dst)?;
    if rustix::fs::fcntl_setfl(dst, flags | OFlags::DIRECT).is_err() {
        return copy_contents(src, dst).map(|()| false);
    }
    let mut done = 0u64;
    let outcome = loop {
        if done == aligned {
            break Ok(());
        }
        let want = usize::try_from(aligned - done)
            .unwrap_or(1 << 30)
            .min(1 << 30);
        match rustix::fs::copy_file_range(src, None, dst, None, want) {
            Ok(0) => break Ok(()),
            Ok(n) => done += n as u64,
            Err(Errno::INTR) => {}
            Err(e) => break Err(e),
        }
    };
    rustix::fs::fcntl_setfl(dst, flags)?;
    if outcome.is_ok() && done == size {
        // a whole number of blocks, all written: no tail (copy_contents would take the empty
        // answer at the end for a virtual file and redo it the portable way)
        return Ok(true);
    }
    match outcome {
        Err(e)
            if !matches!(
                e,
                Errno::INVAL | Errno::OPNOTSUPP | Errno::XDEV | Errno::NOSYS | Errno::PERM
            ) =>
        {
            Err(e)
        }
        // the rest (the tail, or all that direct I/O did not take) from the current offsets
        _ => copy_contents(src, dst).map(|()| done > 0),
    }
}

/// Whether direct I/O suits the disk of `path`, read from sysfs (`/sys/dev/block/MAJ:MIN`; a
/// partition's queue and driver are its disk's). See [`direct_io_suits_disk`].
pub(crate) fn direct_io_suits(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let (major, minor) = (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()));
    if major == 0 {
        // an anonymous device: tmpfs, overlayfs, NFS, FUSE, btrfs subvolumes
        return false;
    }
    let dev = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let disk = if dev.join("partition").exists() {
        dev.join("..") // `..` of the resolved link: the disk's folder
    } else {
        dev
    };
    let rotational = std::fs::read_to_string(disk.join("queue/rotational")).ok();
    let driver = std::fs::read_link(disk.join("device/driver")).ok();
    direct_io_suits_disk(
        rotational.as_deref().map(str::trim),
        driver
            .as_deref()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str()),
    )
}

/// The rule of [`direct_io_suits`] on a disk's `queue/rotational` and driver name: a
/// non-rotational disk suits; a rotational one only when its driver is `virtio_blk`, which has no
/// way to learn the host's medium and leaves every disk marked rotational (a VM's disk is an SSD
/// or network storage nearly always); unknown does not.
fn direct_io_suits_disk(rotational: Option<&str>, driver: Option<&str>) -> bool {
    match rotational {
        Some("0") => true,
        Some("1") => driver == Some("virtio_blk"),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    /// Whether files in `dir` can be opened for direct I/O.
    fn takes_direct_io(dir: &Path) -> bool {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.join("probe"))
            .is_ok()
    }

    #[test]
    fn a_direct_copy_has_every_byte_for_aligned_and_unaligned_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let direct_here = takes_direct_io(dir.path());
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for size in [
            0usize,
            1,
            4095,
            4096,
            4097,
            3 * 4096 + 5,
            1 << 20,
            (1 << 20) + 4103,
        ] {
            let bytes: Vec<u8> = (0..size)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let (from, to) = (
                dir.path().join(format!("src-{size}")),
                dir.path().join(format!("dst-{size}")),
            );
            std::fs::write(&from, &bytes).unwrap();
            let src: OwnedFd = std::fs::File::open(&from).unwrap().into();
            let dst: OwnedFd = std::fs::File::create_new(&to).unwrap().into();
            let direct = copy_contents_direct(&src, &dst).unwrap();
            assert_eq!(direct, direct_here && size >= 4096, "size {size}");
            // the descriptor is left as it was given: no O_DIRECT
            let flags = rustix::fs::fcntl_getfl(&dst).unwrap();
            assert!(!flags.contains(OFlags::DIRECT), "size {size}");
            drop(dst);
            assert_eq!(std::fs::read(&to).unwrap(), bytes, "size {size}");
        }
    }

    #[test]
    fn a_direct_copy_across_filesystems_falls_back_to_a_buffered_one() {
        let shm = Path::new("/dev/shm");
        let dir = tempfile::tempdir().unwrap();
        if !shm.is_dir() {
            eprintln!("SKIP: no /dev/shm");
            return;
        }
        let other = tempfile::tempdir_in(shm).unwrap();
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(dir.path().join("src"), &bytes).unwrap();
        let src: OwnedFd = std::fs::File::open(dir.path().join("src")).unwrap().into();
        let dst: OwnedFd = std::fs::File::create_new(other.path().join("dst"))
            .unwrap()
            .into();
        copy_contents_direct(&src, &dst).unwrap();
        drop(dst);
        assert_eq!(std::fs::read(other.path().join("dst")).unwrap(), bytes);
    }

    #[test]
    fn direct_io_suits_non_rotational_and_virtio_disks_only() {
        assert!(direct_io_suits_disk(Some("0"), Some("nvme")));
        assert!(direct_io_suits_disk(Some("0"), None));
        assert!(direct_io_suits_disk(Some("1"), Some("virtio_blk")));
        assert!(!direct_io_suits_disk(Some("1"), Some("sd")));
        assert!(!direct_io_suits_disk(Some("1"), None));
        assert!(!direct_io_suits_disk(None, Some("virtio_blk")));
        assert!(!direct_io_suits_disk(Some("x"), None));
    }

    #[test]
    fn direct_io_never_suits_tmpfs_or_a_missing_path() {
        assert!(!direct_io_suits(Path::new("/nonexistent/vibetrees/path")));
        if let Ok(meta) = std::fs::metadata("/dev/shm") {
            use std::os::unix::fs::MetadataExt;
            if rustix::fs::major(meta.dev()) == 0 {
                assert!(!direct_io_suits(Path::new("/dev/shm")));
            }
        }
    }

    #[test]
    fn direct_io_suits_follows_the_disks_sysfs_answer() {
        // the folder of this test's files: whatever its disk, the answer is the rule applied to
        // what sysfs says of it, read here by a second way (the disk's name under /sys/block)
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let dev = std::fs::metadata(dir.path()).unwrap().dev();
        let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
        let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
        let Ok(text) = std::fs::read_to_string(&uevent) else {
            assert!(!direct_io_suits(dir.path()), "no block device: never suits");
            return;
        };
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("DEVNAME="))
            .unwrap()
            .to_string();
        let disk = std::fs::read_dir("/sys/block")
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|d| {
                *d == name
                    || (name.starts_with(d.as_str())
                        && std::path::Path::new(&format!("/sys/block/{d}/{name}")).exists())
            })
            .unwrap();
        let rotational =
            std::fs::read_to_string(format!("/sys/block/{disk}/queue/rotational")).unwrap();
        let driver = std::fs::read_link(format!("/sys/block/{disk}/device/driver")).ok();
        let expect = match rotational.trim() {
            "0" => true,
            _ => driver.is_some_and(|d| d.ends_with("virtio_blk")),
        };
        assert_eq!(direct_io_suits(dir.path()), expect, "disk {disk}");
    }
}
