//! Near spares (`worktree/pool/near.rs`) on real git repositories, checked with the git CLI: a
//! spare of an older commit of `from`'s ref, claimed and brought to the new commit by a
//! difference update, is indistinguishable from a fresh creation (files, modes, links, index,
//! cache-tree, node_modules of the new key); past `poolNearMaxChanges` a normal creation
//! happens; the refill brings a moved spare up to date instead of discarding it.

mod worktree_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{WorktreeManager, WorktreeOptions};
use worktree_support::pool::{assert_indistinguishable, create_settled as create};
use worktree_support::*;

fn options(p: &Project, pool_size: usize, near_max: usize) -> WorktreeOptions {
    let mut o = p.options();
    o.settings.pool_size = pool_size;
    o.settings.pool_near_max_changes = near_max;
    o
}

fn manager(p: &Project, pool_size: usize, near_max: usize) -> WorktreeManager {
    WorktreeManager::new(options(p, pool_size, near_max)).unwrap()
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn commit(p: &Project, msg: &str) -> String {
    git(&p.root, &["add", "-A"]);
    git(&p.root, &["commit", "-q", "-m", msg]);
    git(&p.root, &["rev-parse", "HEAD"]).trim().to_string()
}

/// A project with an executable-to-be, links, folders that become files and files that become
/// folders, and a spare of its `main` made.
fn project_with_spare(near_max: usize) -> (Project, WorktreeManager) {
    let p = project(None);
    let r = &p.root;
    write(&r.join("bin/run.sh"), "#!/bin/sh\necho run\n");
    write(&r.join("old/name.txt"), "renamed soon\n");
    write(&r.join("gone.txt"), "deleted soon\n");
    write(&r.join("dir_to_file/a.txt"), "a\n");
    write(&r.join("file_to_dir"), "a file for now\n");
    write(&r.join("link_to_file"), "a link for now\n");
    std::os::unix::fs::symlink("README.md", r.join("link")).unwrap();
    commit(&p, "more kinds of entries");
    p.warm_cache();
    let m = manager(&p, 1, near_max);
    assert_eq!(block_on(m.fill_pool(Some("main"))).unwrap().made, 1);
    (p, m)
}

/// Moves `main` by one commit that adds, changes, deletes and renames files, changes a mode,
/// changes links, swaps a file and a folder, and changes the lockfile (a new cache entry is
/// populated for it, with one more package). Returns the commit.
fn move_main(p: &Project) -> String {
    let r = &p.root;
    write(
        &r.join("src/dir0/file0.js"),
        "export const v0 = 'changed';\n",
    );
    write(&r.join("new/deep/folder/file.txt"), "added\n");
    std::fs::remove_file(r.join("gone.txt")).unwrap();
    std::fs::create_dir_all(r.join("renamed")).unwrap();
    std::fs::rename(r.join("old/name.txt"), r.join("renamed/name.txt")).unwrap();
    std::fs::set_permissions(r.join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(r.join("link")).unwrap();
    std::os::unix::fs::symlink("package.json", r.join("link")).unwrap();
    std::fs::remove_file(r.join("link_to_file")).unwrap();
    std::os::unix::fs::symlink("README.md", r.join("link_to_file")).unwrap();
    std::fs::remove_dir_all(r.join("dir_to_file")).unwrap();
    write(&r.join("dir_to_file"), "now a file\n");
    std::fs::remove_file(r.join("file_to_dir")).unwrap();
    write(&r.join("file_to_dir/inside.txt"), "now a folder\n");
    let lock = std::fs::read_to_string(r.join("package-lock.json")).unwrap();
    std::fs::write(
        r.join("package-lock.json"),
        lock.replace("\"requires\": true", "\"requires\": false"),
    )
    .unwrap();
    write(
        &r.join("node_modules/new-dep/index.js"),
        "module.exports = 1;\n",
    );
    let c = commit(p, "a change of every kind");
    p.warm_cache();
    c
}

#[test]
fn a_near_claim_is_indistinguishable_from_a_fresh_creation() {
    let (p, m) = project_with_spare(1000);
    let old = m.pool_status().spares[0].commit.clone();
    let new = move_main(&p);
    assert_ne!(old, new);
    let claimed = create(&m, "near", "main");
    assert!(claimed.pool.claimed, "{:?}", claimed.pool);
    let changes = claimed.pool.near_changes.expect("a near claim");
    assert!((10..=20).contains(&changes), "{changes} changed paths");
    let json = serde_json::to_value(&*claimed).unwrap();
    assert_eq!(json["pool"]["nearChanges"], changes, "{json}");
    assert_eq!(git(&claimed.path, &["rev-parse", "HEAD"]).trim(), new);
    // node_modules of the new key: the entry populated after the lockfile changed
    assert_eq!(claimed.cache.outcome.as_str(), "hit");
    assert_ne!(claimed.cache.method.as_deref(), Some("pool"));
    assert!(claimed.path.join("node_modules/new-dep/index.js").is_file());
    assert!(
        claimed
            .path
            .join("node_modules/left-pad/index.js")
            .is_file()
    );

    let fresh = create(&manager(&p, 0, 1000), "fresh", "main");
    assert!(!fresh.pool.claimed);
    assert_indistinguishable(&p, &claimed.path, &fresh.path);
    // a commit lands on the branch; git's own remove works
    write(&claimed.path.join("x.txt"), "x\n");
    git(&claimed.path, &["add", "x.txt"]);
    git(&claimed.path, &["commit", "-q", "-m", "x"]);
    assert_eq!(
        git(&p.root, &["rev-parse", "near"]),
        git(&claimed.path, &["rev-parse", "HEAD"])
    );
    git(
        &p.root,
        &["worktree", "remove", &claimed.path.to_string_lossy()],
    );
    block_on(m.clear_pool()).unwrap();
}

/// A spare's index the update cannot read exactly (here git rewrote it as version 4, which
/// vibetrees never writes) fails the claim with the reader's reason, never a wrong index; the
/// folder is discarded and the next creation is a whole one.
#[test]
fn a_spare_whose_index_is_not_ours_fails_the_claim() {
    let (p, m) = project_with_spare(1000);
    let spare = m.pool_status().spares[0].path.clone();
    let index = spare.join(".vibetrees-spare/index");
    let out = std::process::Command::new("git")
        .args(["update-index", "--index-version", "4"])
        .env("GIT_INDEX_FILE", &index)
        .current_dir(&p.root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(&std::fs::read(&index).unwrap()[4..8], &[0, 0, 0, 4]);
    write(&p.root.join("src/dir0/file0.js"), "changed\n");
    let new = commit(&p, "one file");
    let r = block_on(async {
        let r = m.create_worktree_optimized("near", "main").await;
        m.wait_background().await;
        r
    });
    let e = match r {
        Err(e) => e,
        Ok(o) => panic!("expected the claim to fail, got {o:?}"),
    };
    assert!(
        e.full_message().contains("index version 4"),
        "{}",
        e.full_message()
    );
    assert!(!spare.exists());
    let w = create(&m, "after", "main");
    assert_eq!(git(&w.path, &["rev-parse", "HEAD"]).trim(), new);
    assert_eq!(git(&w.path, &["status", "--porcelain"]), "");
    git(&w.path, &["fsck", "--no-progress"]);
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn past_the_threshold_a_normal_creation_happens_and_the_refill_replaces_the_spare() {
    let (p, m) = project_with_spare(3);
    for i in 0..4 {
        write(&p.root.join(format!("src/dir1/file{i}.js")), "changed\n");
    }
    let new = commit(&p, "four files");
    let w = create(&manager(&p, 1, 3), "far", "main");
    assert!(!w.pool.claimed, "{:?}", w.pool);
    assert_eq!(w.pool.near_changes, None);
    assert_eq!(git(&w.path, &["status", "--porcelain"]), "");
    // the too-far spare was not updated: discarded and made again
    let report = block_on(m.fill_pool(Some("main"))).unwrap();
    assert_eq!(
        (report.updated, report.discarded, report.made),
        (0, 1, 1),
        "{report:?}"
    );
    let spares = m.pool_status().spares;
    assert_eq!(spares.len(), 1);
    assert_eq!(spares[0].commit, new);
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn the_refill_brings_a_moved_spare_up_to_date() {
    let (p, m) = project_with_spare(1000);
    let new = move_main(&p);
    let report = block_on(m.fill_pool(Some("main"))).unwrap();
    assert_eq!(
        (report.updated, report.discarded, report.made),
        (1, 0, 0),
        "{report:?}"
    );
    let spares = m.pool_status().spares;
    assert_eq!(spares.len(), 1, "{spares:?}");
    assert_eq!(spares[0].commit, new);
    assert!(spares[0].node_modules);
    // nothing of the update is left in the pool
    let names: Vec<String> = std::fs::read_dir(p.root.join(".worktrees/.pool"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".fill"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with(&new[..12]), "{names:?}");
    // an exact claim of the updated spare: node_modules already of the new key
    let claimed = create(&m, "updated", "main");
    assert!(claimed.pool.claimed);
    assert_eq!(claimed.pool.near_changes, None);
    assert_eq!(claimed.cache.method.as_deref(), Some("pool"));
    assert!(claimed.path.join("node_modules/new-dep/index.js").is_file());
    let fresh = create(&manager(&p, 0, 1000), "fresh", "main");
    assert_indistinguishable(&p, &claimed.path, &fresh.path);
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn a_spare_whose_commit_is_gone_is_discarded_not_updated() {
    let p = project(None);
    p.warm_cache();
    git(&p.root, &["checkout", "-q", "-b", "topic"]);
    write(&p.root.join("topic.txt"), "soon gone\n");
    let gone = commit(&p, "a commit that will be gone");
    let m = manager(&p, 1, 1000);
    assert_eq!(block_on(m.fill_pool(Some("topic"))).unwrap().made, 1);
    // topic rewound, its old commit unreachable and pruned
    git(&p.root, &["reset", "-q", "--hard", "HEAD~1"]);
    git(&p.root, &["checkout", "-q", "main"]);
    git(&p.root, &["reflog", "expire", "--expire=now", "--all"]);
    git(&p.root, &["gc", "-q", "--prune=now"]);
    assert!(
        std::process::Command::new("git")
            .args(["cat-file", "-e", &gone])
            .current_dir(&p.root)
            .status()
            .is_ok_and(|s| !s.success()),
        "the commit is still there"
    );
    let report = block_on(m.fill_pool(Some("topic"))).unwrap();
    assert_eq!(
        (report.updated, report.discarded, report.made),
        (0, 1, 1),
        "{report:?}"
    );
    let spares = m.pool_status().spares;
    assert!(spares.iter().all(|s| s.commit != gone), "{spares:?}");
    block_on(m.clear_pool()).unwrap();
}

#[test]
fn a_refill_killed_while_updating_a_spare_leaves_debris_the_next_fill_removes() {
    use std::time::{Duration, Instant};
    let p = project(None);
    // enough files that the update takes a while
    worktree_support::pool::commit_many_files(&p, 3000);
    let m = manager(&p, 1, 5000);
    assert_eq!(block_on(m.fill_pool(Some("main"))).unwrap().made, 1);
    for i in 0..1400 {
        write(
            &p.root.join(format!("src/big{}/f{i}.js", i % 30)),
            &format!("export const x{i} = 'moved';\n"),
        );
    }
    let new = commit(&p, "1,400 files changed");
    let pool = p.root.join(".worktrees/.pool");
    let making = |pool: &Path| -> Vec<String> {
        std::fs::read_dir(pool)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".making-") && !n.ends_with(".lock"))
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
        if !making(&pool).is_empty() {
            seen = true;
            break;
        }
        assert!(Instant::now() < deadline, "the fill never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    eprintln!("killed while updating a spare: {seen}");
    // whatever the moment: the next fill leaves one whole spare of the new commit, no debris
    block_on(m.fill_pool(Some("main"))).unwrap();
    assert_eq!(making(&pool), Vec::<String>::new());
    let spares = m.pool_status().spares;
    assert_eq!(spares.len(), 1, "{spares:?}");
    assert_eq!(spares[0].commit, new);
    let w = create(&m, "after-kill", "main");
    assert!(w.pool.claimed);
    assert_eq!(git(&w.path, &["status", "--porcelain"]), "");
    let fresh = create(&manager(&p, 0, 5000), "fresh", "main");
    assert_eq!(
        git(&w.path, &["ls-files", "-s"]),
        git(&fresh.path, &["ls-files", "-s"])
    );
    block_on(m.clear_pool()).unwrap();
}
