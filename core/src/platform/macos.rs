//! macOS's fast paths of the OS seam: `fclonefileat` (APFS clones), `O_NOFOLLOW_ANY` (macOS 11+)
//! and `sysctl(KERN_PROCARGS2)`. Everything else is the portable way ([`super::portable`]): the
//! `fstatat` stat, `O_RDONLY|O_DIRECTORY` handles, the bind probe without `SO_REUSEADDR` (std's
//! `SO_REUSEADDR` would let a probe of 127.0.0.1 succeed beside a listener on 0.0.0.0 here) and
//! the process-group watchdog for children.
//!
//! Compiled on macOS only (checked on every run by `tests/apple-check.sh`, run by the release
//! workflow's macOS runners); owns no policy.

use super::FileStat;
use super::portable;
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{CloneFlags, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::CStr;
use std::sync::OnceLock;

pub(crate) use portable::{
    copy_contents, copy_contents_direct, direct_io_suits, listening_ports, open_dir_handle,
    open_dir_handle_path, port_in_use,
};

/// `fstatat`: macOS has no `statx`.
pub(crate) fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<FileStat, Errno> {
    portable::stat_at(dir, name)
}

/// `fclonefileat`: the new file gets the source's blocks (copy-on-write) and its mode; ownership
/// is not copied (`CLONE_NOOWNERCOPY`). `EXDEV` across volumes, `ENOTSUP` off APFS. The caller
/// sets mode and times by name (no descriptor is returned: a clone of a file without owner read
/// or write permission could not be opened to set them).
pub(crate) fn clone_file_at(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &CStr,
    _mode: u32,
) -> Result<Option<OwnedFd>, Errno> {
    let src = super::open_file_at(src_dir, name)?;
    rustix::fs::fclonefileat(&src, dst_dir, name, CloneFlags::NOOWNERCOPY)?;
    Ok(None)
}

/// Whether the kernel knows `O_NOFOLLOW_ANY` (Darwin 20, macOS 11, and later). Older kernels
/// ignore unknown open flags, which would follow links silently: there the caller walks.
fn has_nofollow_any() -> bool {
    static KNOWN: OnceLock<bool> = OnceLock::new();
    *KNOWN.get_or_init(|| {
        // SAFETY: uname(3) fills the zeroed struct it is given.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut uts) } != 0 {
            return false;
        }
        // SAFETY: uname(3) NUL-terminates each field.
        let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy();
        release
            .split('.')
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 20)
    })
}

/// `openat(root, rel, O_NOFOLLOW_ANY)`: fails with `ELOOP` on a symlink anywhere in `rel`. The
/// caller has refused `..` and absolute paths, so nothing resolves outside `root`.
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &CStr,
    flags: OFlags,
    mode: Mode,
) -> Option<Result<OwnedFd, Errno>> {
    if !has_nofollow_any() {
        return None;
    }
    Some(rustix::fs::openat(
        root,
        rel,
        flags | OFlags::NOFOLLOW_ANY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    ))
}

/// Every pid of the machine (`proc_listallpids`).
fn all_pids() -> Vec<libc::pid_t> {
    // SAFETY: a null buffer asks for the count only.
    let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
    if n <= 0 {
        return Vec::new();
    }
    // room for processes started meanwhile
    let mut pids: Vec<libc::pid_t> = vec![0; n as usize + 64];
    let bytes = (pids.len() * std::mem::size_of::<libc::pid_t>()) as libc::c_int;
    // SAFETY: the buffer holds `bytes` bytes.
    let got = unsafe { libc::proc_listallpids(pids.as_mut_ptr().cast(), bytes) };
    pids.truncate(got.max(0) as usize);
    pids
}

/// The `KERN_PROCARGS2` buffer of `pid` (arguments and environment), if we may read it (only our
/// own user's processes, unless root).
fn procargs2(pid: libc::pid_t, argmax: usize) -> Option<Vec<u8>> {
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
    let mut buf = vec![0u8; argmax];
    let mut len = buf.len();
    // SAFETY: mib has 3 entries; buf holds len bytes; no new value is set.
    let r = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (r == 0).then(|| {
        buf.truncate(len);
        buf
    })
}

/// `kern.argmax`: the largest arguments-and-environment area of a process.
fn argmax() -> usize {
    let mut mib = [libc::CTL_KERN, libc::KERN_ARGMAX];
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>();
    // SAFETY: reads one int into `value`.
    let r = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            2,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if r == 0 && value > 0 {
        value as usize
    } else {
        1 << 20
    }
}

/// `proc_listallpids`, then `sysctl(KERN_PROCARGS2)` of each: the environment of every process
/// of this user.
pub(crate) fn processes_with_env(entry: &[u8]) -> Vec<u32> {
    let me = std::process::id();
    let argmax = argmax();
    all_pids()
        .into_iter()
        .filter_map(|pid| u32::try_from(pid).ok().filter(|p| *p != 0 && *p != me))
        .filter(|pid| {
            procargs2(*pid as libc::pid_t, argmax)
                .is_some_and(|buf| super::formats::procargs2_env(&buf).contains(&entry))
        })
        .collect()
}
