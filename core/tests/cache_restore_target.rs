//! A restore never replaces what is not a node_modules folder, and replaces an existing
//! node_modules only when told (`replace`, `--replace`): real caches, real trees, the real CLI.

mod cache_support;

use cache_support::*;
use std::path::Path;
use std::process::Command;
use vibetrees_core::cache::{CacheManager, CacheManagerOptions, CacheOptions, RestoreOptions};

const BIN: &str = env!("CARGO_BIN_EXE_vibetrees");

fn manager(dir: &Path) -> CacheManager {
    CacheManager::new(CacheManagerOptions {
        cache: CacheOptions {
            cache_dir: Some(dir.join("cache")),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_target_that_is_not_node_modules_is_refused_and_left_alone() {
    let t = tempdir();
    let m = manager(t.path());
    let a = t.path().join("a");
    gen_project(&a, "x");
    gen_tree(&a.join("node_modules"), 4, 2, false);
    let key = m.cache_node_modules(&a.join("node_modules")).unwrap().key;

    // a project folder (the user's work) given as the target, through the CLI
    let project = t.path().join("my-project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("src/main.js"), "mine\n").unwrap();
    let before = snapshot(&project);
    let out = Command::new(BIN)
        .args(["cache", "restore", "--key", &key.to_string(), "--target"])
        .arg(&project)
        .args(["--cache-dir"])
        .arg(t.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a node_modules folder"), "{err}");
    // --replace does not change that
    let out = Command::new(BIN)
        .args([
            "cache",
            "restore",
            "--key",
            &key.to_string(),
            "--replace",
            "--target",
        ])
        .arg(&project)
        .args(["--cache-dir"])
        .arg(t.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_same(&before, &snapshot(&project));
    // through the API too, also where the key lookup would be a miss (no package.json there)
    let e = m
        .restore_node_modules_with(
            &project,
            &RestoreOptions {
                replace: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert_same(&before, &snapshot(&project));

    // a file and a link named node_modules, through the API (even with replace)
    let b = t.path().join("b");
    gen_project(&b, "x");
    std::fs::write(b.join("node_modules"), "a file of mine\n").unwrap();
    let replace = RestoreOptions {
        replace: true,
        ..Default::default()
    };
    let e = m
        .restore_node_modules_with(&b.join("node_modules"), &replace)
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert_eq!(
        std::fs::read_to_string(b.join("node_modules")).unwrap(),
        "a file of mine\n"
    );
    let c = t.path().join("c");
    gen_project(&c, "x");
    std::os::unix::fs::symlink(&project, c.join("node_modules")).unwrap();
    let e = m
        .restore_node_modules_with(&c.join("node_modules"), &replace)
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT", "{e}");
    assert_same(&before, &snapshot(&project));
}

#[test]
fn an_existing_node_modules_is_replaced_only_when_told() {
    let t = tempdir();
    let m = manager(t.path());
    let a = t.path().join("a");
    gen_project(&a, "x");
    gen_tree(&a.join("node_modules"), 4, 2, false);
    m.cache_node_modules(&a.join("node_modules")).unwrap();
    let b = t.path().join("b");
    gen_project(&b, "x");
    std::fs::create_dir_all(b.join("node_modules/patched")).unwrap();
    std::fs::write(b.join("node_modules/patched/index.js"), "my patch\n").unwrap();
    let e = m.restore_node_modules(&b.join("node_modules")).unwrap_err();
    assert_eq!(e.code(), "ALREADY_EXISTS", "{e}");
    assert_eq!(
        std::fs::read_to_string(b.join("node_modules/patched/index.js")).unwrap(),
        "my patch\n"
    );
    let out = m
        .restore_node_modules_with(
            &b.join("node_modules"),
            &RestoreOptions {
                replace: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(out.restored, "{out:?}");
    assert_same(
        &snapshot(&a.join("node_modules")),
        &snapshot(&b.join("node_modules")),
    );
    // the CLI: refused without --replace, done with it
    std::fs::write(b.join("node_modules/extra.txt"), "x").unwrap();
    let run = |replace: bool| {
        let mut c = Command::new(BIN);
        c.args(["cache", "restore"])
            .arg(&b)
            .arg("--cache-dir")
            .arg(t.path().join("cache"));
        if replace {
            c.arg("--replace");
        }
        c.output().unwrap()
    };
    let out = run(false);
    assert!(!out.status.success());
    assert!(b.join("node_modules/extra.txt").exists());
    let out = run(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!b.join("node_modules/extra.txt").exists());
}
