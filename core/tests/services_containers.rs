//! Containers for real with podman (auto detection, `up` of a critical service that answers on
//! 127.0.0.1, a background service, a failing service reported as a value, `down`), and the docker
//! command lines through a stand-in `docker` on PATH that records its arguments.
//!
//! The podman tests skip with a printed reason when no engine can start here, except with
//! CI=true, where they must run (the test command runs tests/setup-containers.sh first).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vibetrees_core::runtime::block_on;
use vibetrees_core::services::compose::{ServicesSource, load_services};
use vibetrees_core::services::containers::{
    ComposeProject, DetectOptions, EngineKind, LineSink, RuntimeChoice, detect_uncached,
    split_critical,
};
use vibetrees_core::services::envfile::write_env_if_absent;
use vibetrees_core::services::ports::PortRegistry;

const IMAGE: &str = "localhost/vibetrees-busybox:1";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn containers_conf() -> OsString {
    std::env::var_os("CONTAINERS_CONF").unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/containers.conf")
            .into_os_string()
    })
}

fn write_exe(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A PATH whose `docker` is a stand-in that fails `docker info` (no daemon), followed by the
/// real PATH, so `auto` must choose podman deterministically.
fn path_with_dead_docker(dir: &Path) -> OsString {
    let bin = dir.join("dead-docker-bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exe(
        &bin.join("docker"),
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n",
    );
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap()
}

/// True when podman can run the test image here; else prints why (or panics in CI).
fn podman_usable() -> bool {
    let out = std::process::Command::new("podman")
        .args(["run", "--rm", IMAGE, "/bin/true"])
        .env("CONTAINERS_CONF", containers_conf())
        .output();
    let why = match out {
        Ok(o) if o.status.success() => {
            let pc = std::process::Command::new("podman-compose")
                .arg("version")
                .output();
            match pc {
                Ok(o) if o.status.success() => return true,
                _ => "podman-compose is not installed".to_string(),
            }
        }
        Ok(o) => format!(
            "podman cannot run {IMAGE}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("podman is not installed ({e})"),
    };
    let msg = format!("{why}; run tests/setup-containers.sh and export CONTAINERS_CONF");
    if in_ci() {
        panic!("container tests must run in CI: {msg}");
    }
    eprintln!("SKIPPED podman container test: {msg}");
    false
}

fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 7 && buf.starts_with(b"HTTP/1."))
}

