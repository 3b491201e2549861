//! What `remove`, the trash and the retries may delete, on real repositories and processes:
//! only what the engine made, never a sibling, a locked, a dirty or a live one without being told.

mod worktree_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{
    CreateOutcome, CreatedWorktree, RemoveOptions, WorktreeManager, WorktreeOptions,
    WorktreeSettings,
};
use worktree_support::*;

fn created(o: CreateOutcome) -> Box<CreatedWorktree> {
    match o {
        CreateOutcome::Created(w) => w,
        other => panic!("expected a new worktree, got {other:?}"),
    }
}

fn make(m: &WorktreeManager, name: &str) -> Box<CreatedWorktree> {
    created(
        block_on(async {
            let r = m.create_worktree_optimized(name, "main").await;
            m.wait_background().await;
            r
        })
        .unwrap(),
    )
}

fn remove(m: &WorktreeManager, name: &str, opts: RemoveOptions) -> vibetrees_core::Result<()> {
    block_on(async {
        let r = m.remove_worktree_with(name, opts).await;
        m.wait_background().await;
        r.map(|_| ())
    })
}

const FORCE: RemoveOptions = RemoveOptions {
    force: true,
    force_locked: false,
};

/// A process that lives until killed (dropped).
struct Alive(Child);
impl Alive {
    fn new() -> Self {
        Self(Command::new("sleep").arg("1000").spawn().unwrap())
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}
impl Drop for Alive {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn tree_of(dir: &Path) -> Vec<(String, String)> {
    tree(dir)
}

#[test]
fn an_unregistered_folder_under_the_base_is_never_removed() {
    let p = project(None);
    // a worktree base shared with other projects: a sibling project, a git repository of its own
    let base = p.root.parent().unwrap().join("shared-base");
    let sibling = base.join("sibling");
    std::fs::create_dir_all(sibling.join("src")).unwrap();
    std::fs::write(sibling.join("src/main.rs"), "fn main() {}\n").unwrap();
    git(&sibling, &["init", "-q"]);
    let before = tree_of(&sibling);
    let m = WorktreeManager::new(
        WorktreeSettings {
            worktree_base: Some(base.clone()),
            ..p.options().settings
        }
        .into(),
    )
    .unwrap();
    for opts in [
        RemoveOptions::default(),
        RemoveOptions {
            force: true,
            force_locked: true,
        },
    ] {
        let e = remove(&m, "sibling", opts).unwrap_err();
        assert_eq!(e.code(), "NOT_FOUND", "{e}");
        assert!(e.to_string().contains("not a registered worktree"), "{e}");
    }
    assert_eq!(tree_of(&sibling), before, "the sibling project was touched");
    assert!(!base.join(".trash").exists());
}

#[test]
fn a_locked_worktree_needs_force_locked_and_force_alone_is_not_enough() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = make(&m, "locked-one");
    git(
        &p.root,
        &[
            "worktree",
            "lock",
            "--reason",
            "on a USB disk",
            w.path.to_str().unwrap(),
        ],
    );
    for opts in [RemoveOptions::default(), FORCE] {
        let e = remove(&m, "locked-one", opts).unwrap_err();
        assert_eq!(e.code(), "WORKTREE_LOCKED", "{e}");
        assert!(e.to_string().contains("on a USB disk"), "{e}");
    }
    assert!(w.path.join("README.md").exists());
    assert!(
        p.worktree_list().contains("locked on a USB disk") || p.worktree_list().contains("locked")
    );
    remove(
        &m,
        "locked-one",
        RemoveOptions {
            force: false,
            force_locked: true,
        },
    )
    .unwrap();
    assert!(!w.path.exists());
    assert!(!p.worktree_list().contains("locked-one"));
}

#[test]
fn a_dirty_worktree_is_refused_and_force_keeps_it_in_the_trash_restorable() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    // each kind of change on its own worktree: modified, staged, untracked
    type Change = fn(&Path);
    let cases: [(&str, Change); 3] = [
        ("modified", |w| {
            std::fs::write(w.join("README.md"), "# mine\n").unwrap()
        }),
        ("staged", |w| {
            std::fs::write(w.join("staged.txt"), "staged\n").unwrap();
            git(w, &["add", "staged.txt"]);
        }),
        ("untracked", |w| {
            std::fs::create_dir_all(w.join("notes")).unwrap();
            std::fs::write(w.join("notes/todo.txt"), "mine\n").unwrap();
        }),
    ];
    for (name, change) in cases {
        let w = make(&m, name);
        change(&w.path);
        let e = remove(&m, name, RemoveOptions::default()).unwrap_err();
        assert_eq!(e.code(), "WORKTREE_DIRTY", "{name}: {e}");
        assert!(w.path.join("README.md").exists(), "{name}: folder touched");
        assert!(p.worktree_list().contains(name));
    }
    // force: moved to the trash (not deleted), registration saved with it
    let status_before = git(
        &p.root.join(".worktrees/staged"),
        &["status", "--porcelain"],
    );
    let out = block_on(m.remove_worktree_with("staged", FORCE)).unwrap();
    block_on(m.wait_background());
    let kept = out.kept.expect("kept in the trash");
    assert!(kept.location.join("tree/staged.txt").exists());
    assert!(!p.root.join(".worktrees/staged").exists());
    assert!(!p.worktree_list().contains(".worktrees/staged"));
    let listed = m.trash_list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "staged");
    assert!(listed[0].expires_at_ms - listed[0].trashed_at_ms == 24 * 3600 * 1000);
    // restore: folder and registration back, the staged change still staged
    block_on(m.trash_restore("staged")).unwrap();
    let back = p.root.join(".worktrees/staged");
    assert_eq!(git(&back, &["status", "--porcelain"]), status_before);
    assert!(p.worktree_list().contains("branch refs/heads/staged"));
    assert!(m.trash_list().unwrap().is_empty());
    assert_eq!(
        block_on(m.trash_restore("staged")).unwrap_err().code(),
        "NOT_FOUND"
    );
}

