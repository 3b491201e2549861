//! Compose services (from YAML, from a real `podman-compose config`, defaults), `.env`, and MCP
//! discovery with real folders (project deps, local servers, a global npm prefix folder).

use std::path::{Path, PathBuf};
use vibetrees_core::services::compose::{
    ComposeServices, ServicesSource, load_services, parse_compose_yaml, parse_rendered_config,
};
use vibetrees_core::services::envfile::{EnvFileOutcome, write_env_if_absent};
use vibetrees_core::services::mcp::{self, GlobalNpmEnv, McpSource};
use vibetrees_core::services::ports::ServicePort;

const COMPOSE: &str = r#"
services:
  postgres:
    image: postgres:16
    ports:
      - "${POSTGRES_PORT:-5432}:5432"
  api:
    build: ./api
    ports:
      - "${API_PORT:-18081}:8080"
  temporal:
    image: temporalio/auto-setup
    ports:
      - "${TEMPORAL_PORT:-7233}:7233"
      - "${TEMPORAL_UI_PORT:-8233}:8233"
  minio:
    image: minio/minio
    ports:
      - "9000:9000"
      - "9001:9001"
  web:
    image: nginx
    ports:
      - "127.0.0.1:8080:80"
      - target: 443
        published: "${WEB_TLS:-8443}"
      - 9999
      - "[::1]:${WEB_V6:-8081}:81"
  worker:
    image: busybox
    command: ["sleep", "3600"]
  debug-tools:
    image: busybox
    profiles: ["debug"]
    ports:
      - "7777:7777"
"#;

fn port(name: &str, env: &str, base: u16) -> ServicePort {
    ServicePort {
        name: name.into(),
        env_var: env.into(),
        base_port: base,
    }
}

#[test]
fn compose_yaml_names_ports_env_vars_and_bases() {
    let s = parse_compose_yaml(COMPOSE).unwrap();
    assert_eq!(s.source, ServicesSource::Yaml);
    assert_eq!(
        s.service_names(),
        vec!["postgres", "api", "temporal", "minio", "web", "worker"]
    );
    assert_eq!(
        s.ports,
        vec![
            port("postgres", "POSTGRES_PORT", 5432),
            port("api", "API_PORT", 18081),
            port("temporal", "TEMPORAL_PORT", 7233),
            port("temporal-ui", "TEMPORAL_UI_PORT", 8233),
            port("minio", "MINIO_PORT", 9000),
            port("minio-console", "MINIO_CONSOLE_PORT", 9001),
            port("web", "WEB_PORT", 8080),
            port("web-port2", "WEB_TLS", 8443),
            port("web-port3", "WEB_PORT3_PORT", 9999),
            port("web-port4", "WEB_V6", 8081),
        ]
    );
    assert_eq!(s.database_services(), vec!["postgres"]);
    // Built services are not pulled.
    assert_eq!(
        s.images(),
        vec![
            "postgres:16",
            "temporalio/auto-setup",
            "minio/minio",
            "nginx",
            "busybox"
        ]
    );
}

#[test]
fn no_compose_file_means_the_default_services() {
    let d = ComposeServices::defaults();
    assert_eq!(d.source, ServicesSource::Defaults);
    let names: Vec<_> = d.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "postgres",
            "api",
            "console",
            "temporal",
            "temporal-ui",
            "minio",
            "minio-console"
        ]
    );
    assert_eq!(d.ports[2], port("console", "CONSOLE_PORT", 5173));
    let loaded = vibetrees_core::runtime::block_on(load_services(None, None, None, None)).unwrap();
    assert_eq!(loaded, d);
}

#[test]
fn bad_compose_yaml_is_a_parse_error() {
    let err = parse_compose_yaml("services: [unclosed").unwrap_err();
    assert_eq!(err.code(), "PARSE");
    let err = parse_compose_yaml("services: 3").unwrap_err();
    assert!(err.to_string().contains("mapping"), "{err}");
    assert!(
        parse_compose_yaml("version: '3'")
            .unwrap()
            .services
            .is_empty()
    );
}

