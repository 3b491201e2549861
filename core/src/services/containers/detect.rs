//! Finding the container engine (`auto | docker | podman | none`): which program answers, with
//! its compose command, searched on `PATH` (or the given one) and probed with a time limit.
//! Results are cached per process and options ([`detect`]); [`detect_uncached`] always probes.

use super::{DetectOptions, Engine, EngineKind, RuntimeChoice};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::process::Command;

fn search_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = match path {
        Some(p) => p.to_os_string(),
        None => std::env::var_os("PATH")?,
    };
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs a command quietly; true when it exits 0 within `timeout`.
async fn probe(program: &Path, args: &[&str], opts: &DetectOptions, timeout: Duration) -> bool {
    let path_env = opts.path.as_deref();
    let mut cmd = Command::new(program);
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    match cmd.spawn() {
        Ok(mut child) => matches!(
            tokio::time::timeout(timeout, child.wait()).await,
            Ok(Ok(s)) if s.success()
        ),
        Err(_) => false,
    }
}

type DetectKey = (RuntimeChoice, Option<OsString>, Vec<(OsString, OsString)>);
static DETECTED: OnceLock<Mutex<HashMap<DetectKey, Option<Engine>>>> = OnceLock::new();

/// Detects the engine for `choice`, once per (choice, PATH) per process (later calls reuse it).
///
/// `Ok(None)`: no containers (`none`, or `auto` with no usable engine). An explicit `docker` or
/// `podman` that is not installed is an [`Error::NotFound`] naming what is missing.
pub async fn detect(choice: RuntimeChoice, opts: &DetectOptions) -> Result<Option<Engine>> {
    let key = (choice, opts.path.clone(), opts.env.clone());
    if let Some(found) = DETECTED.get_or_init(Default::default).lock().get(&key) {
        return Ok(found.clone());
    }
    let found = detect_uncached(choice, opts).await?;
    DETECTED
        .get_or_init(Default::default)
        .lock()
        .insert(key, found.clone());
    Ok(found)
}

/// [`detect`] without the per-process memo (runs the probes every time).
pub async fn detect_uncached(
    choice: RuntimeChoice,
    opts: &DetectOptions,
) -> Result<Option<Engine>> {
    let timeout = opts.probe_timeout.unwrap_or(Duration::from_secs(5));
    match choice {
        RuntimeChoice::None => Ok(None),
        RuntimeChoice::Docker => match find_docker(opts, timeout, false).await {
            Some(e) => Ok(Some(e)),
            None => Err(Error::NotFound(
                "docker: no `docker` program on PATH".into(),
            )),
        },
        RuntimeChoice::Podman => match find_podman(opts, timeout).await {
            Some(e) => Ok(Some(e)),
            None => Err(Error::NotFound(
                "podman: needs `podman` and `podman-compose` (or `podman compose`) on PATH".into(),
            )),
        },
        RuntimeChoice::Auto => {
            if let Some(e) = find_docker(opts, timeout, true).await {
                return Ok(Some(e));
            }
            Ok(find_podman(opts, timeout).await)
        }
    }
}

async fn find_docker(opts: &DetectOptions, timeout: Duration, need_daemon: bool) -> Option<Engine> {
    let path = opts.path.as_deref();
    let docker = search_path("docker", path)?;
    if need_daemon && !probe(&docker, &["info"], opts, timeout).await {
        return None;
    }
    let compose = if probe(&docker, &["compose", "version"], opts, timeout).await {
        vec![docker.clone().into_os_string(), "compose".into()]
    } else if let Some(dc) = search_path("docker-compose", path) {
        vec![dc.into_os_string()]
    } else {
        vec![docker.clone().into_os_string(), "compose".into()]
    };
    Some(Engine {
        kind: EngineKind::Docker,
        engine: docker,
        compose,
        path_env: path.map(|p| p.to_os_string()),
        env: opts.env.clone(),
    })
}

async fn find_podman(opts: &DetectOptions, timeout: Duration) -> Option<Engine> {
    let path = opts.path.as_deref();
    let podman = search_path("podman", path)?;
    let compose = if let Some(pc) = search_path("podman-compose", path) {
        vec![pc.into_os_string()]
    } else if probe(&podman, &["compose", "version"], opts, timeout).await {
        vec![podman.clone().into_os_string(), "compose".into()]
    } else {
        return None;
    };
    Some(Engine {
        kind: EngineKind::Podman,
        engine: podman,
        compose,
        path_env: path.map(|p| p.to_os_string()),
        env: opts.env.clone(),
    })
}