#[test]
fn files_the_creation_wrote_do_not_make_a_worktree_dirty_until_changed() {
    let p = project(None);
    // a project that ignores none of what the creation writes
    std::fs::write(p.root.join(".gitignore"), ".worktrees/\n").unwrap();
    std::fs::remove_dir_all(p.root.join("node_modules")).unwrap_or(());
    git(&p.root, &["commit", "-qam", "ignore less"]);
    std::fs::create_dir_all(p.root.join("node_modules/left-pad")).unwrap();
    std::fs::write(p.root.join("node_modules/left-pad/index.js"), "x\n").unwrap();
    p.warm_cache();
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = make(&m, "as-written");
    assert!(w.path.join(".env").exists() && w.path.join(".claude/settings.json").exists());
    assert!(w.path.join("node_modules").exists());
    assert!(
        !git(&w.path, &["status", "--porcelain"]).is_empty(),
        "git sees them"
    );
    remove(&m, "as-written", RemoveOptions::default()).unwrap();
    assert!(!w.path.exists());
    assert!(m.trash_list().unwrap().is_empty());

    // the same file changed by the user afterwards counts
    let w = make(&m, "env-edited");
    std::fs::write(w.path.join(".env"), "MINE=1\n").unwrap();
    let e = remove(&m, "env-edited", RemoveOptions::default()).unwrap_err();
    assert_eq!(e.code(), "WORKTREE_DIRTY");
    assert!(e.to_string().contains(".env"), "{e}");
    // and a new file beside the MCP settings too
    let w = make(&m, "claude-added");
    std::fs::write(w.path.join(".claude/notes.md"), "mine\n").unwrap();
    let e = remove(&m, "claude-added", RemoveOptions::default()).unwrap_err();
    assert!(e.to_string().contains(".claude/notes.md"), "{e}");
}

