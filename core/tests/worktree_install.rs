//! The install step never hangs: it waits for the package manager's exit (not for the end of its
//! output), reads bytes (not UTF-8 lines), and its time limit kills the whole process group.
//! Real npm, real shells, real background processes.

mod worktree_support;

use std::path::Path;
use std::time::Duration;
use vibetrees_core::progress::ProgressSink;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::install::{self, DEFAULT_INSTALL_TIMEOUT, InstallCommand};
use worktree_support::*;

fn command(program: &str, args: &[&str]) -> InstallCommand {
    InstallCommand {
        step: "install",
        program: program.to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// Longest a run of these tests' installs may take before the test calls it a hang and fails
/// (each finishes in seconds; the install's own limit in these tests is 15 minutes, so without
/// this a regression would hang the suite instead of failing it).
const HANG: Duration = Duration::from_secs(180);

/// Runs the install on its own thread and waits for it at most [`HANG`]: a test of "never
/// hangs" fails when it hangs (the stuck thread is left behind; the test process ends anyway).
fn run(
    cmd: &InstallCommand,
    dir: &Path,
    sink: Option<&ProgressSink>,
    timeout: Duration,
) -> vibetrees_core::Result<()> {
    let (cmd, dir, sink) = (cmd.clone(), dir.to_path_buf(), sink.cloned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(block_on(install::run(
            &cmd,
            &dir,
            "wt",
            sink.as_ref(),
            timeout,
        )));
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("the install did not return within {HANG:?}: it hangs"))
}

/// True while `pid` is a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Kills the test's own background process, by its pid.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on a pid this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn a_postinstall_leaving_a_background_child_on_stdout_does_not_hold_the_install() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    // the script starts a detached child that keeps npm's stdout and stderr open for 5 minutes
    std::fs::write(
        dir.path().join("package.json"),
        r#"{"name":"hang","version":"1.0.0","scripts":{"postinstall":"node -e \"const c=require('child_process').spawn('sleep',['300'],{stdio:'inherit',detached:true});require('fs').writeFileSync('bg.pid',String(c.pid));c.unref()\""}}"#,
    )
    .unwrap();
    let cmd = command("npm", &["install", "--no-audit", "--no-fund"]);
    let r = run(&cmd, dir.path(), None, DEFAULT_INSTALL_TIMEOUT);
    let bg = read_pid(&dir.path().join("bg.pid"));
    let _kill = KillOnDrop(bg);
    r.unwrap();
    // npm has exited and the install is over while the child still holds the pipes
    assert!(
        alive(bg),
        "the install returned only once the child holding its output was gone"
    );
}

#[test]
fn output_that_is_not_utf8_is_drained_and_shown() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    let (sink, events) = recorder();
    // an invalid UTF-8 line first, then far more than a pipe's buffer (64 KiB) of output
    let script = "printf 'bad \\377\\376 bytes\\n'; i=0; while [ $i -lt 20000 ]; do \
                  echo \"line $i of the install output\"; i=$((i+1)); done; echo done >&2";
    let cmd = command("sh", &["-c", script]);
    run(&cmd, dir.path(), Some(&sink), DEFAULT_INSTALL_TIMEOUT).unwrap();
    let msgs: Vec<String> = events.lock().iter().map(|e| e.message.clone()).collect();
    assert_eq!(msgs[0], "bad \u{FFFD}\u{FFFD} bytes", "{:?}", &msgs[..3]);
    assert!(msgs.contains(&"line 19999 of the install output".to_string()));
    assert!(msgs.contains(&"done".to_string()));
}

#[test]
fn the_time_limit_kills_the_install_group_and_fails_with_its_last_lines() {
    setup();
    let dir = tempfile::tempdir().unwrap();
    // a script whose child stays in the install's process group
    let script = "sleep 600 & echo $! > child.pid; echo started the long part; wait";
    let cmd = command("sh", &["-c", script]);
    let err = run(&cmd, dir.path(), None, Duration::from_millis(1500)).unwrap_err();
    let child = read_pid(&dir.path().join("child.pid"));
    let _kill = KillOnDrop(child);
    assert_eq!(err.code(), "TIMEOUT", "{err}");
    let text = err.to_string();
    assert!(text.contains("installTimeout"), "{text}");
    assert!(text.contains("started the long part"), "{text}");
    // the group was killed: the script's child is gone too (SIGKILL is delivered, not timed)
    let mut tries = 0;
    while alive(child) && tries < 1000 {
        std::thread::sleep(Duration::from_millis(10));
        tries += 1;
    }
    assert!(!alive(child), "the install's child survived the time limit");
}

#[test]
fn install_timeout_is_a_setting_in_milliseconds_with_a_15_minute_default() {
    use vibetrees_core::worktree::WorktreeSettings;
    let s = WorktreeSettings::from_json(r#"{"rootDir": "/p"}"#).unwrap();
    assert_eq!(s.install_timeout, Duration::from_secs(900));
    let s = WorktreeSettings::from_json(r#"{"rootDir": "/p", "installTimeout": 1500}"#).unwrap();
    assert_eq!(s.install_timeout, Duration::from_millis(1500));
}