#[test]
fn rendered_config_keeps_env_var_names_from_the_raw_file() {
    // What `docker compose config` prints: long port syntax, interpolated values.
    let rendered = r#"
name: x
services:
  api:
    image: busybox
    ports:
      - mode: ingress
        target: 8080
        published: "3000"
        protocol: tcp
  temporal:
    image: t
    ports:
      - {target: 8233, published: "8300"}
      - {target: 7233, published: "7300"}
"#;
    let raw = "services:\n  api:\n    ports: ['${API_PORT:-18081}:8080']\n  temporal:\n    ports: ['${TEMPORAL_PORT:-7233}:7233', '${TEMPORAL_UI_PORT:-8233}:8233']\n";
    let s = parse_rendered_config(rendered, Some(raw)).unwrap();
    assert_eq!(s.source, ServicesSource::Rendered);
    assert_eq!(
        s.ports,
        vec![
            port("api", "API_PORT", 18081),
            // Matched by container port, not position: 8233 is TEMPORAL_UI_PORT in the raw file.
            port("temporal", "TEMPORAL_UI_PORT", 8233),
            port("temporal-ui", "TEMPORAL_PORT", 7233),
        ]
    );
    let no_raw = parse_rendered_config(rendered, None).unwrap();
    assert_eq!(no_raw.ports[0], port("api", "API_PORT", 3000));
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn tests_containers_conf() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/containers.conf")
}

/// The podman engine, or `None` after printing why (a panic in CI).
fn podman_engine() -> Option<vibetrees_core::services::containers::Engine> {
    use vibetrees_core::services::containers::{DetectOptions, RuntimeChoice, detect};
    let opts = DetectOptions {
        env: vec![(
            "CONTAINERS_CONF".into(),
            std::env::var_os("CONTAINERS_CONF").unwrap_or(tests_containers_conf().into()),
        )],
        ..Default::default()
    };
    match vibetrees_core::runtime::block_on(detect(RuntimeChoice::Podman, &opts)) {
        Ok(Some(e)) => Some(e),
        other => {
            let why = format!(
                "no podman + podman-compose here ({other:?}); run tests/setup-containers.sh"
            );
            if in_ci() {
                panic!("{why}");
            }
            eprintln!("SKIPPED podman-compose config test: {why}");
            None
        }
    }
}

#[test]
fn anchors_merge_keys_and_what_needs_rendering() {
    let text = "x-base: &base\n  image: localhost/vibetrees-busybox:1\n  ports: ['${DB_PORT:-15432}:5432']\nservices:\n  db:\n    <<: *base\n";
    let s = parse_compose_yaml(text).unwrap();
    assert_eq!(
        s.services[0].image.as_deref(),
        Some("localhost/vibetrees-busybox:1")
    );
    assert_eq!(s.ports, vec![port("db", "DB_PORT", 15432)]);
    assert!(!vibetrees_core::services::compose::needs_render(text));
    assert!(!vibetrees_core::services::compose::needs_render(COMPOSE));
    assert!(vibetrees_core::services::compose::needs_render(
        "include: [other.yml]\nservices: {}\n"
    ));
    assert!(vibetrees_core::services::compose::needs_render(
        "services:\n  a:\n    extends: {file: b.yml, service: b}\n"
    ));
}

#[test]
fn fast_load_answers_from_yaml_and_fills_the_cache_in_the_background() {
    let Some(engine) = podman_engine() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker-compose.yml");
    let text = "services:\n  web:\n    image: localhost/vibetrees-busybox:1\n    ports: ['${WEB_PORT:-18090}:80', '18091:81']\n  db:\n    image: localhost/vibetrees-busybox:1\n    ports: ['${DB_PORT:-15433}:5432']\n";
    std::fs::write(&file, text).unwrap();
    let cache = dir.path().join("cache");
    let load = || {
        vibetrees_core::runtime::block_on(vibetrees_core::services::compose::load_services_fast(
            Some(text),
            Some(&file),
            Some(&engine),
            Some(&cache),
        ))
        .unwrap()
    };
    let first = load();
    assert_eq!(first.source, ServicesSource::Yaml);
    let cache_file = vibetrees_core::services::compose::cache_path(&cache, &engine.label(), text);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !cache_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = load();
    assert_eq!(
        second.source,
        ServicesSource::Cached,
        "the background render filled the cache"
    );
    // The YAML answer and the rendered one agree.
    assert_eq!(first.ports, second.ports);
    assert_eq!(first.service_names(), second.service_names());
}

