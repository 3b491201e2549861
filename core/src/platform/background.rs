//! Two primitives of the worktree pool's background work: a rename that never replaces what is
//! at its destination (the pool's claim and publication), and lowering the calling thread's CPU
//! and I/O priority (the pool's refill thread, and the threads and children it starts, inherit
//! it). Owns only how the OS is asked; the pool (`worktree/pool/`) decides when.

use std::path::Path;

/// Renames `from` to `to` unless something is at `to` (then [`std::io::ErrorKind::AlreadyExists`]):
/// `renameat2(RENAME_NOREPLACE)` on Linux, `renameatx_np(RENAME_EXCL)` on macOS, atomic both; a
/// filesystem that refuses the flag, and other platforms, check then rename (a narrow race with
/// an empty folder made at `to` in between). A `from` that is gone is
/// [`std::io::ErrorKind::NotFound`] (the loser of a claim).
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e)
                if e == rustix::io::Errno::INVAL
                    || e == rustix::io::Errno::NOSYS
                    || e == rustix::io::Errno::NOTSUP => {}
            Err(e) => return Err(e.into()),
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    std::fs::rename(from, to)
}

/// Lowers the calling thread's priority for background work: nice 19 and the idle I/O class on
/// Linux (both per thread there, inherited by the threads and processes it starts), the
/// background policy on macOS; nothing elsewhere. Best-effort: a refusal is ignored. Call it only
/// on a thread made for that work (never a pool thread that runs other work later).
pub fn lower_this_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on this thread's own id, no pointers.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        // ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT)
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_IDLE: libc::c_long = 3 << 13;
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
            IOPRIO_IDLE,
        );
    }
    #[cfg(target_os = "macos")]
    // SAFETY: a plain syscall on the calling thread, no pointers.
    unsafe {
        libc::setpriority(libc::PRIO_DARWIN_THREAD, 0, libc::PRIO_DARWIN_BG);
    }
}
