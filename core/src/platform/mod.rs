//! The operating system seam: every OS-specific primitive of the core, behind one portable
//! interface, with each platform's fast path.
//!
//! | primitive | Linux (`linux.rs`) | macOS (`macos.rs`) | elsewhere (`portable.rs`) |
//! | --- | --- | --- | --- |
//! | [`stat_at`] | `statx` (falls back to `fstatat` where seccomp or an old kernel refuses it) | `fstatat` | `fstatat` |
//! | [`clone_file_at`] | `FICLONE` | `fclonefileat` (APFS) | unsupported (`EOPNOTSUPP`) |
//! | [`open_dir_handle`] | `O_PATH` | `O_RDONLY\|O_DIRECTORY` | `O_RDONLY\|O_DIRECTORY` |
//! | [`ConfinedDir`] (never through a link) | `openat2(RESOLVE_BENEATH\|RESOLVE_NO_SYMLINKS)`, per-component `O_NOFOLLOW` where `openat2` is refused | `O_NOFOLLOW_ANY` (macOS 11+), per-component before | per-component `O_NOFOLLOW` |
//! | [`umask`] | read in a forked child | the same | the same |
//! | [`port_in_use`] | a bind probe (`SO_REUSEADDR`, which on Linux still conflicts with listeners) | a bind probe without `SO_REUSEADDR` | the same |
//! | [`listening_ports`] | `/proc/net/tcp{,6}` | none (`None`) | none (`None`) |
//! | [`ChildTie::Native`] (children die with their parent) | `PR_SET_PDEATHSIG` | own process group, killed on drop, and a pipe watchdog | the same as macOS |
//! | [`processes_with_env`] | `/proc/<pid>/environ` | `sysctl(KERN_PROCARGS2)` | none (empty) |
//! | [`this_world`] / [`holder_alive`] (is a marker's pid alive), [`world_tag`] / [`tagged_holder_alive`] (the same for a pid in a folder name) | boot id + pid namespace, then `kill(pid, 0)` | unknown world: `kill(pid, 0)` | the same as macOS |
//! | [`file_holders`] (who holds a `.lock` open) | `/proc/<pid>/fd` | unknown (`None`: held) | unknown (`None`) |
//! | [`rename_no_replace`] | `renameat2(RENAME_NOREPLACE)` | `renameatx_np(RENAME_EXCL)` | check, then `rename` |
//! | [`lower_this_thread_priority`] | nice 19 + idle I/O class, per thread | `PRIO_DARWIN_BG` | nothing |
//!
//! The rest of the core and the bindings call these, never the OS-specific calls themselves.
//! Every portable fallback compiles and is tested on Linux too, reached through [`portable`]
//! directly or an explicit switch ([`ChildTie::GroupWatchdog`], [`Resolver::PerComponent`]).
//! This module owns no policy (which method a restore uses, which port a worktree gets): only
//! how the OS is asked.

mod background;
mod child;
mod confined;
pub mod formats;
mod holders;
pub mod portable;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as native;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as native;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
use portable as native;

pub use background::{lower_this_thread_priority, rename_no_replace};
pub use child::{ChildTie, ChildTies};
pub use confined::{ConfinedDir, OpenBeneath, Resolver};
pub use holders::{
    ProcessWorld, file_holders, holder_alive, tagged_holder_alive, this_world, this_world_tag,
    world_tag,
};

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::CStr;
use std::path::Path;

/// What the core reads of a file's metadata, in the same widths on every platform (`mode_t` is
/// 16 bits on macOS, 32 on Linux; `dev_t`, `ino_t` and `time_t` differ too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// File type and permission bits (`S_IFMT | 0o7777`).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time: seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time: nanoseconds.
    pub mtime_nsec: u32,
    /// Inode number.
    pub ino: u64,
    /// Device of the filesystem holding the file.
    pub dev: u64,
}

impl FileStat {
    /// The file's type.
    pub fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode as _)
    }

    /// The permission bits (`0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// A permission mode for `rustix` calls from the core's `u32` (`mode_t` is 16 bits on macOS).
/// Only the permission bits `0o7777` are kept.
pub fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode((bits & 0o7777) as _)
}

/// The metadata of `name` in `dir`, never following a symlink (`lstat` relative to a folder).
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<FileStat, Errno> {
    native::stat_at(dir, name)
}

/// The metadata of an open file or folder.
pub fn fstat(fd: BorrowedFd<'_>) -> Result<FileStat, Errno> {
    portable::fstat(fd)
}

