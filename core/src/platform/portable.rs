//! The portable fallbacks of the OS seam: POSIX calls only. They are what runs where no faster
//! path exists (macOS uses several of them as its own), and they compile and are tested on Linux
//! too: tests call these functions directly, next to the native ones of [`super`].
//!
//! Owns no policy and touches nothing but what each function names.

use super::FileStat;
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::{Errno, FdFlags};
use std::collections::HashSet;
use std::ffi::CStr;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// Widens an integer of a platform-dependent width (`mode_t`, `dev_t`, `off_t`...) to `u64`.
fn to_u64<T: TryInto<u64>>(v: T) -> u64 {
    v.try_into().unwrap_or(0)
}

/// Widens a platform-dependent signed integer (`time_t`, `long`) to `i64`.
fn to_i64<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(0)
}

/// Converts the platform's `struct stat` to a [`FileStat`].
pub(crate) fn from_stat(st: &rustix::fs::Stat) -> FileStat {
    FileStat {
        mode: to_u64(st.st_mode) as u32,
        size: to_u64(st.st_size),
        mtime_sec: to_i64(st.st_mtime),
        mtime_nsec: to_u64(st.st_mtime_nsec) as u32,
        ino: to_u64(st.st_ino),
        dev: to_u64(st.st_dev),
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the portable [`super::stat_at`].
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<FileStat, Errno> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).map(|st| from_stat(&st))
}

/// `fstat(fd)`.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<FileStat, Errno> {
    rustix::fs::fstat(fd).map(|st| from_stat(&st))
}

/// No portable clone: always `EOPNOTSUPP` (the callers copy instead).
pub fn clone_file_at(
    _src_dir: BorrowedFd<'_>,
    _dst_dir: BorrowedFd<'_>,
    _name: &CStr,
    _mode: u32,
) -> Result<Option<OwnedFd>, Errno> {
    Err(Errno::OPNOTSUPP)
}

