//! Running one hook: `sh -c <command>` in the worktree, in its own process group (tied to this
//! process: killed when we die, when the creation is cancelled and at its timeout), with the
//! worktree's `.env` and `VIBETREES_WORKTREE`, `VIBETREES_BRANCH`, `VIBETREES_PORT_<SERVICE>` in
//! its environment. Each output line goes to the progress sink (`step: 'hooks'`) and to the
//! creation's log file. The hook is over when `sh` exits: a background child it leaves behind
//! (which may keep the output pipes open) never holds it open.

use super::{Hook, HookSource};
use crate::platform::ChildTie;
use crate::progress::{ProgressEvent, ProgressSink};
use crate::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// How long output is still read after `sh` exited: what is buffered in the pipes arrives at
/// once; a background child that keeps them open is not waited for.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(200);

/// The environment of a creation's hooks.
#[derive(Debug, Clone, Default)]
pub struct HookEnv {
    /// The worktree's folder (`VIBETREES_WORKTREE`, the working directory).
    pub worktree: PathBuf,
    /// Its branch (`VIBETREES_BRANCH`).
    pub branch: String,
    /// The main worktree (`VIBETREES_ROOT`, and Conductor's `CONDUCTOR_ROOT_PATH`).
    pub root: PathBuf,
    /// Its ports: `(service, port)` (`VIBETREES_PORT_<SERVICE>`).
    pub ports: Vec<(String, u16)>,
}

impl HookEnv {
    /// The variables a hook gets on top of ours: the worktree's `.env` (read now, beneath the
    /// worktree, never through a link), then the `VIBETREES_*` ones.
    pub fn vars(&self, source: HookSource) -> Vec<(String, String)> {
        let mut vars = crate::platform::ConfinedDir::open(&self.worktree)
            .ok()
            .and_then(|d| d.read_if_exists(".env").ok().flatten())
            .map(|b| crate::services::envfile::parse_env(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        let w = self.worktree.display().to_string();
        vars.push(("VIBETREES_WORKTREE".into(), w.clone()));
        vars.push(("VIBETREES_BRANCH".into(), self.branch.clone()));
        vars.push(("VIBETREES_ROOT".into(), self.root.display().to_string()));
        for (service, port) in &self.ports {
            let key: String = service
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            vars.push((format!("VIBETREES_PORT_{key}"), port.to_string()));
        }
        if source == HookSource::ConductorJson {
            vars.push((
                "CONDUCTOR_ROOT_PATH".into(),
                self.root.display().to_string(),
            ));
            vars.push(("CONDUCTOR_WORKSPACE_PATH".into(), w));
            vars.push(("CONDUCTOR_WORKSPACE_NAME".into(), self.branch.clone()));
        }
        vars
    }

    /// worktrunk's template variables this engine fills in: `{{ branch }}`,
    /// `{{ worktree_path }}`, `{{ repo_path }}` (approval is of the text before this).
    pub fn expand(&self, command: &str) -> String {
        let mut out = command.to_string();
        for (names, value) in [
            (&["branch"][..], self.branch.clone()),
            (
                &["worktree_path", "worktree"][..],
                self.worktree.display().to_string(),
            ),
            (
                &["repo_path", "repo_root"][..],
                self.root.display().to_string(),
            ),
        ] {
            for n in names {
                for pat in [format!("{{{{ {n} }}}}"), format!("{{{{{n}}}}}")] {
                    out = out.replace(&pat, &value);
                }
            }
        }
        out
    }
}

/// Where a creation's hooks write: the progress sink and the log file.
#[derive(Clone)]
pub struct HookRunner {
    /// The worktree's name (progress events).
    pub name: String,
    /// The environment.
    pub env: HookEnv,
    /// Progress events (`step: 'hooks'`).
    pub progress: Option<ProgressSink>,
    /// The creation's log file, every hook's lines prefixed `[name] `.
    pub log: PathBuf,
}

/// What one hook did. JSON: `{ name, source, phase, ok, exitCode, timedOut, ms, error, log }`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookRan {
    /// The hook.
    pub name: String,
    /// Where it was declared.
    pub source: HookSource,
    /// `post-create` or `post-ready`.
    pub phase: super::HookPhase,
    /// Exited 0 in time.
    pub ok: bool,
    /// Its exit code (`None`: killed by a signal, or at its timeout).
    pub exit_code: Option<i32>,
    /// Killed at its time limit.
    pub timed_out: bool,
    /// Failure is not fatal.
    pub optional: bool,
    /// Wall time, ms.
    pub ms: f64,
    /// Why it failed, with the last lines of its output.
    pub error: Option<String>,
    /// The log file.
    pub log: PathBuf,
}

impl HookRunner {
    fn emit(&self, message: String) {
        if let Some(p) = &self.progress {
            let e = ProgressEvent::new(&self.name, "hooks", message);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p(&e)));
        }
    }

    fn log_line(&self, line: &str) {
        if let Some(dir) = self.log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    /// One line of output or of our own, to both the progress and the log.
    fn line(&self, hook: &str, line: &str) {
        self.log_line(&format!("[{hook}] {line}"));
        self.emit(format!("[{hook}] {line}"));
    }
}

