//! One end-to-end creation with real containers (podman): the critical service answers on its
//! allocated port once the creation returns, a background service is up once settled, a failing
//! service is a progress message and not a failed creation, and removal brings them down.
//! Skips with a printed reason when podman cannot run here, except with CI=true.

mod worktree_support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{ContainerRuntime, CreateOutcome, WorktreeManager, WorktreeOptions};
use worktree_support::*;

const IMAGE: &str = "localhost/vibetrees-busybox:1";

fn podman_usable() -> bool {
    let run = std::process::Command::new("podman")
        .args(["run", "--rm", IMAGE, "/bin/true"])
        .output();
    let compose = std::process::Command::new("podman-compose")
        .arg("version")
        .output();
    let why = match (run, compose) {
        (Ok(r), Ok(c)) if r.status.success() && c.status.success() => return true,
        (Ok(r), _) if !r.status.success() => {
            format!(
                "podman cannot run {IMAGE}: {}",
                String::from_utf8_lossy(&r.stderr).trim()
            )
        }
        (Err(e), _) => format!("podman is not installed ({e})"),
        _ => "podman-compose is not installed".to_string(),
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true requires podman (tests/setup-containers.sh): {why}"
    );
    eprintln!("SKIP: {why} (run tests/setup-containers.sh)");
    false
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn containers_for_real_with_podman() {
    setup();
    if !podman_usable() {
        return;
    }
    let p = project(None);
    std::fs::write(
        p.root.join("docker-compose.yml"),
        format!(
            r#"services:
  api:
    image: {IMAGE}
    command: ["sh", "-c", "mkdir -p /www && echo vibetrees-api > /www/index.html && httpd -f -p 8080 -h /www"]
    ports: ["${{API_PORT:-13080}}:8080"]
  worker:
    image: {IMAGE}
    command: ["sleep", "3600"]
  broken:
    image: localhost/vibetrees-no-such-image:1
    command: ["true"]
"#
        ),
    )
    .unwrap();
    git(&p.root, &["add", "docker-compose.yml"]);
    git(&p.root, &["commit", "-qm", "compose"]);
    let (sink, events) = recorder();
    let mut opts: WorktreeOptions = p.options();
    opts.settings.runtime = ContainerRuntime::Podman;
    opts.settings.critical_services = Some(vec!["api".into(), "broken".into()]);
    opts.on_progress = Some(sink);
    let m = WorktreeManager::new(opts).unwrap();
    let out = block_on(m.create_worktree_optimized("with-containers", "main")).unwrap();
    let CreateOutcome::Created(w) = out else {
        panic!("existed")
    };
    let port = w.ports["api"];
    // ready: the critical api answers (allow it a few seconds to bind)
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = None;
    while Instant::now() < deadline {
        answer = http_get(port);
        if answer
            .as_deref()
            .is_some_and(|a| a.contains("vibetrees-api"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ev = events.lock().clone();
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.contains("vibetrees-api")),
        "api on {port} did not answer: {answer:?}\n{ev:#?}"
    );
    // the failing service is reported, the creation succeeded
    assert!(
        ev.iter()
            .any(|e| e.step == "containers" || e.step == "database"),
        "{ev:#?}"
    );
    // settled: the background service runs
    block_on(m.wait_background());
    let ps = std::process::Command::new("podman")
        .args(["ps", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        names
            .lines()
            .any(|n| n.contains("vibe_with_containers") && n.contains("worker")),
        "{names}"
    );
    // removal brings them down
    block_on(async {
        m.remove_worktree("with-containers").await.unwrap();
        m.wait_background().await;
    });
    let ps = std::process::Command::new("podman")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(!names.contains("vibe_with_containers"), "{names}");
}