#[test]
fn services_from_a_real_podman_compose_config_are_cached_by_digest() {
    let Some(engine) = podman_engine() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("docker-compose.yml");
    let text = "services:\n  db:\n    image: localhost/vibetrees-busybox:1\n    ports:\n      - \"${DB_PORT:-15432}:5432\"\n  web:\n    image: localhost/vibetrees-busybox:1\n    ports:\n      - \"${WEB_PORT:-18080}:80\"\n      - \"18443:443\"\n";
    std::fs::write(&file, text).unwrap();
    let cache = dir.path().join("cache");
    let first = vibetrees_core::runtime::block_on(load_services(
        Some(text),
        Some(&file),
        Some(&engine),
        Some(&cache),
    ))
    .unwrap();
    assert_eq!(first.source, ServicesSource::Rendered, "{:?}", first.note);
    assert_eq!(
        first.ports,
        vec![
            port("db", "DB_PORT", 15432),
            port("web", "WEB_PORT", 18080),
            port("web-port2", "WEB_PORT2_PORT", 18443),
        ]
    );
    assert_eq!(first.database_services(), vec!["db"]);
    let cached = vibetrees_core::runtime::block_on(load_services(
        Some(text),
        Some(&file),
        Some(&engine),
        Some(&cache),
    ))
    .unwrap();
    assert_eq!(cached.source, ServicesSource::Cached);
    assert_eq!(cached.ports, first.ports);
    // Text that is not the file on disk (a blob from another tree) is parsed, never rendered
    // from the wrong file.
    let other = "services:\n  only:\n    image: x\n    ports: ['7000:7000']\n";
    let from_blob = vibetrees_core::runtime::block_on(load_services(
        Some(other),
        Some(&file),
        Some(&engine),
        Some(&cache),
    ))
    .unwrap();
    assert_eq!(from_blob.source, ServicesSource::Yaml);
    assert_eq!(from_blob.service_names(), vec!["only"]);
}