/// Opens folder `name` of `dir` with `O_RDONLY|O_DIRECTORY|O_NOFOLLOW`: the portable directory
/// handle (needs read permission on the folder, which `O_PATH` does not).
pub fn open_dir_handle(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Opens the folder at `path` with `O_RDONLY|O_DIRECTORY`.
pub fn open_dir_handle_path(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A pipe whose two ends close on exec (set right after creation: POSIX has no `pipe2` on every
/// platform; std does the same on macOS).
pub(crate) fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe(2) fills the two-element array it is given.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by pipe(2) and are owned by nothing else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    rustix::io::fcntl_setfd(&r, FdFlags::CLOEXEC)?;
    rustix::io::fcntl_setfd(&w, FdFlags::CLOEXEC)?;
    Ok((r, w))
}

/// Reads the process umask without changing it for any thread of this process: a forked child
/// sets it (its own copy) and writes the old value into a pipe. No `/proc`, no race with threads
/// creating files meanwhile (swapping the umask in-process would have one). One `fork` per call
/// (~0.1-1 ms, by the size of the process): call it once (see [`super::umask`]).
pub fn read_umask() -> Option<u32> {
    let (r, w) = cloexec_pipe().ok()?;
    let w_raw = w.as_raw_fd();
    // SAFETY: the child only calls async-signal-safe functions (umask, write, _exit), as POSIX
    // requires after fork in a multi-threaded process; it allocates nothing.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            let old = to_u64(libc::umask(0)) as u32;
            let bytes = old.to_le_bytes();
            libc::write(w_raw, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(0);
        }
    }
    drop(w);
    if pid < 0 {
        return None;
    }
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(&r, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(_) => break,
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above (ECHILD if someone else reaped it: ignored).
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
    (got == buf.len()).then(|| u32::from_le_bytes(buf) & 0o777)
}

/// True when binding `addr` is refused with "address in use", on a socket without
/// `SO_REUSEADDR`: on BSD and macOS a socket with `SO_REUSEADDR` (std's `TcpListener` sets it)
/// may bind 127.0.0.1 beside a listener on 0.0.0.0, which hides that listener; without it, any
/// socket bound to the port on an overlapping address conflicts.
fn bind_refused(addr: &SocketAddr) -> bool {
    use rustix::net::{AddressFamily, SocketType};
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let Ok(sock) = rustix::net::socket(family, SocketType::STREAM, None) else {
        return false;
    };
    let _ = rustix::io::fcntl_setfd(&sock, FdFlags::CLOEXEC);
    matches!(rustix::net::bind(sock.as_fd(), addr), Err(Errno::ADDRINUSE))
}

/// The portable [`super::port_in_use`]: a bind without `SO_REUSEADDR` on 127.0.0.1, 0.0.0.0 and
/// `[::]`, each refused with `EADDRINUSE` when something holds the port. Microseconds; no
/// connection is made (a connect probe would open a session on a real service) and no process
/// spawned. Conservative: a port with connections in TIME_WAIT also counts as in use.
pub fn port_in_use(port: u16) -> bool {
    [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
    ]
    .iter()
    .any(bind_refused)
}

/// No portable way to list listening sockets without a process: `None`.
pub fn listening_ports() -> Option<HashSet<u16>> {
    None
}

/// No portable way to read another process's environment: none found.
pub fn processes_with_env(_entry: &[u8]) -> Vec<u32> {
    Vec::new()
}

/// No one-call no-follow resolution in POSIX: `None`, so [`super::ConfinedDir`] walks component
/// by component (`openat(O_NOFOLLOW)` each).
pub fn open_beneath(
    _root: BorrowedFd<'_>,
    _rel: &CStr,
    _flags: OFlags,
    _mode: Mode,
) -> Option<Result<OwnedFd, Errno>> {
    None
}

/// Copies the contents of `src` from its current offset to `dst` at its current offset, with
/// `std::io::copy` (which picks `copy_file_range`, `sendfile` or read/write).
pub fn copy_contents(src: &OwnedFd, dst: &OwnedFd) -> Result<(), Errno> {
    let mut src = std::fs::File::from(src.try_clone().map_err(io_errno)?);
    let mut dst = std::fs::File::from(dst.try_clone().map_err(io_errno)?);
    std::io::copy(&mut src, &mut dst).map_err(io_errno)?;
    Ok(())
}

/// No direct I/O here: the same as [`copy_contents`] (and never true).
pub fn copy_contents_direct(src: &OwnedFd, dst: &OwnedFd) -> Result<bool, Errno> {
    copy_contents(src, dst).map(|()| false)
}

/// No direct I/O here: never suits.
pub fn direct_io_suits(_path: &Path) -> bool {
    false
}

fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error()
        .map(Errno::from_raw_os_error)
        .unwrap_or(Errno::IO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstatat_sees_files_folders_and_links_without_following() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"hello").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        let fd = open_dir_handle_path(dir.path()).unwrap();
        let f = stat_at(fd.as_fd(), c"f").unwrap();
        assert_eq!(
            (f.size, f.file_type()),
            (5, rustix::fs::FileType::RegularFile)
        );
        let d = stat_at(fd.as_fd(), c"d").unwrap();
        assert_eq!(d.file_type(), rustix::fs::FileType::Directory);
        let l = stat_at(fd.as_fd(), c"l").unwrap();
        assert_eq!(l.file_type(), rustix::fs::FileType::Symlink);
        assert_eq!(stat_at(fd.as_fd(), c"missing"), Err(Errno::NOENT));
        assert_eq!(fstat(fd.as_fd()).unwrap().dev, f.dev);
    }

    #[test]
    fn the_portable_directory_handle_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::os::unix::fs::symlink("d", dir.path().join("l")).unwrap();
        let fd = open_dir_handle_path(dir.path()).unwrap();
        let d = open_dir_handle(fd.as_fd(), c"d").unwrap();
        assert!(stat_at(d.as_fd(), c"x").is_err_and(|e| e == Errno::NOENT));
        let e = open_dir_handle(fd.as_fd(), c"l").unwrap_err();
        assert!(e == Errno::LOOP || e == Errno::NOTDIR, "{e:?}");
    }
}
