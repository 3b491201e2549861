//! The pool of ready worktrees (`worktree/pool/`) on real git repositories, checked with the git
//! CLI: a claimed spare is indistinguishable from a fresh creation, spares stay invisible, a
//! spare is claimed once, and dead makers' and claimers' debris is cleared while folders without
//! our marker are left alone.

mod worktree_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{WorktreeManager, WorktreeOptions, WorktreeSettings};
use worktree_support::pool::{assert_indistinguishable, create_settled as create};
use worktree_support::*;

/// The project's options with `pool_size` spares per commit.
fn options(p: &Project, pool_size: usize) -> WorktreeOptions {
    let mut o = p.options();
    o.settings.pool_size = pool_size;
    o
}

fn manager(p: &Project, pool_size: usize) -> WorktreeManager {
    WorktreeManager::new(options(p, pool_size)).unwrap()
}

fn fill(m: &WorktreeManager, from: &str) -> usize {
    block_on(m.fill_pool(Some(from))).unwrap().made
}

fn pool_dir(p: &Project) -> PathBuf {
    p.root.join(".worktrees/.pool")
}

/// Every file under `dir` (relative path -> bytes), recursively.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                walk(base, &p, out);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A post-checkout hook that logs its folder and arguments to `log`.
fn install_hook(p: &Project, log: &Path) {
    let hook = p.root.join(".git/hooks/post-checkout");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$(basename \"$PWD\") $1 $2 $3\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The `git worktree list --porcelain` entry of `path`, with its name replaced by `NAME`.
fn list_entry(p: &Project, path: &Path, name: &str) -> String {
    let list = p.worktree_list();
    let entry = list
        .split("\n\n")
        .find(|e| e.starts_with(&format!("worktree {}\n", path.display())))
        .unwrap_or_else(|| panic!("{} not in {list}", path.display()))
        .to_string();
    entry.replace(name, "NAME")
}

#[test]
fn a_claimed_spare_is_indistinguishable_from_a_fresh_creation() {
    let p = project(None);
    p.warm_cache();
    let log = p._tmp.path().join("hooks.log");
    install_hook(&p, &log);
    let m = manager(&p, 1);
    assert_eq!(fill(&m, "main"), 1);
    let status = m.pool_status();
    assert_eq!(status.spares.len(), 1, "{status:?}");
    let spare = &status.spares[0];
    assert!(spare.node_modules && spare.bytes > 0, "{spare:?}");
    // a spare is invisible: no registration, not in git's list nor ours
    let list = p.worktree_list();
    assert!(!list.contains(".pool"), "{list}");
    let ours = block_on(m.list_worktrees()).unwrap();
    assert!(
        ours.iter()
            .all(|w| !w.path.to_string_lossy().contains(".pool")),
        "{ours:?}"
    );
    assert!(!spare.path.join(".git").exists());
    assert_eq!(
        std::fs::read_dir(p.root.join(".git/worktrees"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    assert!(!log.exists(), "the hook ran for a spare");

    let (sink, events) = recorder();
    let m = WorktreeManager::new(WorktreeOptions {
        on_progress: Some(sink),
        ..options(&p, 1)
    })
    .unwrap();
    let claimed = create(&m, "claimed", "main");
    assert!(claimed.pool.claimed, "{:?}", claimed.pool);
    assert!(claimed.pool.spare_age_ms.is_some());
    assert!(
        events
            .lock()
            .iter()
            .any(|e| e.step == "pool" && e.message.starts_with("Claimed a spare worktree")),
        "{:?}",
        events.lock()
    );
    let json = serde_json::to_value(&*claimed).unwrap();
    assert_eq!(json["pool"]["claimed"], true, "{json}");
    assert_eq!(claimed.cache.outcome.as_str(), "hit");
    assert_eq!(claimed.cache.method.as_deref(), Some("pool"));
    // the refill after the claim made a new spare
    assert_eq!(m.pool_status().spares.len(), 1);

    let fresh_m = manager(&p, 0);
    let fresh = create(&fresh_m, "fresh", "main");
    assert!(!fresh.pool.claimed);
    assert_eq!(
        serde_json::to_value(&*fresh).unwrap()["pool"],
        serde_json::json!({ "claimed": false })
    );
    assert_eq!(m.pool_status().spares.len(), 1, "poolSize 0 claims nothing");

    let (cp, fp) = (claimed.path.clone(), fresh.path.clone());
    for (path, name) in [(&cp, "claimed"), (&fp, "fresh")] {
        assert!(
            path.join("node_modules/left-pad/index.js").is_file(),
            "{name}"
        );
    }
    assert_indistinguishable(&p, &cp, &fp);
    assert_eq!(list_entry(&p, &cp, "claimed"), list_entry(&p, &fp, "fresh"));
    // the registrations: the same files, the same contents but for names, paths, times and
    // our marker's pid
    let reg = |name: &str| p.root.join(".git/worktrees").join(name);
    let normalise = |name: &str| -> Vec<(String, String)> {
        files(&reg(name))
            .into_iter()
            .filter(|(f, _)| f != "index")
            .map(|(f, bytes)| {
                let text = String::from_utf8_lossy(&bytes).replace(name, "NAME");
                let text = match f.as_str() {
                    // reflog lines: "<old> <new> <who> <time> <tz>\t<msg>"
                    "logs/HEAD" => text
                        .lines()
                        .map(|l| {
                            let (head, msg) = l.split_once('\t').unwrap_or((l, ""));
                            let fields: Vec<&str> = head.split(' ').collect();
                            format!("{} {} {msg}", fields[0], fields[1])
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                    "vibetrees-created.json" => {
                        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
                        keys.sort();
                        keys.join(",")
                    }
                    _ => text,
                };
                (f, text)
            })
            .collect()
    };
    assert_eq!(normalise("claimed"), normalise("fresh"));
    // the hook ran in both, as git runs it
    let commit = git(&p.root, &["rev-parse", "main"]).trim().to_string();
    let hooks = std::fs::read_to_string(&log).unwrap();
    let zero = "0".repeat(40);
    for name in ["claimed", "fresh"] {
        assert!(
            hooks.contains(&format!("{name} {zero} {commit} 1")),
            "{name}: {hooks}"
        );
    }
    // a commit in the claimed worktree lands on its branch
    std::fs::write(cp.join("new.txt"), "hello\n").unwrap();
    git(&cp, &["add", "new.txt"]);
    git(&cp, &["commit", "-q", "-m", "in the claimed worktree"]);
    assert_eq!(
        git(&p.root, &["rev-parse", "claimed"]),
        git(&cp, &["rev-parse", "HEAD"])
    );
    assert_eq!(git(&p.root, &["rev-parse", "main"]).trim(), commit);
    git(&cp, &["status", "--porcelain"]);
    // git's own remove works on it (ignored files such as node_modules do not stop it), and
    // ours on the fresh one
    git(&p.root, &["worktree", "remove", &cp.to_string_lossy()]);
    assert!(!cp.exists());
    block_on(m.remove_worktree("fresh")).unwrap();
    assert!(!fp.exists());
    git(&p.root, &["fsck", "--no-progress"]);
    block_on(m.clear_pool()).unwrap();
    assert!(m.pool_status().spares.is_empty());
}

#[test]
fn our_remove_works_on_a_claimed_worktree() {
    let p = project(None);
    p.warm_cache();
    let m = manager(&p, 1);
    fill(&m, "main");
    let w = create(&m, "mine", "main");
    assert!(w.pool.claimed);
    let out = block_on(m.remove_worktree("mine")).unwrap();
    assert!(!w.path.exists(), "{out:?}");
    assert!(!p.worktree_list().contains("mine"));
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn two_managers_claiming_at_once_get_one_spare_and_both_succeed() {
    let p = project(None);
    p.warm_cache();
    let m0 = manager(&p, 1);
    assert_eq!(fill(&m0, "main"), 1);
    // a stamp in the spare made now: only the worktree that claimed it has it
    let spare = m0.pool_status().spares[0].path.clone();
    std::fs::write(spare.join("stamp.txt"), "the first spare\n").unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["racer-a", "racer-b"]
        .into_iter()
        .map(|name| {
            let (opts, barrier) = (options(&p, 1), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let m = WorktreeManager::new(opts).unwrap();
                barrier.wait();
                let w = create(&m, name, "main");
                (w.path.clone(), w.pool.claimed)
            })
        })
        .collect();
    let results: Vec<(PathBuf, bool)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let stamped: Vec<_> = results
        .iter()
        .filter(|(path, _)| path.join("stamp.txt").exists())
        .collect();
    assert_eq!(stamped.len(), 1, "{results:?}");
    assert!(stamped[0].1, "the stamped one says it claimed");
    for (path, _) in &results {
        assert!(path.join("src/dir0/file0.js").is_file());
        assert!(p.worktree_list().contains(&*path.to_string_lossy()));
    }
    git(&p.root, &["fsck", "--no-progress"]);
    block_on(m0.clear_pool()).unwrap();
}

#[test]
fn a_spare_of_another_commit_is_not_claimed_and_pool_size_zero_makes_none() {
    let p = project(None);
    p.warm_cache();
    let m = manager(&p, 1);
    assert_eq!(fill(&m, "main"), 1);
    git(&p.root, &["checkout", "-q", "-b", "other"]);
    std::fs::write(p.root.join("other.txt"), "other\n").unwrap();
    git(&p.root, &["add", "other.txt"]);
    git(&p.root, &["commit", "-q", "-m", "other"]);
    git(&p.root, &["checkout", "-q", "main"]);
    let w = create(&manager(&p, 1), "from-other", "other");
    assert!(!w.pool.claimed);
    assert!(w.path.join("other.txt").is_file());
    assert_eq!(git(&w.path, &["status", "--porcelain"]), "");
    let spares = m.pool_status().spares;
    let main = git(&p.root, &["rev-parse", "main"]).trim().to_string();
    assert!(spares.iter().any(|s| s.commit == main), "{spares:?}");

    // poolSize 0: no spare made, none claimed
    let off = manager(&p, 0);
    let report = block_on(off.fill_pool(Some("main"))).unwrap();
    assert_eq!(report.made, 0);
    let before = off.pool_status().spares.len();
    let w = create(&off, "not-pooled", "main");
    assert!(!w.pool.claimed);
    assert_eq!(off.pool_status().spares.len(), before);
    // the main spare went stale when main moved: the next fill brings it up to date
    std::fs::write(p.root.join("more.txt"), "more\n").unwrap();
    git(&p.root, &["add", "more.txt"]);
    git(&p.root, &["commit", "-q", "-m", "more"]);
    let report = block_on(m.fill_pool(Some("main"))).unwrap();
    // a near spare now: brought up to date by its difference update (worktree_pool_near.rs)
    assert_eq!(
        (report.made, report.discarded, report.updated),
        (0, 0, 1),
        "{report:?}"
    );
    let moved = git(&p.root, &["rev-parse", "main"]).trim().to_string();
    assert!(m.pool_status().spares.iter().any(|s| s.commit == moved));
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn the_disk_budget_stops_the_fill() {
    let p = project(None);
    let m = WorktreeManager::new(WorktreeOptions {
        settings: WorktreeSettings {
            pool_size: 2,
            pool_max_bytes: 10,
            ..options(&p, 2).settings
        },
        ..options(&p, 2)
    })
    .unwrap();
    let report = block_on(m.fill_pool(Some("main"))).unwrap();
    assert_eq!(report.made, 0, "{report:?}");
    assert!(
        report
            .stopped
            .as_deref()
            .unwrap_or("")
            .starts_with("budget"),
        "{report:?}"
    );
    assert!(m.pool_status().spares.is_empty());
}

#[test]
fn half_made_spares_of_dead_makers_go_and_folders_without_our_marker_stay() {
    let p = project(None);
    let m = manager(&p, 1);
    let pool = pool_dir(&p);
    std::fs::create_dir_all(&pool).unwrap();
    // a maker killed mid-fill: its folder and its lock file, nobody holding the lock
    let dead = pool.join(".making-1-x-999999");
    std::fs::create_dir_all(dead.join("src")).unwrap();
    std::fs::write(dead.join("src/a.js"), "half\n").unwrap();
    std::fs::write(pool.join(".making-1-x-999999.lock"), "").unwrap();
    // a maker still running: it holds its lock
    let live = pool.join(".making-2-x-1");
    std::fs::create_dir_all(&live).unwrap();
    let live_lock = std::fs::File::create(pool.join(".making-2-x-1.lock")).unwrap();
    rustix::fs::flock(&live_lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // folders that are not ours: no lock file, no marker
    let foreign = pool.join(".making-3-x-2");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("keep.txt"), "mine\n").unwrap();
    let stranger = pool.join("somebodys-folder");
    std::fs::create_dir_all(&stranger).unwrap();
    std::fs::write(stranger.join("keep.txt"), "mine\n").unwrap();

    let report = block_on(m.fill_pool(Some("main"))).unwrap();
    assert_eq!(report.made, 1, "{report:?}");
    assert!(!dead.exists(), "the dead maker's folder stayed");
    assert!(!pool.join(".making-1-x-999999.lock").exists());
    assert!(live.exists(), "a live maker's folder was removed");
    assert!(foreign.join("keep.txt").is_file());
    assert!(stranger.join("keep.txt").is_file());
    block_on(m.clear_pool()).unwrap();
    assert!(live.exists() && foreign.exists() && stranger.exists());
    assert!(m.pool_status().spares.is_empty());
}

#[test]
fn a_claim_killed_before_registering_is_cleared_by_the_next_creation() {
    let p = project(None);
    p.warm_cache();
    let m = manager(&p, 1);
    assert_eq!(fill(&m, "main"), 1);
    // what a claimer killed right after its rename leaves: the spare at the worktree's place,
    // marker in it, unregistered, its lock free
    let spare = m.pool_status().spares[0].path.clone();
    let path = p.root.join(".worktrees/killed");
    std::fs::rename(&spare, &path).unwrap();
    // while a live claimer holds its lock, the place is refused, not cleared
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(path.join(".vibetrees-spare/lock"))
        .unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let e = block_on(m.create_worktree_optimized("killed", "main")).unwrap_err();
    assert_eq!(e.code(), "LOCK", "{e}");
    assert!(path.join(".vibetrees-spare").is_dir());
    drop(lock);
    let w = create(&m, "killed", "main");
    assert_eq!(w.path, path);
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert!(!path.join(".vibetrees-spare").exists());
    // a folder without our marker at a worktree's place is never deleted (moved aside)
    let other = p.root.join(".worktrees/someone");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine\n").unwrap();
    create(&m, "someone", "main");
    let trash = std::fs::read_dir(p.root.join(".worktrees/.trash")).unwrap();
    assert!(
        trash
            .flatten()
            .any(|e| e.path().join("notes.txt").is_file()),
        "the orphan folder was not kept"
    );
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn warm_refills_the_pool_in_the_background() {
    let p = project(None);
    p.warm_cache();
    let m = manager(&p, 1);
    let jobs = block_on(async {
        let j = m.warm().await.unwrap();
        m.wait_background().await;
        j
    });
    assert!(jobs.contains(&"pool-refill".to_string()), "{jobs:?}");
    assert_eq!(m.pool_status().spares.len(), 1);
    let off = manager(&p, 0);
    let jobs = block_on(off.warm()).unwrap();
    assert!(!jobs.contains(&"pool-refill".to_string()), "{jobs:?}");
    block_on(m.clear_pool()).unwrap();
}

/// `vibetrees pool fill | status | clear` and `vibetrees create` saying it claimed.
#[cfg(feature = "cli")]
#[test]
fn the_cli_fills_lists_claims_and_clears_the_pool() {
    let p = project(None);
    let cli = |args: &[&str]| -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vibetrees"))
            .args(args)
            .env("HOME", setup())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "vibetrees {args:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let repo = p.root.to_string_lossy().into_owned();
    let filled: serde_json::Value =
        serde_json::from_str(&cli(&["pool", "fill", "--repo", &repo, "--from", "main"])).unwrap();
    assert_eq!(filled["made"], 1, "{filled}");
    let status: serde_json::Value =
        serde_json::from_str(&cli(&["pool", "status", "--repo", &repo])).unwrap();
    assert_eq!(status["spares"].as_array().unwrap().len(), 1, "{status}");
    let main = git(&p.root, &["rev-parse", "main"]).trim().to_string();
    assert_eq!(status["spares"][0]["commit"], main.as_str());
    let out = cli(&[
        "create",
        "from-cli",
        "--repo",
        &repo,
        "--runtime",
        "none",
        "--no-cache",
    ]);
    assert!(out.contains("pool: claimed a spare worktree"), "{out}");
    assert_eq!(
        git(
            &p.root.join(".worktrees/from-cli"),
            &["status", "--porcelain"]
        ),
        ""
    );
    let out = cli(&["pool", "clear", "--repo", &repo]);
    assert!(out.starts_with("removed "), "{out}");
    let status: serde_json::Value =
        serde_json::from_str(&cli(&["pool", "status", "--repo", &repo])).unwrap();
    assert!(status["spares"].as_array().unwrap().is_empty(), "{status}");
}

/// A real `vibetrees pool fill` killed with SIGKILL as soon as it is making a spare: the next fill
/// removes what it left and makes a whole spare. (When the child finished before the kill, the
/// same holds: nothing half-made is left.)
#[cfg(feature = "cli")]
#[test]
fn a_fill_killed_mid_way_leaves_debris_the_next_fill_removes() {
    use std::time::{Duration, Instant};
    let p = project(None);
    // enough files that making a spare takes a while
    worktree_support::pool::commit_many_files(&p, 3000);
    let pool = pool_dir(&p);
    let making = |pool: &Path| -> Vec<String> {
        std::fs::read_dir(pool)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".making-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args([
            "pool",
            "fill",
            "--repo",
            &p.root.to_string_lossy(),
            "--from",
            "main",
        ])
        .env("HOME", setup())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = false;
    while child.try_wait().unwrap().is_none() {
        if making(&pool).iter().any(|n| !n.ends_with(".lock")) {
            seen = true;
            break;
        }
        assert!(Instant::now() < deadline, "the fill never started a spare");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    eprintln!("killed while making a spare: {seen}");
    let m = manager(&p, 1);
    block_on(m.fill_pool(Some("main"))).unwrap();
    assert_eq!(making(&pool), Vec::<String>::new());
    let spares = m.pool_status().spares;
    assert_eq!(spares.len(), 1, "{spares:?}");
    let w = create(&m, "after-kill", "main");
    assert!(w.pool.claimed);
    assert_eq!(git(&w.path, &["status", "--porcelain"]), "");
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn a_full_budget_makes_room_with_the_oldest_spare_of_another_commit() {
    let p = project(None);
    let m = manager(&p, 1);
    assert_eq!(fill(&m, "main"), 1);
    let one = m.pool_status().spares[0].bytes;
    git(&p.root, &["checkout", "-q", "-b", "other"]);
    std::fs::write(p.root.join("other.txt"), "other\n").unwrap();
    git(&p.root, &["add", "other.txt"]);
    git(&p.root, &["commit", "-q", "-m", "other"]);
    git(&p.root, &["checkout", "-q", "main"]);
    // room for one spare and a half: main's (older, another commit) goes for other's
    let tight = WorktreeManager::new(WorktreeOptions {
        settings: WorktreeSettings {
            pool_max_bytes: one + one / 2,
            ..options(&p, 1).settings
        },
        ..options(&p, 1)
    })
    .unwrap();
    let report = block_on(tight.fill_pool(Some("other"))).unwrap();
    assert_eq!((report.made, report.discarded), (1, 1), "{report:?}");
    let other = git(&p.root, &["rev-parse", "other"]).trim().to_string();
    let spares = tight.pool_status().spares;
    assert_eq!(spares.len(), 1, "{spares:?}");
    assert_eq!(spares[0].commit, other);
    // the source's own spare is never evicted for itself: a second fill changes nothing
    let report = block_on(tight.fill_pool(Some("other"))).unwrap();
    assert_eq!((report.made, report.discarded), (0, 0), "{report:?}");
    block_on(m.clear_pool()).unwrap();
}
