//! Setup hooks on real repositories and real processes: approved and unapproved repository
//! hooks, a failing one, an optional one, two in parallel (shown by each waiting for the other),
//! one leaving a background child behind, one past its timeout, and hooks read from worktrunk's
//! `.config/wt.toml` and Conductor's `conductor.json`.

mod worktree_support;

use serde_json::json;
use std::path::Path;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::hooks::{Approvals, HookDef, HookSpec, HooksConfig};
use vibetrees_core::worktree::{CreateOutcome, CreatedWorktree, WorktreeManager, WorktreeSettings};
use worktree_support::*;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn settings(p: &Project) -> WorktreeSettings {
    WorktreeSettings {
        runtime: vibetrees_core::worktree::ContainerRuntime::None,
        cache_dir: Some(p.cache_dir.clone()),
        history_path: Some(p.history.clone()),
        install: false,
        use_cache: false,
        ..WorktreeSettings::new(&p.root)
    }
}

fn commit_file(p: &Project, rel: &str, text: &str) {
    write(&p.root.join(rel), text);
    git(&p.root, &["add", rel]);
    git(&p.root, &["commit", "-q", "-m", rel]);
}

type Events = std::sync::Arc<parking_lot::Mutex<Vec<vibetrees_core::progress::ProgressEvent>>>;

fn try_create(
    settings: WorktreeSettings,
    branch: &str,
) -> (vibetrees_core::Result<CreateOutcome>, Events) {
    let (sink, events) = recorder();
    let m = WorktreeManager::new(vibetrees_core::worktree::WorktreeOptions {
        on_progress: Some(sink),
        ..settings.into()
    })
    .unwrap();
    let r = block_on(async {
        let r = m.create_worktree_optimized(branch, "main").await;
        m.wait_background().await;
        r
    });
    (r, events)
}

fn create(settings: WorktreeSettings, branch: &str) -> (Box<CreatedWorktree>, Events) {
    let (r, events) = try_create(settings, branch);
    match r.unwrap() {
        CreateOutcome::Created(w) => (w, events),
        other => panic!("expected a new worktree, got {other:?}"),
    }
}

fn host(post_create: Vec<HookDef>) -> HooksConfig {
    HooksConfig {
        post_create,
        post_ready: Vec::new(),
    }
}

fn spec(command: &str, name: &str) -> HookSpec {
    HookSpec {
        command: command.into(),
        name: Some(name.into()),
        optional: false,
        after: None,
        timeout_ms: None,
    }
}

#[test]
fn repository_hooks_run_only_once_approved() {
    let p = project(None);
    commit_file(
        &p,
        "vibetrees.json",
        r#"{"hooks": {"post-create": [{"command": "echo made > made-by-hook.txt && echo hello from the hook", "name": "gen"}]}}"#,
    );
    // not approved: skipped, with a message that says how to approve it
    let (w, events) = create(settings(&p), "feat-unapproved");
    assert!(!w.path.join("made-by-hook.txt").exists());
    assert_eq!(w.hooks.skipped.len(), 1);
    assert_eq!(w.hooks.skipped[0].name, "gen");
    assert!(w.hooks.post_create.is_empty());
    let msg = events
        .lock()
        .iter()
        .find(|e| e.step == "hooks" && e.message.contains("Skipped hook gen"))
        .map(|e| e.message.clone())
        .expect("a skip message");
    assert!(msg.contains("vibetrees hooks approve --repo"), "{msg}");

    // approved through the CLI (`vibetrees hooks approve`), under the test HOME
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args(["hooks", "approve", "--repo"])
        .arg(&p.root)
        .env("HOME", setup())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved gen"));
    let (w, events) = create(settings(&p), "feat-approved");
    assert_eq!(
        std::fs::read_to_string(w.path.join("made-by-hook.txt")).unwrap(),
        "made\n"
    );
    assert_eq!(w.hooks.post_create, vec!["hook:gen".to_string()]);
    assert_eq!(w.steps["hook:gen"]["ok"], true);
    // its output streamed as progress and kept in the log
    assert!(
        events
            .lock()
            .iter()
            .any(|e| e.step == "hooks" && e.message == "[gen] hello from the hook")
    );
    let log = std::fs::read_to_string(w.hooks.log.as_ref().unwrap()).unwrap();
    assert!(log.contains("[gen] hello from the hook"), "{log}");

    // a changed command needs a new approval
    commit_file(
        &p,
        "vibetrees.json",
        r#"{"hooks": {"post-create": [{"command": "echo changed > made-by-hook.txt", "name": "gen"}]}}"#,
    );
    let (w, _) = create(settings(&p), "feat-changed");
    assert!(!w.path.join("made-by-hook.txt").exists());
    assert_eq!(w.hooks.skipped.len(), 1);
    // trustProjectHooks runs it without approval
    let (w, _) = create(
        WorktreeSettings {
            trust_project_hooks: true,
            ..settings(&p)
        },
        "feat-trusted",
    );
    assert_eq!(
        std::fs::read_to_string(w.path.join("made-by-hook.txt")).unwrap(),
        "changed\n"
    );
    // revoke withdraws the approval of what is declared now
    let mut a = Approvals::load_default().unwrap();
    assert_eq!(a.revoke_all(&p.root), 1);
    a.save().unwrap();
}