#[test]
fn a_file_the_user_writes_right_after_ready_is_never_taken_for_the_creations() {
    let p = project(None);
    p.warm_cache();
    let m = WorktreeManager::new(p.options()).unwrap();
    // not waiting for the background record of what the creation wrote
    let w = created(block_on(m.create_worktree_optimized("quick", "main")).unwrap());
    std::fs::write(w.path.join("right-away.txt"), "mine\n").unwrap();
    std::fs::write(w.path.join("README.md"), "# edited right away\n").unwrap();
    block_on(m.wait_background());
    let e = remove(&m, "quick", RemoveOptions::default()).unwrap_err();
    assert_eq!(e.code(), "WORKTREE_DIRTY", "{e}");
    assert!(e.to_string().contains("right-away.txt"), "{e}");
    assert!(e.to_string().contains("README.md"), "{e}");
    assert!(w.path.join("right-away.txt").exists());
}

#[test]
fn a_registered_folder_that_lost_its_git_file_is_not_deleted_without_force() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = make(&m, "no-dot-git");
    std::fs::remove_file(w.path.join(".git")).unwrap();
    std::fs::write(w.path.join("mine.txt"), "mine\n").unwrap();
    let e = remove(&m, "no-dot-git", RemoveOptions::default()).unwrap_err();
    assert_eq!(e.code(), "WORKTREE_DIRTY", "{e}");
    assert!(w.path.join("mine.txt").exists());
    remove(&m, "no-dot-git", FORCE).unwrap();
    let kept = m.trash_list().unwrap();
    assert!(kept[0].location.join("tree/mine.txt").exists());
}

/// A worktree registered the way a creation in process `pid` leaves it mid-way.
fn half_made(p: &Project, name: &str, pid: u32) -> PathBuf {
    let path = p.root.join(".worktrees").join(name);
    git(
        &p.root,
        &[
            "worktree",
            "add",
            "-q",
            "--lock",
            "--reason",
            &format!("vibetrees: creating (pid {pid})"),
            "-b",
            name,
            path.to_str().unwrap(),
            "main",
        ],
    );
    path
}

#[test]
fn a_worktree_a_live_creation_holds_is_not_removed_and_its_debris_is_once_it_died() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let creator = Alive::new();
    let path = half_made(&p, "in-progress", creator.pid());
    for opts in [
        RemoveOptions::default(),
        RemoveOptions {
            force: true,
            force_locked: true,
        },
    ] {
        let e = remove(&m, "in-progress", opts).unwrap_err();
        assert_eq!(e.code(), "LOCK", "{e}");
        assert!(e.to_string().contains(&creator.pid().to_string()), "{e}");
    }
    assert!(path.join("README.md").exists());
    drop(creator);
    // its creator is gone: debris of ours, byte for byte what it wrote, so deleted
    remove(&m, "in-progress", RemoveOptions::default()).unwrap();
    assert!(!path.exists());
    assert!(m.trash_list().unwrap().is_empty());
}

#[test]
fn a_retry_deletes_untouched_debris_and_keeps_edited_debris_in_the_trash() {
    let p = project(None);
    let (sink, events) = recorder();
    let m = WorktreeManager::new(WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .unwrap();
    // untouched debris of a dead creation: deleted, no trash entry
    half_made(&p, "untouched", dead_pid());
    make(&m, "untouched");
    assert!(m.trash_list().unwrap().is_empty());
    // debris the user edited since: kept in the trash, said so
    let path = half_made(&p, "edited", dead_pid());
    std::fs::write(path.join("README.md"), "# my edit\n").unwrap();
    std::fs::write(path.join("notes.txt"), "mine\n").unwrap();
    let w = make(&m, "edited");
    assert_eq!(
        std::fs::read_to_string(w.path.join("README.md")).unwrap(),
        "# app\n"
    );
    let kept = m.trash_list().unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].reason.contains("README.md") && kept[0].reason.contains("notes.txt"));
    assert_eq!(
        std::fs::read_to_string(kept[0].location.join("tree/notes.txt")).unwrap(),
        "mine\n"
    );
    let said = events
        .lock()
        .iter()
        .any(|e| e.name == "edited" && e.message.contains("moved to the trash"));
    assert!(said, "no progress message about the trash");
}

