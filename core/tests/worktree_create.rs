//! create_worktree_optimized end to end on real git repositories, checked with the git CLI.

mod worktree_support;

use serde_json::Value;
use std::sync::Arc;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CreateOutcome, HostStep, WorktreeManager};
use worktree_support::*;

#[path = "worktree_create/names.rs"]
mod names;
#[path = "worktree_create/recovery.rs"]
mod recovery;

fn created(o: CreateOutcome) -> Box<vibetrees_core::worktree::CreatedWorktree> {
    match o {
        CreateOutcome::Created(w) => w,
        other => panic!("expected a new worktree, got {:?}", other),
    }
}

#[test]
fn cache_hit_creation_is_a_real_worktree_with_everything_in_place() {
    let p = project(None);
    p.warm_cache();
    let (sink, events) = recorder();
    let m = WorktreeManager::new(vibetrees_core::worktree::WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .unwrap();
    let out = block_on(async {
        let r = m
            .create_worktree_optimized("Feature/Login Page", "main")
            .await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let json = out.to_json();
    let w = created(out);
    let path = p.root.join(".worktrees/feature-login-page");
    assert_eq!(w.name, "feature-login-page");
    assert_eq!(w.branch, "feature-login-page");
    assert_eq!(w.path, std::fs::canonicalize(&path).unwrap());
    assert!(w.created_branch);

    // the contract's shape
    assert_eq!(json["success"], true);
    assert_eq!(json["worktree"]["name"], "feature-login-page");
    assert_eq!(json["worktree"]["dockerStatus"], serde_json::json!([]));
    assert!(json["worktree"]["ports"]["postgres"].as_u64().is_some());

    // git sees it as a worktree made by `git worktree add`
    let list = p.worktree_list();
    let canon = std::fs::canonicalize(&path).unwrap();
    let block = list
        .split("\n\n")
        .find(|b| b.contains(&format!("worktree {}", canon.display())))
        .unwrap_or_else(|| panic!("not in worktree list: {list}"));
    assert!(
        block.contains("branch refs/heads/feature-login-page"),
        "{block}"
    );
    assert!(
        !block.contains("locked"),
        "creation lock left behind: {block}"
    );
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&path, &["rev-parse", "HEAD"]),
        git(&p.root, &["rev-parse", "main"])
    );
    assert_eq!(
        git(&path, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "feature-login-page"
    );
    assert_eq!(git(&path, &["ls-files"]), git(&p.root, &["ls-files"]));
    assert_eq!(git(&path, &["diff", "main", "--stat"]), "");

    // node_modules equal to the source, from the cache
    assert_eq!(w.cache.outcome, "hit");
    assert_eq!(
        tree(&path.join("node_modules")),
        tree(&p.root.join("node_modules"))
    );

    // .env, ports.json, .claude/settings.json
    let env = std::fs::read_to_string(path.join(".env")).unwrap();
    assert!(
        env.starts_with("COMPOSE_PROJECT_NAME=vibe_feature_login_page\n"),
        "{env}"
    );
    let pg = w.ports["postgres"];
    assert!(env.contains(&format!("POSTGRES_PORT={pg}\n")), "{env}");
    let reg: Value = serde_json::from_slice(&std::fs::read(p.ports_json()).unwrap()).unwrap();
    assert_eq!(reg["feature-login-page:postgres"], pg);
    let settings: Value =
        serde_json::from_slice(&std::fs::read(path.join(".claude/settings.json")).unwrap())
            .unwrap();
    assert_eq!(settings["mcpServers"]["postgres"]["command"], "npx");
    assert_eq!(
        settings["mcpServers"]["postgres"]["env"]["DATABASE_URL"],
        format!("postgresql://localhost:{pg}/vibe")
    );

    // each contract step reported done, complete last
    let ev = events.lock().clone();
    for step in ["git", "ports", "mcp", "install", "complete"] {
        assert!(
            ev.iter()
                .any(|e| e.step == step && e.message.starts_with('✓')),
            "no ✓ for {step}: {ev:?}"
        );
    }
    assert!(ev.iter().all(|e| e.name == "feature-login-page"));

    // the profile: total span and the contract's step names, the critical path, the history
    let metrics = m.get_performance_metrics();
    assert!(metrics.avg_worktree_creation.is_some());
    for name in [
        "git-worktree-add",
        "allocate-ports",
        "mcp-discovery",
        "npm-bootstrap",
        "docker-compose-up",
    ] {
        assert!(
            metrics.operations.iter().any(|o| o.name == name),
            "no span {name}"
        );
    }
    // the critical path is a chain of steps of this run, ending with the last step to finish
    assert!(!w.critical_path.is_empty());
    assert!(
        w.critical_path
            .iter()
            .all(|n| w.timings.iter().any(|t| &t.name == n))
    );
    let h = vibetrees_core::worktree::history::History::open(&p.history).unwrap();
    let recent = h.recent(10).unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].cache_outcome, "hit");
    let trace: Value =
        serde_json::from_str(&h.trace("feature-login-page").unwrap().unwrap()).unwrap();
    assert!(
        trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "git-worktree-add")
    );
    // no staging left
    let staging = p.root.join(".worktrees/.staging");
    assert!(!staging.exists() || std::fs::read_dir(&staging).unwrap().count() == 0);
}