#[test]
fn env_file_format_and_never_overwritten() {
    let wt = tempfile::tempdir().unwrap();
    let pairs = vec![
        ("POSTGRES_PORT".to_string(), 5433u16),
        ("API_PORT".to_string(), 3001),
    ];
    let out = write_env_if_absent(wt.path(), "feature-login.v2", &pairs).unwrap();
    assert!(matches!(out, EnvFileOutcome::Written(_)));
    assert_eq!(out.path(), wt.path().join(".env"));
    assert_eq!(
        std::fs::read_to_string(wt.path().join(".env")).unwrap(),
        "COMPOSE_PROJECT_NAME=vibe_feature_login_v2\nPOSTGRES_PORT=5433\nAPI_PORT=3001\n"
    );
    std::fs::write(wt.path().join(".env"), "MINE=1\n").unwrap();
    let again = write_env_if_absent(wt.path(), "other", &pairs).unwrap();
    assert!(matches!(again, EnvFileOutcome::Kept(_)));
    assert_eq!(
        std::fs::read_to_string(wt.path().join(".env")).unwrap(),
        "MINE=1\n"
    );
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(wt.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(".env")]);
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn mcp_discovery_precedence_and_settings_merge() {
    let root = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(root.path()).unwrap();
    let pkg = r#"{
      "name": "app",
      "dependencies": { "@modelcontextprotocol/server-filesystem": "^1", "left-pad": "1" },
      "devDependencies": { "@modelcontextprotocol/server-postgres": "^1", "@modelcontextprotocol/server-git": "^1" }
    }"#;
    // Local servers: one per entry-file kind, a package.json main, and a folder with nothing.
    write(&root.join("mcp-servers/alpha/index.js"), "");
    write(&root.join("mcp-servers/beta/server.js"), "");
    write(&root.join("mcp-servers/gamma/main.js"), "");
    write(&root.join("mcp-servers/delta/index.mjs"), "");
    write(&root.join("mcp-servers/epsilon/server.mjs"), "");
    write(
        &root.join("mcp-servers/zeta/package.json"),
        r#"{"main": "dist/start.js"}"#,
    );
    write(&root.join("mcp-servers/empty/README.md"), "");
    // Same id as a project dependency: local wins.
    write(&root.join("mcp-servers/git/index.js"), "");
    // A fake global prefix (a real folder): prefix/lib/node_modules/@modelcontextprotocol/...
    let prefix = root.join("global-prefix");
    let global = prefix.join("lib/node_modules");
    write(
        &global.join("@modelcontextprotocol/server-memory/package.json"),
        "{}",
    );
    write(
        &global.join("@modelcontextprotocol/server-filesystem/package.json"),
        "{}",
    );
    write(&global.join("left-pad/package.json"), "{}");
    let env = GlobalNpmEnv {
        config_prefix: Some(prefix.clone().into()),
        ..Default::default()
    };
    let located = mcp::locate_global_node_modules(&env).unwrap();
    assert_eq!(located, global);

    let servers = mcp::discover(&root, Some(pkg), Some(&located)).unwrap();
    let by_id = |id: &str| servers.iter().find(|s| s.id == id).unwrap().clone();
    assert_eq!(servers.len(), 10, "{servers:#?}");
    assert_eq!(
        by_id("alpha").args,
        vec![
            root.join("mcp-servers/alpha/index.js")
                .display()
                .to_string()
        ]
    );
    assert_eq!(
        by_id("beta").args[0],
        root.join("mcp-servers/beta/server.js")
            .display()
            .to_string()
    );
    assert_eq!(
        by_id("gamma").args[0],
        root.join("mcp-servers/gamma/main.js").display().to_string()
    );
    assert_eq!(
        by_id("delta").args[0],
        root.join("mcp-servers/delta/index.mjs")
            .display()
            .to_string()
    );
    assert_eq!(
        by_id("epsilon").args[0],
        root.join("mcp-servers/epsilon/server.mjs")
            .display()
            .to_string()
    );
    assert_eq!(
        by_id("zeta").args[0],
        root.join("mcp-servers/zeta/dist/start.js")
            .display()
            .to_string()
    );
    assert!(servers.iter().all(|s| s.id != "empty"));
    assert_eq!(by_id("git").source, McpSource::Local);
    assert_eq!(by_id("git").command, "node");
    let fs = by_id("filesystem");
    assert_eq!(fs.source, McpSource::NpmProject, "project beats global");
    assert_eq!(
        (fs.command.as_str(), fs.args.clone()),
        (
            "npx",
            vec![
                "-y".to_string(),
                "@modelcontextprotocol/server-filesystem".to_string()
            ]
        )
    );
    let mem = by_id("memory");
    assert_eq!(mem.source, McpSource::NpmGlobal);
    assert_eq!(mem.command, "@modelcontextprotocol/server-memory");
    assert!(mem.args.is_empty());

    // settings.json: existing keys and other servers kept, ours merged, DATABASE_URL for postgres,
    // the host's extra entry added.
    let wt = root.join("wt");
    write(
        &wt.join(".claude/settings.json"),
        r#"{ "permissions": { "allow": ["Bash"] }, "mcpServers": { "mine": { "command": "x", "args": [] } }, "zz": 1 }"#,
    );
    let extra = vec![(
        "vibe-bridge".to_string(),
        serde_json::json!({ "command": "node", "args": ["/opt/bridge.mjs"] }),
    )];
    let (path, found) =
        mcp::configure_worktree(&root, &wt, Some(pkg), Some(&located), Some(5433), &extra).unwrap();
    assert_eq!(found.len(), 10);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["permissions"]["allow"][0], "Bash");
    assert_eq!(v["zz"], 1);
    assert_eq!(v["mcpServers"]["mine"]["command"], "x");
    assert_eq!(
        v["mcpServers"]["postgres"]["env"]["DATABASE_URL"],
        "postgresql://localhost:5433/vibe"
    );
    assert_eq!(v["mcpServers"]["postgres"]["command"], "npx");
    assert_eq!(v["mcpServers"]["vibe-bridge"]["args"][0], "/opt/bridge.mjs");
    assert!(v["mcpServers"]["filesystem"].get("env").is_none());
    // Key order of the file is kept (permissions, mcpServers, zz), 2-space indentation.
    let p = text.find("\"permissions\"").unwrap();
    let m = text.find("\"mcpServers\"").unwrap();
    let z = text.find("\"zz\"").unwrap();
    assert!(p < m && m < z, "{text}");
    assert!(
        text.starts_with("{\n  \"permissions\": {\n    \"allow\": ["),
        "{text}"
    );
    // "mine" (existing) comes before the discovered ones.
    assert!(text.find("\"mine\"").unwrap() < text.find("\"alpha\"").unwrap());

    // Without a postgres port: no env.
    let wt2 = root.join("wt2");
    std::fs::create_dir_all(&wt2).unwrap();
    let (path2, _) = mcp::configure_worktree(&root, &wt2, Some(pkg), None, None, &[]).unwrap();
    let v2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path2).unwrap()).unwrap();
    assert!(v2["mcpServers"]["postgres"].get("env").is_none());
    assert!(
        v2["mcpServers"].get("memory").is_none(),
        "no global folder given"
    );

    // A settings.json that is not an object is refused and kept.
    let wt3 = root.join("wt3");
    write(&wt3.join(".claude/settings.json"), "[1]");
    let err = mcp::configure_worktree(&root, &wt3, None, None, None, &[]).unwrap_err();
    assert_eq!(err.code(), "PARSE");
    assert_eq!(
        std::fs::read_to_string(wt3.join(".claude/settings.json")).unwrap(),
        "[1]"
    );
    // A broken package.json is a parse error naming it.
    assert_eq!(
        mcp::discover(&root, Some("{"), None).unwrap_err().code(),
        "PARSE"
    );
}

