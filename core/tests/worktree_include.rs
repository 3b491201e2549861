//! `.worktreeinclude`: ignored files of the main worktree copied into new worktrees, on real
//! files: folders, negations, an executable, symlinks (inside, and pointing outside), a tracked
//! file (never touched), node_modules (never: the cache's job); ext4 (copies), tmpfs as the
//! worktree base (EXDEV: copies), a loop-mounted XFS (clones) when the machine allows it.

mod worktree_support;
mod xfs_support;

use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CreateOutcome, WorktreeManager, WorktreeSettings};
use worktree_support::*;
use xfs_support::XfsMount;

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn skip(why: &str) -> bool {
    if std::env::var_os("VT_REQUIRE_ALL").is_some() {
        panic!("required but unavailable: {why}");
    }
    eprintln!("SKIP: {why}");
    true
}

/// Adds the ignored files and `.worktreeinclude` to the project at `root` (committed: the
/// rules, the `.gitignore`, one tracked file that the ignore rules would match).
fn add_ignored_files(root: &Path) {
    let gi = std::fs::read_to_string(root.join(".gitignore")).unwrap_or_default();
    write(
        &root.join(".gitignore"),
        &format!(
            "{gi}.env.local\n.env.outside\n.next/\ncerts/\nscripts/local.sh\nconfig/*.env\nbuild-cache/\n"
        ),
    );
    write(
        &root.join(".worktreeinclude"),
        "# copied into every new worktree\n.env.local\n.env.outside\n.next/cache/\ncerts/\n\
         !certs/dev.key\nscripts/local.sh\nconfig/*.env\nnotes.txt\nnode_modules/\n",
    );
    write(&root.join("config/tracked.env"), "TRACKED=committed\n");
    git(root, &["add", ".gitignore", ".worktreeinclude"]);
    git(root, &["add", "-f", "config/tracked.env"]);
    git(root, &["commit", "-q", "-m", "ignored files"]);
    // the main worktree's ignored (and untracked) files
    write(&root.join(".env.local"), "SECRET=1\n");
    write(&root.join(".next/cache/a.json"), "{\"a\":1}\n");
    write(&root.join(".next/cache/sub/b.bin"), &"b".repeat(10_000));
    std::os::unix::fs::symlink("a.json", root.join(".next/cache/link")).unwrap();
    write(&root.join(".next/server/page.js"), "not named\n");
    write(&root.join("certs/dev.pem"), "PEM\n");
    write(&root.join("certs/dev.key"), "KEY\n");
    write(&root.join("scripts/local.sh"), "#!/bin/sh\necho local\n");
    std::fs::set_permissions(
        root.join("scripts/local.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let outside = root.parent().unwrap().join("outside-secret.txt");
    write(&outside, "outside\n");
    std::os::unix::fs::symlink(&outside, root.join(".env.outside")).unwrap();
    write(&root.join("config/local.env"), "LOCAL=1\n");
    write(&root.join("notes.txt"), "untracked, not ignored\n");
    // a tracked file changed in the main worktree: the new worktree keeps the committed text
    write(
        &root.join("config/tracked.env"),
        "TRACKED=changed in main\n",
    );
    let st = Command::new("touch")
        .args(["-d", "2020-01-02 03:04:05"])
        .arg(root.join(".next/cache/a.json"))
        .status()
        .unwrap();
    assert!(st.success());
}

fn create(
    settings: WorktreeSettings,
    branch: &str,
) -> Box<vibetrees_core::worktree::CreatedWorktree> {
    let m = WorktreeManager::new(settings.into()).unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized(branch, "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    match out {
        CreateOutcome::Created(w) => w,
        other => panic!("expected a new worktree, got {other:?}"),
    }
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

/// What the copy must have made in worktree `w` from the main worktree `root`.
fn assert_copied(root: &Path, w: &Path) {
    let read = |p: &str| std::fs::read_to_string(w.join(p)).unwrap();
    assert_eq!(read(".env.local"), "SECRET=1\n");
    assert_eq!(read(".next/cache/a.json"), "{\"a\":1}\n");
    assert_eq!(read(".next/cache/sub/b.bin"), "b".repeat(10_000));
    assert_eq!(read("certs/dev.pem"), "PEM\n");
    assert_eq!(read("config/local.env"), "LOCAL=1\n");
    // the mtime kept (build tools keep their caches valid)
    let (src, dst) = (
        std::fs::metadata(root.join(".next/cache/a.json")).unwrap(),
        std::fs::metadata(w.join(".next/cache/a.json")).unwrap(),
    );
    assert_eq!(
        (src.mtime(), src.mtime_nsec()),
        (dst.mtime(), dst.mtime_nsec())
    );
    // a copy, never a hardlink
    assert_ne!(src.ino(), dst.ino());
    assert_eq!(dst.nlink(), 1);
    // the executable bit
    let mode = std::fs::metadata(w.join("scripts/local.sh"))
        .unwrap()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // symlinks stay symlinks, the one pointing outside too (never followed)
    let inside = w.join(".next/cache/link");
    assert!(
        std::fs::symlink_metadata(&inside)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&inside).unwrap(), Path::new("a.json"));
    let outside = w.join(".env.outside");
    assert!(
        std::fs::symlink_metadata(&outside)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_link(&outside).unwrap(),
        root.parent().unwrap().join("outside-secret.txt")
    );
    // not copied: a negation, a path no pattern names, not ignored, node_modules
    assert!(!w.join("certs/dev.key").exists());
    assert!(!w.join(".next/server").exists());
    assert!(!w.join("notes.txt").exists());
    assert!(!w.join("node_modules").exists());
    // the tracked file: as committed, not the main worktree's changed copy
    assert_eq!(read("config/tracked.env"), "TRACKED=committed\n");
}

#[test]
fn worktreeinclude_copies_ignored_files_folders_modes_and_symlinks_on_ext4() {
    let p = project(None);
    add_ignored_files(&p.root);
    let w = create(settings(&p), "feat-include");
    assert_copied(&p.root, &w.path);
    let step: &Value = &w.steps["copy-ignored"];
    // .env.local, .next/cache (a.json, sub/b.bin), certs (dev.pem), local.sh, local.env
    assert_eq!(step["files"], 6, "{step}");
    // .env.local, .env.outside, .next/cache, certs, scripts/local.sh, config/local.env
    assert_eq!(step["entries"], 6, "{step}");
    assert_eq!(step["method"], "copied", "{step}");
    assert_eq!(step["copied"], 6, "{step}");
    assert!(step["bytes"].as_u64().unwrap() > 10_000, "{step}");
    assert!(w.timings.iter().any(|t| t.name == "copy-ignored"));
    // nothing left in staging
    let staging = p.root.join(".worktrees/.staging");
    assert!(!staging.exists() || std::fs::read_dir(&staging).unwrap().count() == 0);

    // the host's `include` adds a pattern
    write(&p.root.join("build-cache/x.o"), "object\n");
    let w2 = create(
        WorktreeSettings {
            include: vec!["build-cache/".into()],
            ..settings(&p)
        },
        "feat-include-2",
    );
    assert_eq!(
        std::fs::read_to_string(w2.path.join("build-cache/x.o")).unwrap(),
        "object\n"
    );
    assert_eq!(w2.steps["copy-ignored"]["entries"], 7);

    // a big folder marked for the background: copied after ready, awaited by wait_background
    let w4 = create(
        WorktreeSettings {
            include_background: vec!["build-cache/".into()],
            ..settings(&p)
        },
        "feat-include-bg",
    );
    assert_eq!(w4.steps["copy-ignored"]["entries"], 6);
    assert_eq!(w4.steps["copy-ignored"]["background"]["files"], 1);
    assert!(
        w4.background
            .contains(&"copy-ignored-background".to_string())
    );
    assert_eq!(
        std::fs::read_to_string(w4.path.join("build-cache/x.o")).unwrap(),
        "object\n"
    );
    assert_copied(&p.root, &w4.path);

    // an existing branch that has `.env.local` itself: its file is left alone, reported skipped
    let tmp = p.root.parent().unwrap().join("tmp-wt");
    git(
        &p.root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "has-env",
            tmp.to_str().unwrap(),
        ],
    );
    write(&tmp.join(".env.local"), "FROM_BRANCH=1\n");
    git(&tmp, &["add", "-f", ".env.local"]);
    git(&tmp, &["commit", "-q", "-m", "branch env"]);
    git(&p.root, &["worktree", "remove", tmp.to_str().unwrap()]);
    let w3 = create(settings(&p), "has-env");
    assert_eq!(
        std::fs::read_to_string(w3.path.join(".env.local")).unwrap(),
        "FROM_BRANCH=1\n"
    );
    assert_eq!(
        w3.steps["copy-ignored"]["skipped"],
        serde_json::json!([".env.local"])
    );
    assert_eq!(w3.steps["copy-ignored"]["entries"], 5);
}

/// Whether files in `dir` can be opened for direct I/O (`O_DIRECT`; macOS has none).
#[cfg(not(target_os = "linux"))]
fn takes_direct_io(_dir: &Path) -> bool {
    false
}

/// Whether files in `dir` can be opened for direct I/O (`O_DIRECT`).
#[cfg(target_os = "linux")]
fn takes_direct_io(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let probe = dir.join(".direct-probe");
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

#[test]
fn include_direct_io_copies_the_same_files_and_counts_the_direct_ones() {
    let p = project(None);
    add_ignored_files(&p.root);
    // one file of a MiB and an unaligned tail, read-only, with an old mtime
    let big: Vec<u8> = (0..(1u32 << 20) + 4103)
        .map(|i| (i * 131 % 253) as u8)
        .collect();
    let big_path = p.root.join(".next/cache/sub/big.bin");
    std::fs::write(&big_path, &big).unwrap();
    std::fs::set_permissions(&big_path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let st = Command::new("touch")
        .args(["-d", "2021-05-06 07:08:09"])
        .arg(&big_path)
        .status()
        .unwrap();
    assert!(st.success());
    let direct_here = takes_direct_io(&p.root);
    let w = create(
        WorktreeSettings {
            include_direct_io: Some(true),
            ..settings(&p)
        },
        "feat-direct",
    );
    assert_copied(&p.root, &w.path);
    let copy = w.path.join(".next/cache/sub/big.bin");
    assert_eq!(std::fs::read(&copy).unwrap(), big);
    let (src, dst) = (
        std::fs::metadata(&big_path).unwrap(),
        std::fs::metadata(&copy).unwrap(),
    );
    assert_eq!(dst.mode() & 0o7777, 0o444);
    assert_eq!(
        (src.mtime(), src.mtime_nsec()),
        (dst.mtime(), dst.mtime_nsec())
    );
    let step: &Value = &w.steps["copy-ignored"];
    assert_eq!(step["copied"], 7, "{step}");
    // the files of 4 KiB or more: sub/b.bin (10,000 bytes) and big.bin
    assert_eq!(step["direct"], if direct_here { 2 } else { 0 }, "{step}");

    // off: none
    let w2 = create(
        WorktreeSettings {
            include_direct_io: Some(false),
            ..settings(&p)
        },
        "feat-buffered",
    );
    assert_eq!(
        std::fs::read(w2.path.join(".next/cache/sub/big.bin")).unwrap(),
        big
    );
    assert_eq!(w2.steps["copy-ignored"]["direct"], 0);

    // unset (the default): by direct I/O where the worktree's disk suits it
    let w3 = create(settings(&p), "feat-auto");
    assert_copied(&p.root, &w3.path);
    assert_eq!(
        std::fs::read(w3.path.join(".next/cache/sub/big.bin")).unwrap(),
        big
    );
    let suits = vibetrees_core::platform::direct_io_suits(&w3.path);
    assert_eq!(
        w3.steps["copy-ignored"]["direct"],
        if suits && direct_here { 2 } else { 0 },
        "suits: {suits}"
    );

    // the CLI's `--include-direct-io` (bare: on, and before the branch: it takes no next word)
    // and `--include-direct-io=off`
    for (branch, flag, want) in [
        ("feat-direct-cli", vec!["--include-direct-io"], direct_here),
        ("feat-off-cli", vec!["--include-direct-io=off"], false),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
            .args([
                "create",
                branch,
                "--runtime",
                "none",
                "--no-cache",
                "--json",
            ])
            .args(&flag)
            .arg("--repo")
            .arg(&p.root)
            .env("HOME", setup())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_str(&stdout).unwrap();
        let step = &json["worktree"]["steps"]["copy-ignored"];
        assert_eq!(step["direct"], if want { 2 } else { 0 }, "{flag:?} {json}");
        let copy = p
            .root
            .join(".worktrees")
            .join(branch)
            .join(".next/cache/sub/big.bin");
        assert_eq!(std::fs::read(copy).unwrap(), big);
    }
}

#[test]
fn a_bad_pattern_in_the_include_option_is_refused_with_its_text() {
    let p = project(None);
    let e = WorktreeManager::new(
        WorktreeSettings {
            include: vec!["a/**/b".into(), "{unclosed".into()],
            ..settings(&p)
        }
        .into(),
    )
    .err()
    .expect("refused");
    assert_eq!(e.code(), "PARSE");
    assert!(e.to_string().contains("{unclosed"), "{e}");
    // nothing was made
    assert!(!p.root.join(".worktrees").exists());
}

#[test]
fn worktree_base_on_another_filesystem_copies_across_exdev() {
    let p = project(None);
    let shm = Path::new("/dev/shm");
    let dev = |x: &Path| std::fs::metadata(x).unwrap().dev();
    if (!shm.is_dir() || dev(shm) == dev(&p.root))
        && skip("/dev/shm is missing or on the same filesystem as the project")
    {
        return;
    }
    add_ignored_files(&p.root);
    let base = tempfile::Builder::new()
        .prefix("vt-include-base-")
        .tempdir_in(shm)
        .unwrap();
    let w = create(
        WorktreeSettings {
            worktree_base: Some(base.path().to_path_buf()),
            ..settings(&p)
        },
        "feat-exdev",
    );
    assert_copied(&p.root, &w.path);
    assert_eq!(w.steps["copy-ignored"]["method"], "copied");
    git(
        &p.root,
        &["worktree", "remove", "--force", w.path.to_str().unwrap()],
    );
}

#[test]
fn xfs_with_reflink_clones_the_ignored_files() {
    setup();
    let xfs = match XfsMount::new() {
        Ok(x) => x,
        Err(why) => {
            if skip(&format!("no loop-mounted XFS: {why}")) {
                return;
            }
            unreachable!()
        }
    };
    let root = xfs.dir.join("projects/app");
    write(&root.join("README.md"), "# app\n");
    write(&root.join(".gitignore"), ".worktrees/\n");
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    add_ignored_files(&root);
    let w = create(
        WorktreeSettings {
            runtime: vibetrees_core::worktree::ContainerRuntime::None,
            history_path: Some(xfs.dir.join("history.sqlite")),
            install: false,
            use_cache: false,
            ..WorktreeSettings::new(&root)
        },
        "feat-xfs",
    );
    assert_copied(&root, &w.path);
    let step = &w.steps["copy-ignored"];
    assert_eq!(step["method"], "cloned", "{step}");
    assert_eq!(step["cloned"], 6, "{step}");
    git(
        &root,
        &["worktree", "remove", "--force", w.path.to_str().unwrap()],
    );
}

#[test]
fn a_kill_mid_copy_then_the_retry_is_clean() {
    setup();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("projects/app");
    write(&root.join("README.md"), "# app\n");
    write(&root.join(".gitignore"), ".worktrees/\nbig/\n");
    write(&root.join(".worktreeinclude"), "big/\n");
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    let n = 20_000;
    for i in 0..n {
        write(
            &root.join(format!("big/d{}/f{i}", i % 100)),
            &format!("{i}\n"),
        );
    }
    // a real `vibetrees create`, killed (SIGKILL) once the copy has started staging files
    let mut child = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args([
            "create",
            "feat-kill",
            "--runtime",
            "none",
            "--no-cache",
            "--json",
            "--repo",
        ])
        .arg(&root)
        .env("HOME", setup())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let staging = root.join(".worktrees/.staging");
    let copying = || {
        std::fs::read_dir(&staging)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_dir(e.path().join("include"))
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            })
    };
    loop {
        if copying() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the creation ended ({status}) before the copy was seen staging");
        }
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // the killed creation left no partial entry in the worktree
    let wt = root.join(".worktrees/feat-kill");
    assert!(!wt.join("big").exists() || std::fs::read_dir(wt.join("big")).unwrap().count() == 100);

    // the retry clears what the dead creation left and copies everything
    let w = create(
        WorktreeSettings {
            runtime: vibetrees_core::worktree::ContainerRuntime::None,
            use_cache: false,
            ..WorktreeSettings::new(&root)
        },
        "feat-kill",
    );
    assert_eq!(w.steps["copy-ignored"]["files"], n);
    for i in (0..n).step_by(997) {
        let f = format!("big/d{}/f{i}", i % 100);
        assert_eq!(
            std::fs::read_to_string(w.path.join(&f)).unwrap(),
            format!("{i}\n")
        );
    }
    let count: usize = (0..100)
        .map(|d| {
            std::fs::read_dir(w.path.join(format!("big/d{d}")))
                .unwrap()
                .count()
        })
        .sum();
    assert_eq!(count, n as usize);
    git(
        &root,
        &["worktree", "remove", "--force", w.path.to_str().unwrap()],
    );
}
