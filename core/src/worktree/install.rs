//! The project's own install, when node_modules is not in the cache: which command, and running it
//! with its output lines as progress.
//!
//! Order of choice: a `bootstrap` script in package.json (`npm run bootstrap`), else the package
//! manager of the lockfile (pnpm, yarn, bun), else `npm ci` with a package-lock.json /
//! npm-shrinkwrap.json, else `npm install`. Commands run with arguments, never through a shell.

use crate::platform::{self, ChildTie};
use crate::progress::{ProgressEvent, ProgressSink};
use crate::{Error, Result};
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The lockfiles the install and the cache key look at: one list, the cache key's.
pub use crate::cache::LOCKFILES;

/// One command to run in the worktree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallCommand {
    /// The progress step it reports under: `install` or `bootstrap`.
    pub step: &'static str,
    /// Program name (found on PATH).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl InstallCommand {
    fn new(step: &'static str, program: &str, args: &[&str]) -> Self {
        Self {
            step,
            program: program.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The command as a person would type it, for messages.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(|s| s.as_str()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The clean install for a project with this package.json and these lockfiles (names present at
/// the root). `None` when there is no package.json.
pub fn clean_install(
    package_json: Option<&serde_json::Value>,
    lockfiles: &[String],
) -> Option<InstallCommand> {
    let pkg = package_json?;
    let has = |n: &str| lockfiles.iter().any(|l| l == n);
    if pkg
        .get("scripts")
        .and_then(|s| s.get("bootstrap"))
        .is_some_and(|v| v.is_string())
    {
        return Some(InstallCommand::new(
            "bootstrap",
            "npm",
            &["run", "bootstrap"],
        ));
    }
    if has("pnpm-lock.yaml") {
        return Some(InstallCommand::new(
            "install",
            "pnpm",
            &["install", "--frozen-lockfile"],
        ));
    }
    if has("yarn.lock") {
        return Some(InstallCommand::new(
            "install",
            "yarn",
            &["install", "--frozen-lockfile"],
        ));
    }
    if has("bun.lock") || has("bun.lockb") {
        return Some(InstallCommand::new(
            "install",
            "bun",
            &["install", "--frozen-lockfile"],
        ));
    }
    if has("package-lock.json") || has("npm-shrinkwrap.json") {
        return Some(InstallCommand::new(
            "install",
            "npm",
            &["ci", "--prefer-offline", "--no-audit", "--no-fund"],
        ));
    }
    Some(InstallCommand::new(
        "install",
        "npm",
        &["install", "--no-audit", "--no-fund"],
    ))
}

/// The install of only the difference, on top of a node_modules restored from a near cache entry
/// (an older lockfile of the same project). Only npm projects: `npm ci` would delete node_modules.
pub fn incremental_install(lockfiles: &[String]) -> Option<InstallCommand> {
    let npm = lockfiles
        .iter()
        .any(|l| l == "package-lock.json" || l == "npm-shrinkwrap.json");
    npm.then(|| {
        InstallCommand::new(
            "install",
            "npm",
            &["install", "--prefer-offline", "--no-audit", "--no-fund"],
        )
    })
}

/// Environment variable set on every install to the folder it installs into; its children
/// (npm's scripts) inherit it, so leftovers of a killed creation can be found.
pub const INSTALL_MARK: &str = "VIBETREES_INSTALL_DIR";

/// Kills (SIGKILL) the processes still installing into `dir` for a creation that died: those
/// whose environment holds [`INSTALL_MARK`]`=dir`, down to the scripts npm started (found by
/// [`platform::processes_with_env`]: `/proc` on Linux, `KERN_PROCARGS2` on macOS). Called before
/// the unfinished folder is moved aside, so nothing goes on writing into it. Returns how many.
pub fn stop_leftover_installs(dir: &Path) -> usize {
    let mut mark = format!("{INSTALL_MARK}=").into_bytes();
    mark.extend_from_slice(dir.as_os_str().as_encoded_bytes());
    platform::processes_with_env(&mark)
        .into_iter()
        .filter(|pid| platform::kill_process(*pid))
        .count()
}

/// The default of the `installTimeout` setting: 15 minutes.
pub const DEFAULT_INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Lines of output kept for the error of a failed install.
const TAIL_LINES: usize = 20;

/// Longest output line sent as one progress event; longer ones are cut there.
const MAX_LINE: usize = 16 * 1024;

/// How long the output still buffered in the pipes is read after the package manager exits
/// (a background child of a script may hold them open for ever: we never wait for their end).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// Runs `cmd` in `dir`, sending each output line as a progress event of `name`.
///
/// - The package manager runs in a process group of its own; a failure, a timeout or a cancel
///   (the future dropped) kills the whole group (SIGKILL). A success leaves its descendants alone.
/// - Its end is its exit, not the end of its output: a script that leaves a background child
///   holding stdout/stderr (`"postinstall": "node watch.js &"`) does not hold the install.
/// - Output is read as bytes and split at `\n` (invalid UTF-8 is shown with U+FFFD), so no
///   output can stop the pipes from being drained.
/// - After `timeout` the group is killed and the result is [`Error::Timeout`] with the last
///   lines of output.
///
/// A non-zero exit is [`Error::Process`] with the last lines of output.
pub async fn run(
    cmd: &InstallCommand,
    dir: &Path,
    name: &str,
    progress: Option<&ProgressSink>,
    timeout: Duration,
) -> Result<()> {
    let mut command = tokio::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.env(INSTALL_MARK, dir);
    let cannot_start = |e: std::io::Error| Error::Process {
        program: cmd.program.clone(),
        message: format!("cannot start `{}` in {}: {e}", cmd.display(), dir.display()),
    };
    // The package manager ends when we die (even by SIGKILL) or give up on it (the future is
    // dropped): PR_SET_PDEATHSIG on Linux; elsewhere a watchdog. Its own process group on every
    // platform, so that a failure, a timeout or a cancel ends its scripts too. Scripts that
    // escape the group are what [`stop_leftover_installs`] is for.
    let mut ties = ChildTie::Native
        .apply(command.as_std_mut())
        .map_err(cannot_start)?;
    command.process_group(0);
    let mut child = command.spawn().map_err(cannot_start)?;
    ties.spawned(child.id());
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let readers = [
        tokio::spawn(read_lines(
            child.stdout.take().expect("piped stdout"),
            tx.clone(),
        )),
        tokio::spawn(read_lines(child.stderr.take().expect("piped stderr"), tx)),
    ];
    let _abort = AbortOnDrop(&readers);
    let mut tail = VecDeque::<String>::with_capacity(TAIL_LINES);
    let mut emit = |line: String| {
        if let Some(p) = progress {
            p(&ProgressEvent::new(name, cmd.step, line.clone()));
        }
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let status = loop {
        tokio::select! {
            s = child.wait() => break Some(s),
            Some(line) = rx.recv() => emit(line),
            () = &mut deadline => break None,
        }
    };
    let Some(status) = status else {
        group.kill();
        let _ = child.kill().await;
        drain(&mut rx, &mut emit).await;
        return Err(Error::Timeout(format!(
            "`{}` did not finish within {} s (installTimeout): its process group was killed; \
             last output:\n{}",
            cmd.display(),
            timeout.as_secs_f64(),
            Vec::from(tail).join("\n")
        )));
    };
    drain(&mut rx, &mut emit).await;
    let status = status.map_err(|e| Error::Process {
        program: cmd.program.clone(),
        message: format!("waiting for `{}`: {e}", cmd.display()),
    })?;
    if status.success() {
        ties.release();
        group.0 = None;
        Ok(())
    } else {
        // a failed install's leftovers (its whole process group) end with it
        drop(ties);
        drop(group);
        let tail: Vec<String> = tail.into();
        Err(Error::Process {
            program: cmd.program.clone(),
            message: format!(
                "`{}` exited with {status}: {}",
                cmd.display(),
                tail.join("\n")
            ),
        })
    }
}

/// Kills (SIGKILL) a process group when dropped, unless its id was taken out.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Aborts the output readers when the install is over (or dropped): a background child may
/// hold the pipes open long after.
struct AbortOnDrop<'a>(&'a [tokio::task::JoinHandle<()>; 2]);

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        for r in self.0 {
            r.abort();
        }
    }
}

/// The output still buffered once the package manager is gone: what arrives within
/// [`DRAIN_AFTER_EXIT`], or until both pipes end.
async fn drain(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    emit: &mut impl FnMut(String),
) {
    let until = tokio::time::sleep(DRAIN_AFTER_EXIT);
    tokio::pin!(until);
    loop {
        tokio::select! {
            line = rx.recv() => match line {
                Some(l) => emit(l),
                None => return,
            },
            () = &mut until => return,
        }
    }
}

/// Reads `pipe` as bytes until its end, sending each non-empty line (split at `\n`, trailing
/// whitespace trimmed, invalid UTF-8 replaced, cut at [`MAX_LINE`] bytes).
async fn read_lines(
    mut pipe: impl AsyncRead + Unpin,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let mut buf = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    let send = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if !text.is_empty() {
            let _ = tx.send(text.to_string());
        }
        line.clear();
    };
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' || line.len() >= MAX_LINE {
                send(&mut line);
                if b == b'\n' {
                    continue;
                }
            }
            line.push(b);
        }
    }
    send(&mut line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn choice_of_install() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(clean_install(None, &l(&["package-lock.json"])), None);
        let pkg = json!({"name": "x"});
        assert_eq!(
            clean_install(Some(&pkg), &l(&["package-lock.json"]))
                .unwrap()
                .display(),
            "npm ci --prefer-offline --no-audit --no-fund"
        );
        assert_eq!(
            clean_install(Some(&pkg), &l(&["pnpm-lock.yaml"]))
                .unwrap()
                .program,
            "pnpm"
        );
        assert_eq!(
            clean_install(Some(&pkg), &l(&["yarn.lock"]))
                .unwrap()
                .program,
            "yarn"
        );
        assert_eq!(
            clean_install(Some(&pkg), &l(&["bun.lockb"]))
                .unwrap()
                .program,
            "bun"
        );
        assert_eq!(
            clean_install(Some(&pkg), &l(&[])).unwrap().display(),
            "npm install --no-audit --no-fund"
        );
        let boot = json!({"scripts": {"bootstrap": "node setup.js"}});
        let c = clean_install(Some(&boot), &l(&["package-lock.json"])).unwrap();
        assert_eq!(
            (c.step, c.display().as_str()),
            ("bootstrap", "npm run bootstrap")
        );
        assert!(incremental_install(&l(&["yarn.lock"])).is_none());
        assert!(incremental_install(&l(&["package-lock.json"])).is_some());
    }

    #[test]
    fn output_lines_become_progress_and_failures_carry_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink: ProgressSink =
            std::sync::Arc::new(move |e: &ProgressEvent| s2.lock().push(e.clone()));
        let ok = InstallCommand::new("install", "sh", &["-c", "echo one; echo two >&2"]);
        crate::runtime::block_on(run(
            &ok,
            dir.path(),
            "wt",
            Some(&sink),
            DEFAULT_INSTALL_TIMEOUT,
        ))
        .unwrap();
        let msgs: Vec<String> = seen.lock().iter().map(|e| e.message.clone()).collect();
        assert!(msgs.contains(&"one".to_string()) && msgs.contains(&"two".to_string()));
        assert!(
            seen.lock()
                .iter()
                .all(|e| e.step == "install" && e.name == "wt")
        );
        let bad = InstallCommand::new("install", "sh", &["-c", "echo broken; exit 3"]);
        let err =
            crate::runtime::block_on(run(&bad, dir.path(), "wt", None, DEFAULT_INSTALL_TIMEOUT))
                .unwrap_err();
        assert_eq!(err.code(), "PROCESS");
        assert!(err.to_string().contains("broken"), "{err}");
    }
}
