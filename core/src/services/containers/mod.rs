//! The container engine: detection (`auto | docker | podman | none`: `detect.rs`), image pulls,
//! `compose up` (critical services first, the rest later) and `compose down`.
//!
//! Every command is run as a program with arguments, never through a shell. Failures of the
//! containers are returned as [`ContainerOutcome`] values (the manager turns them into progress
//! messages); only a misuse (an explicit runtime that is not installed) is an [`Error`].
//! Every compose command runs with BuildKit on ([`buildkit_env`]) so image layers are shared
//! across worktrees.

mod detect;

pub use detect::{detect, detect_uncached};

use crate::error::{Error, Result};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Which container runtime to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeChoice {
    /// Docker if `docker info` answers, else podman if it and a compose tool are installed, else none.
    #[default]
    Auto,
    /// Docker (`docker compose`, or `docker-compose`).
    Docker,
    /// Podman (`podman-compose`, or `podman compose`).
    Podman,
    /// No containers: services come from the compose YAML, nothing is started.
    None,
}

impl std::str::FromStr for RuntimeChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "docker" => Ok(Self::Docker),
            "podman" => Ok(Self::Podman),
            "none" => Ok(Self::None),
            other => Err(Error::InvalidArgument(format!(
                "container runtime must be auto, docker, podman or none, not {other:?}"
            ))),
        }
    }
}

impl std::fmt::Display for RuntimeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::None => "none",
        })
    }
}

/// The kind of a detected engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Docker.
    Docker,
    /// Podman.
    Podman,
}

/// The BuildKit environment every compose command runs with (the contract's `getDockerCacheEnv()`).
pub fn buildkit_env() -> [(&'static str, &'static str); 3] {
    [
        ("DOCKER_BUILDKIT", "1"),
        ("BUILDKIT_PROGRESS", "plain"),
        ("COMPOSE_DOCKER_CLI_BUILD", "1"),
    ]
}

/// Where to look for the engine's programs. Default: the process's `PATH`.
#[derive(Debug, Clone, Default)]
pub struct DetectOptions {
    /// A `PATH` to search and to give the engine's commands instead of the process's own.
    pub path: Option<OsString>,
    /// How long `docker info` / `podman compose version` may take (default 5 s).
    pub probe_timeout: Option<Duration>,
    /// Extra environment for every command of the engine (e.g. `CONTAINERS_CONF`).
    pub env: Vec<(OsString, OsString)>,
}

/// A detected container engine and its compose command.
#[derive(Debug, Clone)]
pub struct Engine {
    kind: EngineKind,
    engine: PathBuf,
    compose: Vec<OsString>,
    path_env: Option<OsString>,
    env: Vec<(OsString, OsString)>,
}

/// Receives each output line of a running command (stdout and stderr), e.g. to send progress.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// A compose project of one worktree.
#[derive(Debug, Clone)]
pub struct ComposeProject {
    /// The folder the commands run in (the worktree).
    pub dir: PathBuf,
    /// The compose file (absolute, or relative to `dir`).
    pub file: PathBuf,
    /// The env file given with `--env-file` (the worktree's `.env`), when there is one.
    pub env_file: Option<PathBuf>,
    /// The project name given with `-p` (the `.env`'s `COMPOSE_PROJECT_NAME`), when known.
    pub project_name: Option<String>,
}

impl ComposeProject {
    /// The project of `worktree`: compose file `file_name` in it, `--env-file .env` when the
    /// `.env` exists, `-p` from its `COMPOSE_PROJECT_NAME` line. The `.env` is read beneath the
    /// worktree without following links: a linked `.env` is not used.
    pub fn for_worktree(worktree: &Path, file_name: &Path) -> Self {
        let env = worktree.join(".env");
        let text = crate::platform::ConfinedDir::open(worktree)
            .and_then(|d| d.read(".env"))
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let (env_file, project_name) = match text {
            Ok(text) => {
                let name = crate::services::envfile::parse_env(&text)
                    .into_iter()
                    .find(|(k, _)| k == "COMPOSE_PROJECT_NAME")
                    .map(|(_, v)| v);
                (Some(env), name)
            }
            Err(_) => (None, None),
        };
        Self {
            dir: worktree.to_path_buf(),
            file: worktree.join(file_name),
            env_file,
            project_name,
        }
    }