/// Makes `name` in `dst_dir` a clone of `name` in `src_dir`: a new inode sharing the source's
/// blocks copy-on-write (`FICLONE` on XFS/btrfs, `fclonefileat` on APFS). The new file must not
/// exist; on failure nothing is left behind. The caller sets its final mode and times: the
/// returned descriptor (open for writing) when the platform had one, else by name.
///
/// Errors the callers treat as "not here, copy instead": `EOPNOTSUPP`, `EXDEV`, `EINVAL`,
/// `ENOTTY`, `ENOSYS` (see [`clone_unsupported`]).
pub fn clone_file_at(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &CStr,
    mode: u32,
) -> Result<Option<OwnedFd>, Errno> {
    native::clone_file_at(src_dir, dst_dir, name, mode)
}

/// Copies the whole contents of the open file `src` to the new file `dst` (both at offset 0):
/// in-kernel `copy_file_range` on Linux, `std::io::copy` elsewhere.
pub fn copy_contents(src: &OwnedFd, dst: &OwnedFd) -> Result<(), Errno> {
    native::copy_contents(src, dst)
}

/// [`copy_contents`] that leaves the new file's bytes out of the page cache: on Linux its
/// block-aligned part is written with `O_DIRECT` (falling back to a buffered copy where the
/// filesystem refuses); elsewhere the same as [`copy_contents`]. For bulk copies the host will
/// not read soon (a build cache into a new worktree): the page cache is not filled with a second
/// copy of the bytes, and the disk write happens during the copy instead of after it. True when
/// direct I/O wrote some of the bytes (false: a file under 4 KiB, or the filesystem refused).
pub fn copy_contents_direct(src: &OwnedFd, dst: &OwnedFd) -> Result<bool, Errno> {
    native::copy_contents_direct(src, dst)
}

/// Whether direct I/O suits the disk that holds `path` ([`copy_contents_direct`] for bulk
/// copies): on Linux, a disk the kernel reports non-rotational (SSD, NVMe) or a virtio-blk disk
/// (whose driver cannot learn the host's medium and always reports rotational); never on a
/// rotational disk (a direct write waits for the head, a buffered one does not), on a
/// filesystem without one block device (tmpfs, overlayfs, NFS, btrfs), or elsewhere than Linux.
pub fn direct_io_suits(path: &Path) -> bool {
    native::direct_io_suits(path)
}

/// Opens the file `name` of `dir` for reading, never through a link (`O_NOFOLLOW`).
pub fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Creates the file `name` in `dir` for writing, with `mode` (less the umask); fails if the
/// name exists as anything, a link included (`O_EXCL|O_NOFOLLOW`).
pub fn create_file_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        self::mode(mode),
    )
}

/// True for the errors of [`clone_file_at`] that mean "this filesystem pair cannot clone".
pub fn clone_unsupported(e: Errno) -> bool {
    e == Errno::OPNOTSUPP
        || e == Errno::XDEV
        || e == Errno::INVAL
        || e == Errno::NOTTY
        || e == Errno::NOSYS
        || e == Errno::BADF
        || e == Errno::PERM
}

/// Opens folder `name` of `dir` as a handle for `*at` calls, never through a symlink (`O_PATH` on
/// Linux: no read permission needed; `O_RDONLY|O_DIRECTORY` elsewhere).
pub fn open_dir_handle(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    native::open_dir_handle(dir, name)
}

/// Opens the folder at `path` (symlinks in it followed) as a handle for `*at` calls.
pub fn open_dir_handle_path(path: &Path) -> std::io::Result<OwnedFd> {
    native::open_dir_handle_path(path)
}

/// The process umask, read once without changing it for any other thread (a forked child swaps
/// it and reports it through a pipe) and without `/proc`. `0o022` if it cannot be read.
pub fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| portable::read_umask().unwrap_or(0o022))
}

/// True when something listens on (or holds) TCP `port` on this machine, on 127.0.0.1,
/// 0.0.0.0 or `[::]`. A bind probe per address: microseconds, no process spawned.
pub fn port_in_use(port: u16) -> bool {
    native::port_in_use(port)
}

/// The TCP ports in LISTEN state in this network namespace, where the OS lists them without a
/// process (Linux: `/proc/net/tcp{,6}`); `None` elsewhere. A diagnostic: [`port_in_use`] is what
/// allocation uses.
pub fn listening_ports() -> Option<HashSet<u16>> {
    native::listening_ports()
}

/// The pids of this user's processes (this one excluded) whose environment holds exactly the
/// entry `NAME=value`. Other users' processes are unreadable and never listed. Empty where the
/// platform has no way to read another process's environment.
pub fn processes_with_env(entry: &[u8]) -> Vec<u32> {
    native::processes_with_env(entry)
}

/// Sends SIGKILL to process `pid`; true if it was sent.
pub fn kill_process(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
}
