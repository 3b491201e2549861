//! A real node_modules: `npm ci` of a tiny real project (semver with its `.bin` entry, ms,
//! is-number), cached and restored into a second checkout, where node and the `.bin` link work.

mod cache_support;

use cache_support::*;
use std::path::Path;
use std::process::Command;
use vibetrees_core::cache::{CacheManager, CacheManagerOptions, CacheOptions, RestoreMethod};

fn npm(dir: &Path, home: &Path, args: &[&str]) {
    let out = Command::new("npm")
        .args(args)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .env("HOME", home)
        .env("npm_config_cache", home.join(".npm"))
        .output()
        .expect("run npm");
    assert!(
        out.status.success(),
        "npm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn npm_ci_tree_restores_and_runs() {
    if Command::new("npm").arg("--version").output().is_err() && skip("npm is not installed") {
        return;
    }
    let t = tempdir();
    let home = t.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let a = t.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(
        a.join("package.json"),
        r#"{"name":"vt-cache-npm-test","version":"1.0.0","private":true,
            "dependencies":{"semver":"7.6.3","ms":"2.1.3","is-number":"7.0.0"}}"#,
    )
    .unwrap();
    npm(&a, &home, &["install", "--package-lock-only"]);
    npm(&a, &home, &["ci"]);
    assert!(a.join("node_modules/.bin/semver").is_symlink());

    let m = CacheManager::new(CacheManagerOptions {
        cache: CacheOptions {
            cache_dir: Some(t.path().join("cache")),
            ..Default::default()
        },
        method: RestoreMethod::Auto,
    })
    .unwrap();
    let pop = m.cache_node_modules(&a.join("node_modules")).unwrap();
    assert!(pop.files > 10 && pop.symlinks >= 1, "{pop:?}");

    let b = t.path().join("b");
    std::fs::create_dir_all(&b).unwrap();
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(a.join(f), b.join(f)).unwrap();
    }
    assert!(m.is_cache_valid(&b));
    let out = m.restore_node_modules(&b.join("node_modules")).unwrap();
    assert!(out.restored, "{out:?}");
    assert_same(
        &snapshot(&a.join("node_modules")),
        &snapshot(&b.join("node_modules")),
    );

    // npm rewrites node_modules/.package-lock.json in place on every install: in the source
    // project and in a restored worktree. That file is never shared, so the entry stays sound.
    npm(&a, &home, &["install"]);
    npm(&b, &home, &["install"]);
    assert!(m.cache().verify(false).unwrap().bad.is_empty());
    let c = t.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(a.join(f), c.join(f)).unwrap();
    }
    assert!(
        m.restore_node_modules(&c.join("node_modules"))
            .unwrap()
            .restored
    );

    if Command::new("node").arg("--version").output().is_ok() {
        let run = Command::new("node")
            .args([
                "-e",
                "console.log(require('semver').valid('1.2.3'), require('ms')('1s'))",
            ])
            .current_dir(&b)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "1.2.3 1000");
        let bin = Command::new(b.join("node_modules/.bin/semver"))
            .arg("1.2.3")
            .output()
            .unwrap();
        assert!(bin.status.success());
        assert_eq!(String::from_utf8_lossy(&bin.stdout).trim(), "1.2.3");
    }
}