    fn global_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-f".into(), self.file.clone().into_os_string()];
        if let Some(p) = &self.project_name {
            a.push("-p".into());
            a.push(p.into());
        }
        if let Some(e) = &self.env_file {
            a.push("--env-file".into());
            a.push(e.clone().into_os_string());
        }
        a
    }
}

/// The result of one container command; a failure here is reported, it does not fail a creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOutcome {
    /// What was done: `pull`, `up`, `down`, `config`.
    pub action: String,
    /// The services (or images, for `pull`) it was about.
    pub services: Vec<String>,
    /// True when the command exited with status 0.
    pub ok: bool,
    /// The exit status, when it exited.
    pub exit_code: Option<i32>,
    /// One line for a progress message: `✓ ...` on success, the reason on failure.
    pub message: String,
    /// The last lines of its output (at most 40).
    pub output_tail: Vec<String>,
    /// Wall time in milliseconds.
    pub duration_ms: f64,
}

const TAIL: usize = 40;

/// Kills a command's process group when dropped before the command finished (a cancelled
/// future) or on request (a timeout).
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take()
            && let Ok(pid) = i32::try_from(pid)
            && pid > 0
        {
            // SAFETY: plain syscall; a negative pid addresses the process group we created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Output of a finished command.
struct RunOutput {
    status: Option<i32>,
    spawn_error: Option<String>,
    tail: Vec<String>,
    stdout: String,
    timed_out: bool,
}

impl Engine {
    /// Docker or podman.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The engine program (`/usr/bin/podman`).
    pub fn engine_program(&self) -> &Path {
        &self.engine
    }

    /// The compose command as words (`["/usr/bin/docker", "compose"]`, `["/usr/local/bin/podman-compose"]`).
    pub fn compose_command(&self) -> Vec<String> {
        self.compose
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    /// A short label for caches and messages: `docker compose`, `podman-compose`.
    pub fn label(&self) -> String {
        self.compose
            .iter()
            .map(|s| {
                Path::new(s)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn command(&self, program: &OsStr, args: &[OsString], cwd: Option<&Path>) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in buildkit_env() {
            cmd.env(k, v);
        }
        if let Some(p) = &self.path_env {
            cmd.env("PATH", p);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        cmd
    }

    fn compose_cmd(&self, args: Vec<OsString>, cwd: Option<&Path>) -> Command {
        let mut all: Vec<OsString> = self.compose[1..].to_vec();
        all.extend(args);
        self.command(&self.compose[0], &all, cwd)
    }

    async fn run(
        &self,
        mut cmd: Command,
        on_line: Option<&LineSink>,
        timeout: Duration,
        keep_stdout: bool,
    ) -> RunOutput {
        // Its own process group, so a timeout or a cancellation stops the whole tree
        // (podman-compose runs podman, which runs conmon...), not only the compose process.
        cmd.process_group(0);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return RunOutput {
                    status: None,
                    spawn_error: Some(e.to_string()),
                    tail: Vec::new(),
                    stdout: String::new(),
                    timed_out: false,
                };
            }
        };
        let mut group = GroupGuard(child.id());
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL)));
        let stdout_buf = Arc::new(Mutex::new(String::new()));
        let push = {
            let tail = tail.clone();
            let sink = on_line.cloned();
            move |line: &str| {
                if let Some(s) = &sink {
                    s(line);
                }
                let mut t = tail.lock();
                if t.len() == TAIL {
                    t.pop_front();
                }
                t.push_back(line.to_string());
            }
        };
        let out = child.stdout.take().map(|o| {
            let push = push.clone();
            let buf = stdout_buf.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(o).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if keep_stdout {
                        let mut b = buf.lock();
                        b.push_str(&l);
                        b.push('\n');
                    } else {
                        push(&l);
                    }
                }
            })
        });
        let err = child.stderr.take().map(|e| {
            let push = push.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(e).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    push(&l);
                }
            })
        });
        let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(s)) => (s.code(), false),
            Ok(Err(_)) => (None, false),
            Err(_) => {
                group.kill();
                let _ = child.kill().await;
                (None, true)
            }
        };
        group.0 = None; // exited: its group id may be reused, never signal it again
        // A grandchild that outlived the command may still hold the pipes open: read what is
        // left for a moment, then stop reading instead of waiting for it.
        for mut h in [out, err].into_iter().flatten() {
            if tokio::time::timeout(Duration::from_secs(2), &mut h)
                .await
                .is_err()
            {
                h.abort();
            }
        }
        let tail = tail.lock().iter().cloned().collect();
        let stdout = std::mem::take(&mut *stdout_buf.lock());
        RunOutput {
            status,
            spawn_error: None,
            tail,
            stdout,
            timed_out,
        }
    }

    fn outcome(
        &self,
        action: &str,
        services: &[String],
        out: RunOutput,
        started: Instant,
        timeout: Duration,
    ) -> ContainerOutcome {
        let ok = out.status == Some(0);
        let what = if services.is_empty() {
            "all services".to_string()
        } else {
            services.join(", ")
        };
        let message = if ok {
            format!("✓ {} {action}: {what}", self.label())
        } else if let Some(e) = &out.spawn_error {
            format!("{} {action} could not start: {e}", self.label())
        } else if out.timed_out {
            format!(
                "{} {action} of {what} timed out after {} s",
                self.label(),
                timeout.as_secs()
            )
        } else {
            let last = out
                .tail
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .cloned()
                .unwrap_or_default();
            format!(
                "{} {action} of {what} failed (exit {}): {last}",
                self.label(),
                out.status.map(|c| c.to_string()).unwrap_or("signal".into())
            )
        };
        ContainerOutcome {
            action: action.into(),
            services: services.to_vec(),
            ok,
            exit_code: out.status,
            message,
            output_tail: out.tail,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }

    /// `<compose> -f FILE config`: the rendered compose file (YAML), run in `dir`.
    pub async fn compose_config(&self, file: &Path, dir: &Path) -> Result<String> {
        let args = vec![
            "-f".into(),
            file.as_os_str().to_os_string(),
            "config".into(),
        ];
        let cmd = self.compose_cmd(args, Some(dir));
        let out = self.run(cmd, None, Duration::from_secs(60), true).await;
        if out.status == Some(0) {
            return Ok(out.stdout);
        }
        Err(Error::Process {
            program: self.label(),
            message: match out.spawn_error {
                Some(e) => format!("config: cannot start: {e}"),
                None => format!(
                    "config -f {} exited {:?}: {}",
                    file.display(),
                    out.status,
                    out.tail.join("\n")
                ),
            },
        })
    }

    /// Pulls the images that are not present yet (`<engine> image inspect`, then `<engine> pull`),
    /// all at once; one outcome per image pulled or found.
    pub async fn pull_images(
        &self,
        images: &[String],
        on_line: Option<LineSink>,
    ) -> Vec<ContainerOutcome> {
        let jobs = images.iter().map(|image| {
            let on_line = on_line.clone();
            async move {
                let started = Instant::now();
                if !super::names::valid_image(image) {
                    let why = format!("image {image:?} refused: not a valid image reference");
                    return ContainerOutcome::refused("pull", std::slice::from_ref(image), why);
                }
                let inspect = vec!["image".into(), "inspect".into(), "--".into(), image.into()];
                let mut cmd = self.command(self.engine.as_os_str(), &inspect, None);
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
                if matches!(cmd.status().await, Ok(s) if s.success()) {
                    return ContainerOutcome {
                        action: "pull".into(),
                        services: vec![image.clone()],
                        ok: true,
                        exit_code: Some(0),
                        message: format!("✓ image {image} present"),
                        output_tail: Vec::new(),
                        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                    };
                }
                let timeout = Duration::from_secs(600);
                let cmd = self.command(
                    self.engine.as_os_str(),
                    &["pull".into(), "--".into(), image.into()],
                    None,
                );
                let out = self.run(cmd, on_line.as_ref(), timeout, false).await;
                self.outcome("pull", std::slice::from_ref(image), out, started, timeout)
            }
        });
        futures::future::join_all(jobs).await
    }

    /// `<compose> -f FILE [-p NAME] [--env-file .env] up -d [-- services...]` in the project
    /// folder (all services when `services` is empty; a name that is not compose-valid is
    /// refused, nothing runs). Output lines go to `on_line`.
    pub async fn up(
        &self,
        project: &ComposeProject,
        services: &[String],
        on_line: Option<LineSink>,
        timeout: Duration,
    ) -> ContainerOutcome {
        let started = Instant::now();
        let mut args = project.global_args();
        args.push("up".into());
        args.push("-d".into());
        if !services.is_empty() {
            // names come from a compose file: never read as options
            if let Some(bad) = services
                .iter()
                .find(|s| !super::names::valid_service_name(s))
            {
                let why = format!("service name {bad:?} refused: not a valid compose name");
                return ContainerOutcome::refused("up", services, why);
            }
            args.push("--".into());
        }
        args.extend(services.iter().map(OsString::from));
        let cmd = self.compose_cmd(args, Some(&project.dir));
        let out = self.run(cmd, on_line.as_ref(), timeout, false).await;
        self.outcome("up", services, out, started, timeout)
    }

    /// `<compose> -f FILE [-p NAME] [--env-file .env] down [-v] [-t SECS]`: stops and removes the
    /// project's containers (and its volumes with `remove_volumes`). `stop_timeout` is how long each
    /// container gets to stop before it is killed (compose's default is 10 s; removal of a
    /// worktree can pass zero).
    pub async fn down(
        &self,
        project: &ComposeProject,
        remove_volumes: bool,
        stop_timeout: Option<Duration>,
        on_line: Option<LineSink>,
        timeout: Duration,
    ) -> ContainerOutcome {
        let started = Instant::now();
        let mut args = project.global_args();
        args.push("down".into());
        if remove_volumes {
            args.push("-v".into());
        }
        if let Some(t) = stop_timeout {
            args.push("-t".into());
            args.push(t.as_secs().to_string().into());
        }
        let cmd = self.compose_cmd(args, Some(&project.dir));
        let out = self.run(cmd, on_line.as_ref(), timeout, false).await;
        self.outcome("down", &[], out, started, timeout)
    }
}

/// Splits `services` into the critical ones (started before "ready") and the rest, keeping order.
/// Names in `critical` that are not services are ignored.
pub fn split_critical(services: &[String], critical: &[String]) -> (Vec<String>, Vec<String>) {
    services
        .iter()
        .cloned()
        .partition(|s| critical.iter().any(|c| c == s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_parses_and_prints() {
        for c in ["auto", "docker", "podman", "none"] {
            assert_eq!(c.parse::<RuntimeChoice>().unwrap().to_string(), c);
        }
        assert_eq!(
            "dockr".parse::<RuntimeChoice>().unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
    }

    #[test]
    fn critical_split_keeps_order() {
        let s: Vec<String> = ["db", "api", "worker"].map(String::from).to_vec();
        let (c, r) = split_critical(&s, &["worker".into(), "db".into(), "nope".into()]);
        assert_eq!(c, vec!["db", "worker"]);
        assert_eq!(r, vec!["api"]);
    }
}
