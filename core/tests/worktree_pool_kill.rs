//! SIGKILL at points across a claim (`worktree/pool/`): a real `vibetrees create` process that
//! claims a spare is killed once it reaches each point (the spare renamed and its near update
//! running, the registration being written, the `post-checkout` hook running, ready with the
//! refill to come, the refill making a spare). Whatever the moment, what is left is a spare, a
//! complete worktree, or debris the next creation and fill clear: the retry of the same name
//! succeeds with a clean worktree of its commit, the pool is whole again after a fill, and
//! nothing of the user's is touched.
#![cfg(feature = "cli")]

mod worktree_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CreateOutcome, WorktreeManager};
use worktree_support::*;

/// Where the claimer is killed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    /// The spare renamed to the worktree's place, its near update running, nothing registered.
    Claimed,
    /// The registration being built aside or just published.
    Registering,
    /// Registered (locked "creating"), the `post-checkout` hook running.
    Hook,
    /// Ready (unlocked), the background refill about to start.
    Ready,
    /// The refill making the next spare.
    Refill,
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn commit(p: &Project, msg: &str) {
    git(&p.root, &["add", "-A"]);
    git(&p.root, &["commit", "-q", "-m", msg]);
}

fn manager(p: &Project) -> WorktreeManager {
    let mut o = p.options();
    o.settings.pool_size = 1;
    o.settings.pool_near_max_changes = 5000;
    WorktreeManager::new(o).unwrap()
}

/// Folders in the pool folder that are not whole spares (half-made, being made).
fn pool_debris(pool: &Path) -> Vec<String> {
    std::fs::read_dir(pool)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".making-") && !n.ends_with(".lock"))
                .collect()
        })
        .unwrap_or_default()
}

