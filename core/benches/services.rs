//! The service steps of a worktree creation, each measured alone: ports allocation under the
//! proper-lockfile-compatible lock, the "in use" check (bind probe vs `/proc/net/tcp` vs spawning
//! `lsof`, as the Node server did), compose services (YAML, `podman-compose config`, the digest
//! cache), MCP discovery (reading the global folder vs running `npm list -g`), and `.env`.
//!
//! Run: `cargo bench -p vibetrees-core --bench services`. Podman / lsof / npm rows are skipped with
//! a message when the tool is missing.

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use vibetrees_core::runtime::block_on;
use vibetrees_core::services::compose::{load_services, parse_compose_yaml};
use vibetrees_core::services::containers::{DetectOptions, RuntimeChoice, detect_uncached};
use vibetrees_core::services::ports::{
    PortRegistry, default_service_ports, is_port_in_use, listening_ports,
};

const COMPOSE: &str = "services:\n  postgres:\n    image: localhost/vibetrees-busybox:1\n    ports: ['${POSTGRES_PORT:-5432}:5432']\n  api:\n    image: localhost/vibetrees-busybox:1\n    ports: ['${API_PORT:-3000}:3000']\n  temporal:\n    image: localhost/vibetrees-busybox:1\n    ports: ['${TEMPORAL_PORT:-7233}:7233', '${TEMPORAL_UI_PORT:-8233}:8233']\n  minio:\n    image: localhost/vibetrees-busybox:1\n    ports: ['9000:9000', '9001:9001']\n";

fn have(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ports(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let reg = PortRegistry::for_project_in(home.path(), Path::new("/bench/project"));
    let services = default_service_ports();
    // 20 other worktrees in the registry, as on a busy project.
    for i in 0..20 {
        reg.allocate(&format!("other-{i}"), &services).unwrap();
    }
    let mut g = c.benchmark_group("ports");
    g.bench_function("allocate 7 new + release (lock, read, write x2)", |b| {
        b.iter(|| {
            reg.allocate("bench-wt", &services).unwrap();
            reg.release("bench-wt").unwrap();
        })
    });
    reg.allocate("kept", &services).unwrap();
    g.bench_function("allocate 7 existing (lock, read)", |b| {
        b.iter(|| reg.allocate("kept", &services).unwrap())
    });
    g.bench_function("in-use check: bind probe of one port", |b| {
        b.iter(|| is_port_in_use(5432))
    });
    g.bench_function(
        "in-use check: portable bind probe (macOS's, no SO_REUSEADDR)",
        |b| b.iter(|| vibetrees_core::platform::portable::port_in_use(5432)),
    );
    g.bench_function("in-use check: /proc/net/tcp{,6} listing", |b| {
        b.iter(listening_ports)
    });
    if have("lsof", &["-v"]) || Path::new("/usr/bin/lsof").exists() {
        g.sample_size(10);
        g.bench_function("in-use check: spawn `lsof -i :5432` (the original)", |b| {
            b.iter(|| Command::new("lsof").args(["-i", ":5432"]).output())
        });
    } else {
        eprintln!("skipping the lsof row: lsof is not installed");
    }
    g.finish();
}

fn compose(c: &mut Criterion) {
    let mut g = c.benchmark_group("compose");
    g.bench_function("services from YAML", |b| {
        b.iter(|| parse_compose_yaml(COMPOSE).unwrap())
    });
    let opts = DetectOptions {
        env: std::env::var_os("CONTAINERS_CONF")
            .map(|v| vec![("CONTAINERS_CONF".into(), v)])
            .unwrap_or_default(),
        ..Default::default()
    };
    match block_on(detect_uncached(RuntimeChoice::Podman, &opts)) {
        Ok(Some(engine)) => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("docker-compose.yml");
            std::fs::write(&file, COMPOSE).unwrap();
            let cache = dir.path().join("cache");
            g.sample_size(10);
            g.bench_function("services from `podman-compose config` (no cache)", |b| {
                b.iter(|| {
                    block_on(load_services(
                        Some(COMPOSE),
                        Some(&file),
                        Some(&engine),
                        None,
                    ))
                    .unwrap()
                })
            });
            g.sample_size(100);
            g.bench_function("services from the digest cache", |b| {
                b.iter(|| {
                    block_on(load_services(
                        Some(COMPOSE),
                        Some(&file),
                        Some(&engine),
                        Some(&cache),
                    ))
                    .unwrap()
                })
            });
        }
        other => eprintln!("skipping podman rows: no podman engine ({other:?})"),
    }
    g.sample_size(10);
    g.bench_function("detect auto (docker info + podman lookup)", |b| {
        b.iter(|| block_on(detect_uncached(RuntimeChoice::Auto, &opts)).unwrap())
    });
    g.finish();
}

fn mcp(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    let pkg = r#"{"dependencies":{"@modelcontextprotocol/server-filesystem":"1"},"devDependencies":{"@modelcontextprotocol/server-postgres":"1"}}"#;
    for id in ["a", "b", "c"] {
        let d = root.path().join("mcp-servers").join(id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("index.js"), "").unwrap();
    }
    let global = vibetrees_core::services::mcp::global_node_modules();
    let mut g = c.benchmark_group("mcp");
    g.bench_function("discover (local + project + global folder read)", |b| {
        b.iter(|| vibetrees_core::services::mcp::discover(root.path(), Some(pkg), global).unwrap())
    });
    let wt = root.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    g.bench_function("discover + write .claude/settings.json", |b| {
        b.iter(|| {
            vibetrees_core::services::mcp::configure_worktree(
                root.path(),
                &wt,
                Some(pkg),
                global,
                Some(5432),
                &[],
            )
            .unwrap()
        })
    });
    if have("npm", &["--version"]) {
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(10));
        g.bench_function("`npm list -g --depth=0 --json` (the original)", |b| {
            b.iter(|| {
                Command::new("npm")
                    .args(["list", "-g", "--depth=0", "--json"])
                    .output()
                    .unwrap()
            })
        });
    } else {
        eprintln!("skipping the npm row: npm is not installed");
    }
    g.finish();
}

fn envfile(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<(String, u16)> = default_service_ports()
        .into_iter()
        .map(|p| (p.env_var, p.base_port))
        .collect();
    c.bench_function("envfile/write .env if absent", |b| {
        b.iter(|| {
            let _ = std::fs::remove_file(dir.path().join(".env"));
            vibetrees_core::services::envfile::write_env_if_absent(dir.path(), "bench-wt", &pairs)
                .unwrap()
        })
    });
}

criterion_group!(benches, ports, compose, mcp, envfile);
criterion_main!(benches);