/// Runs `hook` to its end (exit, timeout). Never fails for the hook's own failure: that is in
/// [`HookRan::ok`]; `Err` only when `sh` cannot be started.
pub async fn run_hook(hook: &Hook, runner: &HookRunner) -> Result<HookRan> {
    let started = Instant::now();
    let command_text = runner.env.expand(&hook.command);
    runner.line(&hook.name, &format!("$ {command_text}"));
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&command_text)
        .current_dir(&runner.env.worktree)
        .envs(runner.env.vars(hook.source))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let cannot_start = |e: std::io::Error| Error::Process {
        program: "sh".into(),
        message: format!("cannot start hook {}: {e}", hook.name),
    };
    // its own process group, killed when this future is dropped (a cancelled creation), at the
    // timeout, and by a watchdog when we die
    let mut ties = ChildTie::GroupWatchdog
        .apply(command.as_std_mut())
        .map_err(cannot_start)?;
    let mut child = command.spawn().map_err(cannot_start)?;
    ties.spawned(child.id());
    let tail = Arc::new(parking_lot::Mutex::new(std::collections::VecDeque::new()));
    let readers = [
        reader(child.stdout.take(), hook, runner, &tail),
        reader(child.stderr.take(), hook, runner, &tail),
    ];
    let waited = tokio::time::timeout(hook.timeout, child.wait()).await;
    let (status, timed_out) = match waited {
        Ok(Ok(s)) => (Some(s), false),
        Ok(Err(e)) => {
            drop(ties);
            return Err(Error::Process {
                program: "sh".into(),
                message: format!("waiting for hook {}: {e}", hook.name),
            });
        }
        Err(_) => {
            ties.kill();
            let _ = child.wait().await;
            (None, true)
        }
    };
    if !timed_out {
        // sh exited: its background children live on, outside our wait
        ties.release();
    }
    for r in readers {
        let mut r = r;
        if tokio::time::timeout(DRAIN_AFTER_EXIT, &mut r)
            .await
            .is_err()
        {
            r.abort();
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let exit_code = status.and_then(|s| s.code());
    let ok = status.is_some_and(|s| s.success());
    let error = (!ok).then(|| {
        let why = if timed_out {
            format!("timed out after {:.0} s", hook.timeout.as_secs_f64())
        } else {
            format!(
                "exited with {}",
                status.map_or("?".into(), |s| s.to_string())
            )
        };
        let tail: Vec<String> = tail.lock().iter().cloned().collect();
        format!("hook {} {why}: {}", hook.name, tail.join("\n"))
    });
    runner.line(
        &hook.name,
        &match &error {
            None => format!("✓ done in {ms:.0} ms"),
            Some(_) if timed_out => format!("timed out after {ms:.0} ms (killed)"),
            Some(_) => format!("failed: exit code {exit_code:?}"),
        },
    );
    Ok(HookRan {
        name: hook.name.clone(),
        source: hook.source,
        phase: hook.phase,
        ok,
        exit_code,
        timed_out,
        optional: hook.optional,
        ms,
        error,
        log: runner.log.clone(),
    })
}

/// Reads one output pipe line by line into the progress, the log and the tail.
fn reader(
    pipe: Option<impl AsyncRead + Unpin + Send + 'static>,
    hook: &Hook,
    runner: &HookRunner,
    tail: &Arc<parking_lot::Mutex<std::collections::VecDeque<String>>>,
) -> tokio::task::JoinHandle<()> {
    let (runner, name, tail) = (runner.clone(), hook.name.clone(), Arc::clone(tail));
    tokio::spawn(async move {
        let Some(pipe) = pipe else { return };
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            runner.line(&name, line.trim_end());
            let mut t = tail.lock();
            if t.len() == 10 {
                t.pop_front();
            }
            t.push_back(line);
        }
    })
}

/// The log file of one creation of `name` in the project at `root`:
/// `~/.vibetrees/<parent>-<child>/hooks/<name>-<unix ms>.log`.
pub fn log_path(root: &Path, name: &str, started_at_ms: i64) -> PathBuf {
    crate::worktree::history::vibetrees_home()
        .join(crate::services::ports::registry_dir_name(root))
        .join("hooks")
        .join(format!("{name}-{started_at_ms}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktrunk_variables_are_filled_in_and_ports_named() {
        let env = HookEnv {
            worktree: "/w/feat".into(),
            branch: "feat".into(),
            root: "/p".into(),
            ports: vec![("api-gateway".into(), 3001)],
        };
        assert_eq!(
            env.expand("echo {{ branch }} {{worktree_path}} {{ repo_path }} {{ other }}"),
            "echo feat /w/feat /p {{ other }}"
        );
        let vars = env.vars(HookSource::ConductorJson);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("VIBETREES_PORT_API_GATEWAY"), Some("3001"));
        assert_eq!(get("VIBETREES_BRANCH"), Some("feat"));
        assert_eq!(get("CONDUCTOR_ROOT_PATH"), Some("/p"));
        assert_eq!(
            env.vars(HookSource::Host)
                .iter()
                .filter(|(k, _)| k.starts_with("CONDUCTOR"))
                .count(),
            0
        );
    }
}