#[test]
fn node_modules_restore_runs_beside_the_checkout_not_after_it() {
    let p = project(None);
    p.warm_cache();
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = created(block_on(m.create_worktree_optimized("parallel", "main")).unwrap());
    let t = |n: &str| w.timings.iter().find(|t| t.name == n).unwrap().clone();
    let (git, restore, boot) = (
        t("git-worktree-add"),
        t("cache-restore"),
        t("npm-bootstrap"),
    );
    // the restore started before the checkout ended; the rename waited for both
    assert!(restore.start_ms.unwrap() < git.start_ms.unwrap() + git.duration_ms.unwrap());
    let git_end = git.start_ms.unwrap() + git.duration_ms.unwrap();
    let restore_end = restore.start_ms.unwrap() + restore.duration_ms.unwrap();
    assert!(boot.start_ms.unwrap() >= git_end.max(restore_end));
}

#[test]
fn an_existing_worktree_is_reported_and_left_unchanged() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let first = block_on(m.create_worktree_optimized("again", "main")).unwrap();
    assert!(!first.existed());
    let marker = p.root.join(".worktrees/again/my-work.txt");
    std::fs::write(&marker, "keep me").unwrap();
    let before = p.worktree_list();
    let second = block_on(m.create_worktree_optimized("again", "main")).unwrap();
    assert_eq!(
        second.to_json(),
        serde_json::json!({
            "success": true, "name": "again",
            "path": p.root.join(".worktrees/again").canonicalize().unwrap(),
            "branch": "again", "existed": true, "message": "Worktree already exists"
        })
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "keep me");
    assert_eq!(p.worktree_list(), before);
}

