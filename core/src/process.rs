//! Other processes, as crash recovery sees them: is the process that left a marker still alive?
//!
//! Recovery (stale locks, half-made worktrees, temporary folders of dead restores) deletes only
//! what a dead process left. Deleting what a live one still uses loses data, so every doubt
//! answers "alive": a process we may not signal (another user's) is alive.

/// True unless the process `pid` certainly does not exist (`kill(pid, 0)` fails with `ESRCH`).
///
/// `EPERM` (a process of another user) counts as alive, and so do pid 0 and pids that do not fit
/// a `pid_t`: recovery never treats what it cannot check as dead.
pub fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return true;
    };
    let Some(pid) = rustix::process::Pid::from_raw(raw) else {
        return true;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn what_cannot_be_checked_counts_as_alive() {
        assert!(alive(0));
        assert!(alive(u32::MAX));
        // pid 1 belongs to root: alive whether we may signal it or not
        assert!(alive(1));
    }
}