fn podman_names(project: &str) -> Vec<String> {
    let out = std::process::Command::new("podman")
        .args(["ps", "--format", "{{.Names}}", "--filter"])
        .arg(format!("name={project}_"))
        .env("CONTAINERS_CONF", containers_conf())
        .output()
        .unwrap();
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn podman_auto_up_critical_then_background_with_a_failing_service() {
    if !podman_usable() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = DetectOptions {
        path: Some(path_with_dead_docker(tmp.path())),
        env: vec![("CONTAINERS_CONF".into(), containers_conf())],
        ..Default::default()
    };
    let engine = block_on(detect_uncached(RuntimeChoice::Auto, &opts))
        .unwrap()
        .expect("auto finds podman");
    assert_eq!(
        engine.kind(),
        EngineKind::Podman,
        "no docker daemon: auto picks podman"
    );

    // A worktree with a compose file: api (busybox httpd), a background worker, a broken service.
    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    let compose = format!(
        "services:\n  api:\n    image: {IMAGE}\n    command: [\"/bin/httpd\", \"-f\", \"-p\", \"8080\"]\n    ports:\n      - \"${{API_PORT:-18081}}:8080\"\n  worker:\n    image: {IMAGE}\n    command: [\"/bin/sleep\", \"3600\"]\n  broken:\n    image: localhost/vibetrees-does-not-exist:1\n    command: [\"/bin/true\"]\n"
    );
    std::fs::write(wt.join("docker-compose.yml"), &compose).unwrap();
    let services = block_on(load_services(
        Some(&compose),
        Some(&wt.join("docker-compose.yml")),
        Some(&engine),
        None,
    ))
    .unwrap();
    assert_eq!(services.service_names(), vec!["api", "worker", "broken"]);

    // Pull: the local image is present, the missing one is reported, nothing is an error.
    let pulls = block_on(engine.pull_images(&[IMAGE.to_string()], None));
    assert!(pulls[0].ok, "{:?}", pulls[0]);

    let slug = format!("svc-test-{}", std::process::id());
    let reg = PortRegistry::at(tmp.path().join("ports.json"));
    let ports = reg.allocate(&slug, &services.ports).unwrap();
    let api_port = ports.get("api").unwrap();
    assert!(api_port >= 18081);
    write_env_if_absent(&wt, &slug, &ports.env_pairs()).unwrap();
    let project = ComposeProject::for_worktree(&wt, Path::new("docker-compose.yml"));
    assert_eq!(
        project.project_name.as_deref(),
        Some(format!("vibe_{}", slug.replace('-', "_")).as_str())
    );
    let project_name = project.project_name.clone().unwrap();

    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink: LineSink = {
        let lines = lines.clone();
        Arc::new(move |l: &str| lines.lock().unwrap().push(l.to_string()))
    };
    let (critical, rest) = split_critical(&services.service_names(), &["api".to_string()]);
    let up = block_on(engine.up(
        &project,
        &critical,
        Some(sink.clone()),
        Duration::from_secs(120),
    ));
    let cleanup = || {
        block_on(engine.down(
            &project,
            true,
            Some(Duration::ZERO),
            None,
            Duration::from_secs(120),
        ))
    };
    if !up.ok {
        cleanup();
        panic!("critical up failed: {up:#?}");
    }
    assert!(up.message.starts_with('✓'), "{}", up.message);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers_http(api_port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let api_answers = answers_http(api_port);
    // Only the critical service runs so far.
    let running_after_critical = podman_names(&project_name);

    // The rest in the background: the worker starts, the broken one is reported as a value.
    let background = std::thread::spawn({
        let engine = engine.clone();
        let project = project.clone();
        move || block_on(engine.up(&project, &rest, Some(sink), Duration::from_secs(120)))
    });
    let rest_outcome = background.join().unwrap();
    let running_after_rest = podman_names(&project_name);
    let down = cleanup();
    let running_after_down = podman_names(&project_name);

    assert!(api_answers, "api did not answer on 127.0.0.1:{api_port}");
    assert_eq!(
        running_after_critical,
        vec![format!("{project_name}_api_1")]
    );
    assert!(!rest_outcome.ok, "{rest_outcome:#?}");
    assert_eq!(rest_outcome.services, vec!["worker", "broken"]);
    assert!(
        rest_outcome.message.contains("failed"),
        "{}",
        rest_outcome.message
    );
    assert!(!rest_outcome.output_tail.is_empty());
    assert_eq!(
        running_after_rest,
        vec![
            format!("{project_name}_api_1"),
            format!("{project_name}_worker_1")
        ]
    );
    assert!(down.ok, "{down:#?}");
    assert!(running_after_down.is_empty(), "{running_after_down:?}");
    assert!(
        !lines.lock().unwrap().is_empty(),
        "output lines reach the sink"
    );
}

#[test]
fn explicit_runtime_missing_is_an_error_and_none_is_no_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let opts = DetectOptions {
        path: Some(empty.into_os_string()),
        ..Default::default()
    };
    assert!(
        block_on(detect_uncached(RuntimeChoice::None, &opts))
            .unwrap()
            .is_none()
    );
    assert!(
        block_on(detect_uncached(RuntimeChoice::Auto, &opts))
            .unwrap()
            .is_none()
    );
    let e = block_on(detect_uncached(RuntimeChoice::Docker, &opts)).unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    let e = block_on(detect_uncached(RuntimeChoice::Podman, &opts)).unwrap_err();
    assert!(e.to_string().contains("podman"), "{e}");
}

/// A stand-in `docker` that records every call (args, cwd, BuildKit env) to `log`, answers
/// `info` and `compose version`, and fails `image inspect` so pulls happen.
fn stand_in_docker(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("docker-bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exe(
        &bin.join("docker"),
        &format!(
            r#"#!/bin/sh
printf '%s|%s|%s%s%s\n' "$*" "$PWD" "$DOCKER_BUILDKIT" "$BUILDKIT_PROGRESS" "$COMPOSE_DOCKER_CLI_BUILD" >> '{log}'
case "$1 $2" in
  "image inspect") exit 1 ;;
esac
if [ "$1" = compose ] && [ "$4" = config ]; then
  printf 'services:\n  db:\n    image: postgres:16\n    ports:\n      - "5432:5432"\n'
fi
echo "stand-in docker: $*"
exit 0
"#,
            log = log.display()
        ),
    );
    bin
}