#[test]
fn a_failing_hook_fails_the_creation_unless_optional() {
    let p = project(None);
    let (r, _) = try_create(
        WorktreeSettings {
            hooks: host(vec![HookDef::Full(spec(
                "echo about to fail; exit 3",
                "boom",
            ))]),
            ..settings(&p)
        },
        "feat-fail",
    );
    let e = r.unwrap_err();
    assert!(e.to_string().contains("hook:boom"), "{e}");
    assert!(e.to_string().contains("about to fail"), "{e}");
    // rolled back (the branch is kept, as for every failed creation: recovery.rs)
    assert!(!p.root.join(".worktrees/feat-fail").exists());
    assert!(!p.worktree_list().contains("feat-fail"));

    let (w, _) = create(
        WorktreeSettings {
            hooks: host(vec![HookDef::Full(HookSpec {
                optional: true,
                ..spec("exit 3", "maybe")
            })]),
            ..settings(&p)
        },
        "feat-optional",
    );
    let t = w.timings.iter().find(|t| t.name == "hook:maybe").unwrap();
    assert_eq!(serde_json::to_value(t.status).unwrap(), "failed");
    assert!(w.path.is_dir());
}

#[test]
fn independent_hooks_run_in_parallel_and_get_the_environment() {
    let p = project(None);
    // each waits for the other to have started: run one after the other, both would time out
    let a = "touch a-started; while [ ! -f b-started ]; do sleep 0.01; done; echo a > a-done";
    let b = "touch b-started; while [ ! -f a-started ]; do sleep 0.01; done; echo b > b-done";
    let with_timeout = |c: &str, n: &str| {
        HookDef::Full(HookSpec {
            timeout_ms: Some(60_000.0),
            ..spec(c, n)
        })
    };
    let (w, _) = create(
        WorktreeSettings {
            hooks: host(vec![
                with_timeout(a, "a"),
                with_timeout(b, "b"),
                HookDef::Full(HookSpec {
                    after: Some(vec!["hook:a".into(), "hook:b".into()]),
                    ..spec(
                        "env > env.txt; test -f a-done && test -f b-done",
                        "after-both",
                    )
                }),
            ]),
            ..settings(&p)
        },
        "feat-parallel",
    );
    assert!(w.path.join("a-done").exists() && w.path.join("b-done").exists());
    let env = std::fs::read_to_string(w.path.join("env.txt")).unwrap();
    let has = |k: &str, v: &str| env.lines().any(|l| l == format!("{k}={v}"));
    assert!(
        has("VIBETREES_WORKTREE", &w.path.display().to_string()),
        "{env}"
    );
    assert!(has("VIBETREES_BRANCH", "feat-parallel"), "{env}");
    assert!(
        has("VIBETREES_PORT_POSTGRES", &w.ports["postgres"].to_string()),
        "{env}"
    );
    // the worktree's .env is in it too
    assert!(has("COMPOSE_PROJECT_NAME", "vibe_feat_parallel"), "{env}");
    // the default hook ran after the copied files and node_modules steps
    let start = |n: &str| {
        w.timings
            .iter()
            .find(|t| t.name == n)
            .unwrap()
            .start_ms
            .unwrap()
    };
    let end = |n: &str| {
        let t = w.timings.iter().find(|t| t.name == n).unwrap();
        t.start_ms.unwrap() + t.duration_ms.unwrap()
    };
    assert!(start("hook:after-both") >= end("hook:a").max(end("hook:b")));
}