#[test]
fn the_trash_deletes_entries_only_after_their_grace_period() {
    let p = project(None);
    let no_grace = WorktreeManager::new(
        WorktreeSettings {
            trash_grace: std::time::Duration::ZERO,
            ..p.options().settings
        }
        .into(),
    )
    .unwrap();
    let default_grace = WorktreeManager::new(p.options()).unwrap();
    let w = make(&default_grace, "kept-a-day");
    std::fs::write(w.path.join("mine.txt"), "x").unwrap();
    remove(&default_grace, "kept-a-day", FORCE).unwrap();
    let w = make(&no_grace, "kept-no-time");
    std::fs::write(w.path.join("mine.txt"), "x").unwrap();
    remove(&no_grace, "kept-no-time", FORCE).unwrap();
    assert_eq!(default_grace.trash_list().unwrap().len(), 2);
    // the next removal or creation purges what expired, and only that
    make(&default_grace, "another");
    let left: Vec<String> = default_grace
        .trash_list()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(left, vec!["kept-a-day".to_string()]);
    let saved = p.root.join(".git/vibetrees-trash");
    assert_eq!(std::fs::read_dir(saved).unwrap().count(), 1);
}

#[test]
fn another_tools_locked_registration_is_never_swept() {
    let p = project(None);
    // a worktree of another tool: locked with no reason, an absolute commondir (both valid git)
    let other = p.root.parent().unwrap().join("other-tool-wt");
    git(
        &p.root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "other",
            other.to_str().unwrap(),
        ],
    );
    git(&p.root, &["worktree", "lock", other.to_str().unwrap()]);
    let reg = p.root.join(".git/worktrees/other-tool-wt");
    let common = std::fs::canonicalize(p.root.join(".git")).unwrap();
    std::fs::write(reg.join("commondir"), format!("{}\n", common.display())).unwrap();
    assert_eq!(git(&other, &["status", "--porcelain"]), "");
    let m = WorktreeManager::new(p.options()).unwrap();
    make(&m, "ours");
    assert!(
        reg.join("gitdir").exists(),
        "another tool's registration was swept"
    );
    assert!(p.worktree_list().contains("other-tool-wt"));
    assert!(
        !m.trash_list()
            .unwrap()
            .iter()
            .any(|t| t.name.contains("other"))
    );
}

#[test]
fn a_lock_file_a_live_process_holds_is_never_removed() {
    let p = project(None);
    let lock = p.root.join(".git/refs/heads/held.lock");
    std::fs::write(&lock, "").unwrap();
    // a live process holding it open, as git does while it updates the ref
    let holder = Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$0\"; exec sleep 1000")
        .arg(&lock)
        .spawn()
        .unwrap();
    let holder = Alive(holder);
    // wait until the holder has it open (its fd table is what is checked)
    while vibetrees_core::platform::file_holders(&lock).is_some_and(|h| h.is_empty()) {
        std::thread::yield_now();
    }
    let m = WorktreeManager::new(p.options()).unwrap();
    let e = block_on(m.create_worktree_optimized("held", "main")).unwrap_err();
    assert!(e.full_message().contains("held.lock"), "{e}");
    assert!(lock.exists(), "a held lock was removed");
    assert!(!p.branches().contains(&"held".to_string()));
    drop(holder);
    // its holder gone and the lock older than the retry: stale, cleared
    make(&m, "held");
    assert!(!lock.exists());
}