#[test]
fn docker_command_lines_through_a_stand_in() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("docker.log");
    let bin = stand_in_docker(tmp.path(), &log);
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let opts = DetectOptions {
        path: Some(std::env::join_paths(paths).unwrap()),
        ..Default::default()
    };
    let engine = block_on(detect_uncached(RuntimeChoice::Auto, &opts))
        .unwrap()
        .unwrap();
    assert_eq!(
        engine.kind(),
        EngineKind::Docker,
        "a docker that answers `info` wins"
    );
    assert_eq!(
        engine.compose_command(),
        vec![
            bin.join("docker").display().to_string(),
            "compose".to_string()
        ]
    );

    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    let compose =
        "services:\n  db:\n    image: postgres:16\n    ports: ['${POSTGRES_PORT:-5432}:5432']\n";
    std::fs::write(wt.join("docker-compose.yml"), compose).unwrap();
    write_env_if_absent(&wt, "feat-x", &[("POSTGRES_PORT".into(), 5433)]).unwrap();
    let project = ComposeProject::for_worktree(&wt, Path::new("docker-compose.yml"));
    let f = wt.join("docker-compose.yml").display().to_string();
    let env = wt.join(".env").display().to_string();

    let services = block_on(load_services(
        Some(compose),
        Some(&wt.join("docker-compose.yml")),
        Some(&engine),
        None,
    ))
    .unwrap();
    assert_eq!(services.source, ServicesSource::Rendered, "{services:?}");
    assert_eq!(services.ports[0].env_var, "POSTGRES_PORT");
    let pulls = block_on(engine.pull_images(&services.images(), None));
    assert!(pulls.iter().all(|p| p.ok));
    let up = block_on(engine.up(&project, &["db".to_string()], None, Duration::from_secs(30)));
    assert!(up.ok && up.message.starts_with('✓'), "{up:?}");
    assert_eq!(
        up.output_tail.last().unwrap(),
        &format!("stand-in docker: compose -f {f} -p vibe_feat_x --env-file {env} up -d -- db")
    );
    let all = block_on(engine.up(&project, &[], None, Duration::from_secs(30)));
    assert!(all.ok);
    let down = block_on(engine.down(
        &project,
        true,
        Some(Duration::ZERO),
        None,
        Duration::from_secs(30),
    ));
    assert!(down.ok);

    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let wt_s = wt.display().to_string();
    let expect = vec![
        "info||".to_string(),
        "compose version||".to_string(),
        format!("compose -f {f} config|{wt_s}|1plain1"),
        "image inspect -- postgres:16||1plain1".to_string(),
        "pull -- postgres:16||1plain1".to_string(),
        format!("compose -f {f} -p vibe_feat_x --env-file {env} up -d -- db|{wt_s}|1plain1"),
        format!("compose -f {f} -p vibe_feat_x --env-file {env} up -d|{wt_s}|1plain1"),
        format!("compose -f {f} -p vibe_feat_x --env-file {env} down -v -t 0|{wt_s}|1plain1"),
    ];
    // The probes run without a cwd of ours: compare their args only.
    let strip_cwd = |s: &str| {
        let mut parts: Vec<&str> = s.split('|').collect();
        if !parts[0].starts_with("compose -f") {
            parts[1] = "";
        }
        parts.join("|")
    };
    let got: Vec<String> = calls.iter().map(|c| strip_cwd(c)).collect();
    assert_eq!(got, expect);

    // A failing compose command is a value with the reason, not an error.
    write_exe(
        &bin.join("docker"),
        "#!/bin/sh\necho 'no such service: nope' >&2\nexit 3\n",
    );
    let bad = block_on(engine.up(
        &project,
        &["nope".to_string()],
        None,
        Duration::from_secs(30),
    ));
    assert!(!bad.ok);
    assert_eq!(bad.exit_code, Some(3));
    assert!(
        bad.message.contains("no such service: nope"),
        "{}",
        bad.message
    );
}

#[test]
fn a_command_past_its_timeout_is_stopped_with_its_children() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pidfile = tmp.path().join("grandchild.pid");
    let donefile = tmp.path().join("grandchild.done");
    // `info`/`compose version` answer; `compose ... up` starts a long grandchild and waits on it.
    write_exe(
        &bin.join("docker"),
        &format!(
            "#!/bin/sh\ncase \"$*\" in *\" up \"*) (sleep 20; echo finished > '{done}') & echo $! > '{pid}'; wait ;; esac\nexit 0\n",
            pid = pidfile.display(),
            done = donefile.display()
        ),
    );
    let mut paths = vec![bin];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let opts = DetectOptions {
        path: Some(std::env::join_paths(paths).unwrap()),
        ..Default::default()
    };
    let engine = block_on(detect_uncached(RuntimeChoice::Docker, &opts))
        .unwrap()
        .unwrap();
    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    let project = ComposeProject::for_worktree(&wt, Path::new("docker-compose.yml"));
    let out = block_on(engine.up(
        &project,
        &["db".to_string()],
        None,
        Duration::from_millis(500),
    ));
    assert!(!out.ok);
    assert!(out.message.contains("timed out"), "{}", out.message);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild was killed with the group (it may linger as a zombie of its dead parent
    // only until init reaps it).
    let deadline = Instant::now() + Duration::from_secs(10);
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(pid), "grandchild {pid} survived the timeout");
    assert!(
        !donefile.exists(),
        "the grandchild ran to its end: it was not stopped with the command"
    );
}