#[test]
fn a_miss_runs_the_bootstrap_script_then_populates_the_cache_in_the_background() {
    let pkg = r#"{
  "name": "boot",
  "version": "1.0.0",
  "scripts": { "bootstrap": "node -e \"const fs=require('fs');fs.mkdirSync('node_modules/made',{recursive:true});fs.writeFileSync('node_modules/made/index.js','ok');console.log('bootstrapped')\"" }
}
"#;
    let p = project(Some(pkg));
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: node is not installed");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "node is required in CI"
        );
        return;
    }
    let (sink, events) = recorder();
    let m = WorktreeManager::new(vibetrees_core::worktree::WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .unwrap();
    let w = created(block_on(m.create_worktree_optimized("boot", "main")).unwrap());
    assert_eq!(w.cache.outcome, "miss");
    assert_eq!(
        w.cache.install_command.as_deref(),
        Some("npm run bootstrap")
    );
    assert!(
        w.cache.install_error.is_none(),
        "{:?}",
        w.cache.install_error
    );
    assert_eq!(
        std::fs::read_to_string(w.path.join("node_modules/made/index.js")).unwrap(),
        "ok"
    );
    let ev = events.lock().clone();
    assert!(
        ev.iter()
            .any(|e| e.step == "bootstrap" && e.message.contains("bootstrapped")),
        "{ev:?}"
    );
    assert!(w.cache.populating);
    block_on(m.wait_background());
    // the background populate is in the creation's trace (after the "ready" mark, on its own
    // track) and in its history steps
    let h = vibetrees_core::worktree::history::History::open(&p.history).unwrap();
    let trace: Value = serde_json::from_str(&h.trace("boot").unwrap().unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let find = |n: &str| events.iter().find(|e| e["name"] == n).cloned();
    let populate = find("cache-populate").expect("cache-populate in the trace");
    let ready = find("ready").expect("a ready mark in the trace");
    let total = find("create-worktree-total").unwrap();
    assert_eq!(populate["args"]["background"], true);
    assert_eq!(populate["args"]["failed"], false);
    assert_eq!(total["args"]["background"], false);
    assert_eq!(ready["ph"], "i");
    assert!(populate["ts"].as_f64().unwrap() >= total["ts"].as_f64().unwrap());
    assert_ne!(populate["tid"], total["tid"]);
    let rec = &h.recent(1).unwrap()[0];
    let step = rec
        .steps
        .iter()
        .find(|s| s.step == "cache-populate")
        .expect("cache-populate in the history");
    assert!(!step.critical);
    assert!(
        (step.duration_ms - populate["dur"].as_f64().unwrap() / 1000.0).abs() < 0.01,
        "{step:?} {populate}"
    );
    // the next creation is a hit
    let w2 = created(block_on(m.create_worktree_optimized("boot-two", "main")).unwrap());
    assert_eq!(w2.cache.outcome, "hit");
    assert_eq!(
        tree(&w2.path.join("node_modules")),
        tree(&w.path.join("node_modules"))
    );
}

#[test]
fn host_steps_run_where_their_dependencies_put_them() {
    let p = project(None);
    p.warm_cache();
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let s2 = seen.clone();
    let step = HostStep {
        name: "host-check".into(),
        dependencies: vec!["npm-bootstrap".into(), "write-env".into()],
        optional: false,
        body: Arc::new(move |input: vibetrees_core::worktree::HostStepInput| {
            let s2 = s2.clone();
            Box::pin(async move {
                let has_nm = input.path.join("node_modules/left-pad/index.js").exists();
                let has_env = input.path.join(".env").exists();
                *s2.lock() = Some((has_nm, has_env, input.dependencies.len()));
                Ok(serde_json::json!({ "checked": true }))
            })
        }),
    };
    let m = WorktreeManager::new(vibetrees_core::worktree::WorktreeOptions {
        host_steps: vec![step],
        ..p.options()
    })
    .unwrap();
    let w = created(block_on(m.create_worktree_optimized("hosted", "main")).unwrap());
    assert_eq!(*seen.lock(), Some((true, true, 2)));
    assert_eq!(w.steps["host-check"]["checked"], true);

    // a failing required host step fails the creation and leaves no worktree behind
    let failing = HostStep {
        name: "host-fail".into(),
        dependencies: vec!["git-worktree-add".into()],
        optional: false,
        body: Arc::new(|_| {
            Box::pin(async { Err(vibetrees_core::optimizer::TaskError::new("host said no")) })
        }),
    };
    let m2 = WorktreeManager::new(vibetrees_core::worktree::WorktreeOptions {
        host_steps: vec![failing],
        ..p.options()
    })
    .unwrap();
    let err = block_on(async {
        let r = m2.create_worktree_optimized("hosted-fail", "main").await;
        m2.wait_background().await;
        r
    })
    .unwrap_err();
    assert!(err.to_string().contains("host said no"), "{err}");
    assert!(!p.root.join(".worktrees/hosted-fail").exists());
    assert!(!p.worktree_list().contains("hosted-fail"));
    let reg = std::fs::read_to_string(p.ports_json()).unwrap_or_default();
    assert!(
        !reg.contains("\"hosted-fail:"),
        "ports of a failed creation kept: {reg}"
    );
    // and a retry (without the failing step) works
    created(block_on(m.create_worktree_optimized("hosted-fail", "main")).unwrap());
}

#[test]
fn removal_releases_ports_unregisters_and_trashes_the_folder() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = created(block_on(m.create_worktree_optimized("to-remove", "main")).unwrap());
    let listed = block_on(m.list_worktrees()).unwrap();
    assert!(
        listed
            .iter()
            .any(|i| i.name == "to-remove" && i.ports == w.ports)
    );
    let out = block_on(async {
        let r = m.remove_worktree("to-remove").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    assert_eq!(out.released_ports, w.ports);
    assert!(!w.path.exists());
    assert!(
        !out.trashed_to.unwrap().exists(),
        "trash not deleted in the background"
    );
    assert!(!p.worktree_list().contains("to-remove"));
    let reg = std::fs::read_to_string(p.ports_json()).unwrap();
    assert!(!reg.contains("to-remove:"), "{reg}");
    assert!(
        p.branches().contains(&"to-remove".to_string()),
        "the branch is kept"
    );
    assert_eq!(
        block_on(m.remove_worktree("to-remove")).unwrap_err().code(),
        "NOT_FOUND"
    );
    assert_eq!(
        block_on(m.remove_worktree("..")).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
}

#[test]
fn an_older_lockfile_of_the_same_project_is_restored_then_only_the_difference_installed() {
    let pkg = r#"{ "name": "app", "version": "1.0.0" }
"#;
    let p = project(Some(pkg));
    if std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "npm is required in CI"
        );
        eprintln!("SKIP: npm is not installed");
        return;
    }
    let m = WorktreeManager::new(p.options()).unwrap();
    // the main worktree's node_modules goes into the cache, with its key's inputs
    block_on(async {
        m.warm().await.unwrap();
        m.wait_background().await;
    });
    // a branch whose lockfile differs: its key is not cached, the main one is near
    git(&p.root, &["checkout", "-q", "-b", "next"]);
    let lock = std::fs::read_to_string(p.root.join("package-lock.json")).unwrap();
    std::fs::write(
        p.root.join("package-lock.json"),
        lock.replace("\"requires\": true", "\"requires\": false"),
    )
    .unwrap();
    git(&p.root, &["commit", "-qam", "lockfile changed"]);
    git(&p.root, &["checkout", "-q", "main"]);
    let (sink, events) = recorder();
    let m = WorktreeManager::new(vibetrees_core::worktree::WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .unwrap();
    let w = created(block_on(m.create_worktree_optimized("near-one", "next")).unwrap());
    assert_eq!(w.cache.outcome, "near", "{:?} {:?}", w.cache, events.lock());
    assert_eq!(
        w.cache.install_command.as_deref(),
        Some("npm install --prefer-offline --no-audit --no-fund")
    );
    assert!(
        w.cache.install_error.is_none(),
        "{:?}",
        w.cache.install_error
    );
    // npm kept node_modules (no `npm ci` wipe) and pruned what the lockfile does not name
    assert!(w.path.join("node_modules").is_dir());
    assert!(!w.path.join("node_modules/left-pad").exists());
    assert!(w.cache.populating);
    block_on(m.wait_background());
    let again = created(block_on(m.create_worktree_optimized("near-two", "next")).unwrap());
    assert_eq!(again.cache.outcome, "hit");
}

#[test]
fn the_same_name_twice_at_once_makes_one_worktree() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let (a, b) = block_on(async {
        futures::join!(
            m.create_worktree_optimized("twice", "main"),
            m.create_worktree_optimized("twice", "main")
        )
    });
    let results = [a, b];
    let made = results
        .iter()
        .filter(|r| matches!(r, Ok(o) if !o.existed()))
        .count();
    assert_eq!(made, 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.code(), "LOCK", "{e}");
        }
    }
    let path = p.root.join(".worktrees/twice");
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert!(!p.worktree_list().contains("locked"));
}

