//! Children that die with their parent: a spawned install must not go on writing into a
//! worktree after the process that started it died (even by SIGKILL) or gave up on it.
//!
//! - Linux ([`ChildTie::Native`]): `PR_SET_PDEATHSIG`, the kernel signals the child when we die.
//! - macOS and elsewhere ([`ChildTie::Native`] there, [`ChildTie::GroupWatchdog`] anywhere):
//!   the child leads its own process group, which [`ChildTies`] kills (SIGKILL) when dropped
//!   unless [released](ChildTies::release), and a watchdog kills the group when we die. The
//!   watchdog is a process forked by the child before its exec; it holds the read end of a pipe
//!   whose only write end is ours. When we die, the kernel closes our end and the watchdog reads
//!   end-of-file; when the child ends normally, [`ChildTies::release`] writes one byte and the
//!   watchdog leaves without killing anything.
//!
//! Owns only the tie: spawning, waiting and reading output stay with the caller.

use rustix::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;

/// How a child is tied to this process's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildTie {
    /// This platform's way: `PR_SET_PDEATHSIG` on Linux, [`ChildTie::GroupWatchdog`] elsewhere.
    Native,
    /// The child's own process group, killed on drop and by a watchdog when we die. The portable
    /// way; Linux tests choose it explicitly to run what macOS runs.
    GroupWatchdog,
}

/// What [`ChildTie::apply`] set up: the child's group and the watchdog's pipe. Dropping it
/// without [`release`](Self::release) kills the group (the child, its descendants that stayed
/// in the group, and the watchdog).
#[derive(Debug)]
pub struct ChildTies {
    /// The write end of the watchdog's pipe (group ties only).
    watchdog: Option<OwnedFd>,
    /// The read end, kept until the child is spawned (the child inherits it).
    watchdog_read: Option<OwnedFd>,
    /// The process group to kill on drop (the child's pid once spawned).
    group: Option<i32>,
}

impl ChildTie {
    /// Prepares `command` (before it is spawned) to be tied to this process; call
    /// [`ChildTies::spawned`] with the child's pid after the spawn.
    pub fn apply(self, command: &mut std::process::Command) -> std::io::Result<ChildTies> {
        let group = match self {
            ChildTie::Native => !native_parent_death_signal(command),
            ChildTie::GroupWatchdog => true,
        };
        if !group {
            return Ok(ChildTies {
                watchdog: None,
                watchdog_read: None,
                group: None,
            });
        }
        let (read, write) = super::portable::cloexec_pipe()?;
        let (r, w) = (read.as_raw_fd(), write.as_raw_fd());
        let max_fd = max_fd();
        command.process_group(0);
        // SAFETY: the closure runs in the child between fork and exec, and the watchdog it forks
        // runs only async-signal-safe calls (getpid, fork, close, read, kill, _exit): nothing
        // allocates or takes a lock.
        unsafe {
            command.pre_exec(move || {
                let leader = libc::getpid();
                match libc::fork() {
                    -1 => Err(std::io::Error::last_os_error()),
                    0 => watchdog(r, w, leader, max_fd),
                    _ => Ok(()),
                }
            });
        }
        Ok(ChildTies {
            watchdog: Some(write),
            watchdog_read: Some(read),
            group: None,
        })
    }
}

/// Linux: `PR_SET_PDEATHSIG`; true if set up (then no group is needed).
#[cfg(target_os = "linux")]
fn native_parent_death_signal(command: &mut std::process::Command) -> bool {
    super::linux::die_with_parent(command);
    true
}

/// Elsewhere there is no parent-death signal: the group and its watchdog serve.
#[cfg(not(target_os = "linux"))]
fn native_parent_death_signal(_command: &mut std::process::Command) -> bool {
    false
}

/// The highest descriptor number the watchdog closes up to (the soft `RLIMIT_NOFILE`, at most
/// 65,536: Node raises its limit to the hard one, and closing a free number costs ~0.1 µs).
fn max_fd() -> i32 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or(65_536, |n| n.min(65_536) as i32)
        .max(256)
}

/// The watchdog, in a process forked by the child before its exec. It closes every descriptor
/// but the pipe's read end (it inherited all of ours: holding a copy of another pipe's write
/// end would keep that pipe's reader from ever seeing end-of-file), then blocks on the pipe: one
/// byte means "released", end-of-file means our parent is gone or gave up: kill the group.
fn watchdog(read: i32, write: i32, leader: libc::pid_t, max_fd: i32) -> ! {
    // SAFETY: async-signal-safe calls only; this process never returns into Rust code.
    unsafe {
        libc::close(write);
        for fd in 0..max_fd {
            if fd != read {
                libc::close(fd);
            }
        }
        let mut byte = 0u8;
        let n = loop {
            let n = libc::read(read, (&mut byte as *mut u8).cast(), 1);
            if n >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break n;
            }
        };
        if n != 1 {
            libc::kill(-leader, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}

impl ChildTies {
    /// Records the spawned child: its pid is its process group (group ties only). Drops our copy
    /// of the watchdog's read end.
    pub fn spawned(&mut self, pid: Option<u32>) {
        self.watchdog_read = None;
        if self.watchdog.is_some() {
            self.group = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0);
        }
    }

    /// The process group the child leads, if it was given one.
    pub fn group(&self) -> Option<i32> {
        self.group
    }

    /// The child ended by itself: the watchdog leaves and nothing is killed (descendants that
    /// outlive it are left alone, as on Linux).
    pub fn release(mut self) {
        if let Some(w) = self.watchdog.take() {
            let _ = rustix::io::write(&w, &[1]);
        }
        self.group = None;
    }

    /// Kills the whole group now (SIGKILL), for a cancel or a failure.
    pub fn kill(&mut self) {
        if let Some(pgid) = self.group.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
        // the watchdog, if it is still there, reads end-of-file: the group is gone already
        self.watchdog = None;
    }
}

impl Drop for ChildTies {
    fn drop(&mut self) {
        self.kill();
    }
}