#[test]
fn the_loser_of_two_creations_of_one_name_keeps_the_winners_ports_and_work() {
    let p = project(None);
    p.warm_cache();
    // The loser's `git worktree add` is a wrapper that first runs a whole other creation of the
    // same name in another process (the winner), then the real git, which then fails.
    let dir = p.root.parent().unwrap();
    let wrapper = dir.join("git-wrapper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$*\" in *\"worktree add\"*) \"{bin}\" create same --repo \"{root}\" \
             --runtime none --cache-dir \"{cache}\" --no-wait --json > \"{out}\" || exit 99;; esac\n\
             exec git \"$@\"\n",
            bin = env!("CARGO_BIN_EXE_vibetrees"),
            root = p.root.display(),
            cache = p.cache_dir.display(),
            out = dir.join("winner.json").display(),
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&wrapper)
        .status()
        .unwrap();
    let loser = WorktreeManager::new(
        WorktreeSettings {
            checkout: vibetrees_core::worktree::CheckoutChoice::GitCli,
            git_program: wrapper,
            ..p.options().settings
        }
        .into(),
    )
    .unwrap();
    let e = block_on(async {
        let r = loser.create_worktree_optimized("same", "main").await;
        loser.wait_background().await;
        r
    })
    .unwrap_err();
    let winner: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("winner.json")).unwrap())
            .unwrap_or_else(|_| panic!("the winner did not run; loser: {e}"));
    assert_eq!(winner["success"], true, "{winner}");
    let ports = winner["worktree"]["ports"].as_object().unwrap().clone();
    assert!(!ports.is_empty());
    let reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.ports_json()).unwrap()).unwrap();
    for (service, port) in &ports {
        assert_eq!(
            reg[format!("same:{service}")],
            *port,
            "the loser released the winner's port {service}: {reg}"
        );
    }
    let path = p.root.join(".worktrees/same");
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert!(path.join(".env").exists());
    assert!(p.worktree_list().contains("branch refs/heads/same"));
}

#[test]
fn the_cli_removes_with_force_and_lists_and_restores_the_trash() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = make(&m, "cli-one");
    std::fs::write(w.path.join("mine.txt"), "mine\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vibetrees"))
            .args(args)
            .args(["--repo", p.root.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run(&["remove", "cli-one"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WORKTREE_DIRTY"));
    let out = run(&["remove", "cli-one", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!w.path.exists());
    let out = run(&["trash", "list"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "cli-one", "{listed}");
    let out = run(&["trash", "restore", "cli-one"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(w.path.join("mine.txt")).unwrap(),
        "mine\n"
    );
    assert!(p.worktree_list().contains("branch refs/heads/cli-one"));
}

#[test]
fn the_cli_trash_honours_the_worktree_base_of_create_and_remove() {
    let p = project(None);
    let base = p._tmp.path().join("trees");
    let mut opts = p.options();
    opts.settings.worktree_base = Some(base.clone());
    let w = make(&WorktreeManager::new(opts).unwrap(), "based");
    assert!(w.path.starts_with(&base), "{}", w.path.display());
    std::fs::write(w.path.join("mine.txt"), "mine\n").unwrap();
    let run = |args: &[&str], with_base: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vibetrees"));
        c.args(args).args(["--root", p.root.to_str().unwrap()]);
        if with_base {
            c.args(["--worktree-base", base.to_str().unwrap()]);
        }
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), out.stdout, err)
    };
    let (ok, _, err) = run(&["remove", "based", "--force"], true);
    assert!(ok, "{err}");
    assert!(!w.path.exists());
    assert!(base.join(".trash").is_dir());
    let list = |with_base| {
        let (ok, out, err) = run(&["trash", "list"], with_base);
        assert!(ok, "{err}");
        serde_json::from_slice::<serde_json::Value>(&out).unwrap()
    };
    assert_eq!(
        list(false),
        serde_json::json!([]),
        "the default base's trash"
    );
    assert_eq!(list(true)[0]["name"], "based");
    let (ok, _, err) = run(&["trash", "restore", "based"], false);
    assert!(!ok && err.contains("NOT_FOUND"), "{err}");
    let (ok, _, err) = run(&["trash", "restore", "based"], true);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(w.path.join("mine.txt")).unwrap(),
        "mine\n"
    );
    assert!(p.worktree_list().contains("branch refs/heads/based"));
    assert_eq!(list(true), serde_json::json!([]));
}