#[test]
fn the_branch_is_pushed_in_the_background_when_asked() {
    let p = project(None);
    let remote = p.root.parent().unwrap().join("remote.git");
    git(
        p.root.parent().unwrap(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    git(
        &p.root,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let (sink, events) = recorder();
    let mut opts = p.options();
    opts.settings.push_branch = true;
    opts.on_progress = Some(sink);
    let m = WorktreeManager::new(opts).unwrap();
    let w = created(block_on(m.create_worktree_optimized("pushed", "main")).unwrap());
    assert!(
        w.background.contains(&"git-push".to_string()),
        "{:?}",
        w.background
    );
    block_on(m.wait_background());
    let heads = git(&remote, &["for-each-ref", "--format=%(refname)"]);
    assert!(heads.contains("refs/heads/pushed"), "{heads}");
    let ev = events.lock().clone();
    assert!(
        ev.iter()
            .any(|e| e.step == "git" && e.message == "✓ Branch pushed pushed"),
        "{ev:?}"
    );
}

#[test]
fn a_runtime_asked_for_by_name_but_missing_is_a_message_not_a_failed_creation() {
    let p = project(None);
    p.warm_cache();
    std::fs::write(
        p.root.join("docker-compose.yml"),
        "services:\n  db:\n    image: postgres:16\n    ports: [\"5432:5432\"]\n",
    )
    .unwrap();
    git(&p.root, &["add", "docker-compose.yml"]);
    git(&p.root, &["commit", "-qm", "compose"]);
    let git_path = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    // No docker anywhere on PATH (git is named directly).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args([
            "create",
            "no-docker",
            "--runtime",
            "docker",
            "--json",
            "--cache-dir",
        ])
        .arg(&p.cache_dir)
        .arg("--repo")
        .arg(&p.root)
        .arg("--git")
        .arg(git_path.trim())
        .env("HOME", home.path())
        .env("PATH", empty_path.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(
        json["worktree"]["steps"]["compose-services"]["engineError"],
        "containers skipped: not found: docker: no `docker` program on PATH",
        "{json}"
    );
    let wt = p.root.join(".worktrees/no-docker");
    assert!(wt.join(".env").is_file());
    assert!(wt.join("node_modules/left-pad/index.js").is_file());
}