#[test]
fn a_background_child_does_not_hold_the_hook_and_a_timeout_kills_the_group() {
    let p = project(None);
    // the child keeps stdout open for 60 s; the hook's own limit is 30 s: waiting for
    // end-of-file would time the hook out and fail the creation
    let (w, _) = create(
        WorktreeSettings {
            hooks: host(vec![HookDef::Full(HookSpec {
                timeout_ms: Some(30_000.0),
                ..spec("sleep 60 & echo $! > bg.pid; echo started", "bg")
            })]),
            ..settings(&p)
        },
        "feat-bg",
    );
    assert_eq!(w.steps["hook:bg"]["ok"], true);
    let pid: i32 = std::fs::read_to_string(w.path.join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // the background child lives on (it is the project's), until we end it
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    unsafe { libc::kill(pid, libc::SIGKILL) };

    // past its timeout: the creation fails, and the hook's whole group is killed
    let pidfile = p.root.parent().unwrap().join("timeout.pid");
    let cmd = format!("sleep 120 & echo $! > {}; wait", pidfile.display());
    let (r, _) = try_create(
        WorktreeSettings {
            hooks: host(vec![HookDef::Full(HookSpec {
                timeout_ms: Some(500.0),
                ..spec(&cmd, "slow")
            })]),
            ..settings(&p)
        },
        "feat-timeout",
    );
    let e = r.unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SIGKILL was sent to the group: the sleep is gone (or a zombie being reaped)
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    };
    let mut tries = 0;
    while !gone() && tries < 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        tries += 1;
    }
    assert!(gone(), "the timed-out hook's child {pid} still runs");
    assert!(!p.root.join(".worktrees/feat-timeout").exists());
}

#[test]
fn hooks_from_wt_toml_and_conductor_json() {
    let p = project(None);
    commit_file(
        &p,
        ".config/wt.toml",
        "post-create = \"echo wt > from-wt.txt\"\n[post-start]\nserver = \"echo {{ branch }} > from-wt-start.txt\"\n",
    );
    commit_file(
        &p,
        "conductor.json",
        r#"{"scripts": {"setup": "echo $CONDUCTOR_ROOT_PATH > from-conductor.txt", "run": "npm run dev"}}"#,
    );
    let (w, _) = create(
        WorktreeSettings {
            trust_project_hooks: true,
            ..settings(&p)
        },
        "feat-migrated",
    );
    let read = |f: &str| std::fs::read_to_string(w.path.join(f)).unwrap();
    assert_eq!(read("from-wt.txt"), "wt\n");
    assert_eq!(
        read("from-conductor.txt"),
        format!("{}\n", p.root.display())
    );
    // post-start is post-ready: in the background, awaited by wait_background
    assert_eq!(read("from-wt-start.txt"), "feat-migrated\n");
    assert_eq!(
        w.hooks.post_create,
        vec![
            "hook:wt-post-create".to_string(),
            "hook:conductor-setup".to_string()
        ]
    );
    assert_eq!(w.hooks.post_ready, vec!["wt-server".to_string()]);
    assert!(w.background.contains(&"hooks-post-ready".to_string()));
    assert_eq!(serde_json::to_value(&w.hooks.skipped).unwrap(), json!([]));
}