#[test]
fn global_npm_folder_is_located_like_npm_does() {
    let home = tempfile::tempdir().unwrap();
    let home = std::fs::canonicalize(home.path()).unwrap();
    // ~/.npmrc prefix with ~ expansion.
    write(&home.join(".npmrc"), "fund=false\nprefix = ~/.npm-global\n");
    let env = GlobalNpmEnv {
        home: Some(home.clone()),
        ..Default::default()
    };
    assert_eq!(
        mcp::locate_global_node_modules(&env).unwrap(),
        home.join(".npm-global/lib/node_modules")
    );
    // The env var beats the npmrc.
    let env2 = GlobalNpmEnv {
        config_prefix: Some("/opt/npm".into()),
        home: Some(home.clone()),
        ..Default::default()
    };
    assert_eq!(
        mcp::locate_global_node_modules(&env2).unwrap(),
        PathBuf::from("/opt/npm/lib/node_modules")
    );
    // No config: the prefix of the real `node` found on PATH (bin/node -> prefix).
    let fake_prefix = home.join("nodejs");
    write(&fake_prefix.join("bin/node"), "#!/bin/sh\n");
    let env3 = GlobalNpmEnv {
        home: Some(home.join("nohome")),
        path: Some(fake_prefix.join("bin").into()),
        ..Default::default()
    };
    assert_eq!(
        mcp::locate_global_node_modules(&env3).unwrap(),
        fake_prefix.join("lib/node_modules")
    );
    // Its global npmrc (<prefix>/etc/npmrc) is read too.
    write(&fake_prefix.join("etc/npmrc"), "prefix=/srv/global\n");
    assert_eq!(
        mcp::locate_global_node_modules(&env3).unwrap(),
        PathBuf::from("/srv/global/lib/node_modules")
    );
    // On this machine, when npm is installed, the computed folder is `npm root -g`.
    if let Ok(o) = std::process::Command::new("npm")
        .args(["root", "-g"])
        .output()
        && o.status.success()
    {
        let npm_says = String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert_eq!(
            mcp::global_node_modules().unwrap(),
            Path::new(&npm_says),
            "computed global folder differs from `npm root -g`"
        );
    }
}

#[test]
fn env_file_racing_writers_one_wins_whole() {
    let wt = tempfile::tempdir().unwrap();
    let results: Vec<EnvFileOutcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let p = wt.path();
                s.spawn(move || {
                    write_env_if_absent(p, &format!("wt-{i}"), &[("API_PORT".into(), 3000 + i)])
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let written: Vec<_> = results
        .iter()
        .filter(|r| matches!(r, EnvFileOutcome::Written(_)))
        .collect();
    assert_eq!(written.len(), 1, "{results:?}");
    let text = std::fs::read_to_string(wt.path().join(".env")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let i: u16 = lines[0]
        .strip_prefix("COMPOSE_PROJECT_NAME=vibe_wt_")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(lines[1], format!("API_PORT={}", 3000 + i));
}