/// Entries of a folder (none when it does not exist).
fn entries_of(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The hook: records its pid and sleeps while `flag` exists (so the kill lands while it runs);
/// returns immediately otherwise.
fn install_sleeping_hook(p: &Project, flag: &Path, pid: &Path) {
    let hook = p.root.join(".git/hooks/post-checkout");
    write(
        &hook,
        &format!(
            "#!/bin/sh\nif [ -e '{}' ]; then echo $$ > '{}.tmp'; mv '{}.tmp' '{}'; exec sleep 60; fi\n",
            flag.display(),
            pid.display(),
            pid.display(),
            pid.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `vibetrees create <name>` from `main` on the project, as a server would start it.
fn spawn_create(p: &Project, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args(["create", name, "--repo"])
        .arg(&p.root)
        .args(["--from", "main", "--runtime", "none", "--cache-dir"])
        .arg(&p.cache_dir)
        .env("HOME", setup())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` with SIGKILL as soon as `reached()` holds; returns whether it did (false: the
/// child ended first, or passed the point between two looks).
fn kill_at(child: &mut Child, reached: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = false;
    while child.try_wait().unwrap().is_none() {
        if reached() {
            seen = true;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the creation never reached the point"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    seen
}

/// After a kill at `point`: the retry of `name` succeeds with a complete, clean worktree of its
/// branch's commit; a fill leaves exactly one whole spare and no debris; no registration is
/// being built; the user's files are where they were.
fn assert_recovers(p: &Project, m: &WorktreeManager, name: &str, point: Point) {
    let path = p.root.join(".worktrees").join(name);
    let out = block_on(async {
        let r = m.create_worktree_optimized(name, "main").await;
        m.wait_background().await;
        r
    })
    .unwrap_or_else(|e| panic!("{point:?}: the retry failed: {e}"));
    if let CreateOutcome::Existed { .. } = out {
        // the killed process got to ready: its worktree is whole and unlocked
        assert!(
            !p.root
                .join(".git/worktrees")
                .join(name)
                .join("locked")
                .exists(),
            "{point:?}"
        );
    }
    assert_eq!(
        git(&path, &["status", "--porcelain"]),
        "",
        "{point:?}: not clean"
    );
    assert_eq!(
        git(&path, &["write-tree"]).trim(),
        git(&path, &["rev-parse", "HEAD^{tree}"]).trim(),
        "{point:?}: the index is not its commit's tree"
    );
    assert!(path.join("node_modules/left-pad/index.js").is_file());
    assert!(!path.join(".vibetrees-spare").exists(), "{point:?}");
    let list = p.worktree_list();
    assert_eq!(
        list.matches(&format!("worktree {}\n", path.display()))
            .count(),
        1,
        "{point:?}: {list}"
    );
    block_on(m.fill_pool(Some("main"))).unwrap();
    let pool = p.root.join(".worktrees/.pool");
    assert_eq!(pool_debris(&pool), Vec::<String>::new(), "{point:?}");
    let spares = m.pool_status().spares;
    assert_eq!(spares.len(), 1, "{point:?}: {spares:?}");
    assert_eq!(
        entries_of(&p.root.join(".git/vibetrees-claiming")),
        0,
        "{point:?}: a registration left half-built"
    );
    git(&p.root, &["fsck", "--no-progress"]);
    // the user's own files
    assert_eq!(
        std::fs::read_to_string(p.root.join("notes.txt")).unwrap(),
        "mine\n"
    );
    assert!(
        p.root.join(".worktrees/mine/keep.txt").is_file(),
        "{point:?}"
    );
}

#[test]
fn a_claim_killed_at_any_point_leaves_a_spare_a_worktree_or_debris_the_retry_clears() {
    let p = project(None);
    // enough files that a near update and a spare take a while
    worktree_support::pool::commit_many_files(&p, 3000);
    p.warm_cache();
    // what the user has: an untracked file in the project, a folder of theirs under the base
    write(&p.root.join("notes.txt"), "mine\n");
    write(&p.root.join(".worktrees/mine/keep.txt"), "theirs\n");
    let (flag, pid) = (
        p._tmp.path().join("hook-sleeps"),
        p._tmp.path().join("hook.pid"),
    );
    install_sleeping_hook(&p, &flag, &pid);
    let m = manager(&p);
    let pool = p.root.join(".worktrees/.pool");
    let reg = |name: &str| -> PathBuf { p.root.join(".git/worktrees").join(name) };
    let claiming = p.root.join(".git/vibetrees-claiming");

    let points = [
        Point::Registering,
        Point::Hook,
        Point::Ready,
        Point::Refill,
        Point::Claimed,
    ];
    let mut hit = Vec::new();
    for (i, point) in points.into_iter().enumerate() {
        let name = format!("killed-{i}");
        block_on(m.fill_pool(Some("main"))).unwrap();
        let spares = m.pool_status().spares;
        assert_eq!(spares.len(), 1, "{spares:?}");
        let spare = spares[0].path.clone();
        if point == Point::Claimed {
            // `main` moves by 1,400 files: the claim is a near one, its update takes a while
            for j in 0..1400 {
                write(
                    &p.root.join(format!("src/big{}/f{j}.js", j % 30)),
                    &format!("export const x{j} = 'moved {i}';\n"),
                );
            }
            commit(&p, "1,400 files changed");
        }
        if point == Point::Hook {
            write(&flag, "");
        }
        let mut child = spawn_create(&p, &name);
        let seen = match point {
            Point::Claimed => kill_at(&mut child, || !spare.exists() && !reg(&name).exists()),
            Point::Registering => kill_at(&mut child, || {
                entries_of(&claiming) > 0 || reg(&name).exists()
            }),
            Point::Hook => kill_at(&mut child, || pid.exists()),
            Point::Ready => kill_at(&mut child, || {
                reg(&name).exists() && !reg(&name).join("locked").exists()
            }),
            Point::Refill => kill_at(&mut child, || !pool_debris(&pool).is_empty()),
        };
        if point == Point::Hook {
            // the hook outlives its killed parent: end it as the user's shell would
            if let Ok(text) = std::fs::read_to_string(&pid) {
                let _ = Command::new("kill").args(["-9", text.trim()]).status();
            }
            let _ = std::fs::remove_file(&flag);
            let _ = std::fs::remove_file(&pid);
        }
        eprintln!("killed at {point:?}: reached {seen}");
        hit.push((point, seen));
        assert_recovers(&p, &m, &name, point);
    }
    // the points with a window wide enough to land in every time (the others are best effort,
    // and what they leave is checked all the same)
    for (point, seen) in hit {
        if matches!(point, Point::Claimed | Point::Hook) {
            assert!(seen, "the kill never landed at {point:?}");
        }
    }
    block_on(m.clear_pool()).unwrap();
}
