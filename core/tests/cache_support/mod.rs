//! Shared helpers of the cache tests: generated node_modules trees and tree snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// One node of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Snap {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        digest: String,
        size: u64,
    },
    Symlink {
        target: PathBuf,
    },
    Special,
}

/// Everything under `root` (not followed through symlinks): path -> type, mode, content, target.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Snap> {
    let mut out = BTreeMap::new();
    let m = fs::symlink_metadata(root).expect("snapshot root");
    out.insert(
        PathBuf::new(),
        Snap::Dir {
            mode: m.permissions().mode() & 0o7777,
        },
    );
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Snap>) {
    for e in fs::read_dir(root.join(rel)).unwrap() {
        let e = e.unwrap();
        let r = rel.join(e.file_name());
        let p = root.join(&r);
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let mode = m.permissions().mode() & 0o7777;
        if ft.is_symlink() {
            out.insert(
                r,
                Snap::Symlink {
                    target: fs::read_link(&p).unwrap(),
                },
            );
        } else if ft.is_dir() {
            out.insert(r.clone(), Snap::Dir { mode });
            walk(root, &r, out);
        } else if ft.is_file() {
            let bytes = fs::read(&p).unwrap();
            out.insert(
                r,
                Snap::File {
                    mode,
                    digest: blake3::hash(&bytes).to_hex().to_string(),
                    size: bytes.len() as u64,
                },
            );
        } else {
            out.insert(r, Snap::Special);
        }
    }
}

/// Asserts two snapshots are equal, naming the first difference.
pub fn assert_same(a: &BTreeMap<PathBuf, Snap>, b: &BTreeMap<PathBuf, Snap>) {
    for (k, v) in a {
        match b.get(k) {
            None => panic!("{} missing in the restored tree", k.display()),
            Some(w) if w != v => panic!("{} differs: source {v:?}, restored {w:?}", k.display()),
            _ => {}
        }
    }
    for k in b.keys() {
        assert!(
            a.contains_key(k),
            "{} is extra in the restored tree",
            k.display()
        );
    }
}

/// The snapshot without special files (which the cache skips and counts).
pub fn without_special(s: &BTreeMap<PathBuf, Snap>) -> BTreeMap<PathBuf, Snap> {
    s.iter()
        .filter(|(_, v)| **v != Snap::Special)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn write(p: &Path, content: &str, mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes one package folder: package.json, lib files, a README, optionally a bin script.
fn package(dir: &Path, name: &str, files: usize, bin: bool) {
    write(
        &dir.join("package.json"),
        &format!("{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"main\":\"index.js\"}}\n"),
        0o644,
    );
    write(
        &dir.join("index.js"),
        &format!("module.exports = '{name}';\n"),
        0o644,
    );
    for i in 0..files {
        let sub = if i % 3 == 0 { "lib" } else { "lib/util" };
        write(
            &dir.join(sub).join(format!("f{i}.js")),
            &format!("// {name} {i}\nexports.v = {i};\n"),
            0o644,
        );
    }
    if bin {
        write(
            &dir.join("bin/cli.js"),
            "#!/usr/bin/env node\nconsole.log('hi');\n",
            0o755,
        );
    }
}

/// A generated node_modules with every shape the cache must keep: `.bin` symlinks, nested and
/// scoped packages, exec bits, empty folders, odd modes, unicode and very long names, a dangling
/// symlink, a symlink to a folder, and (unless `no_special`) a fifo the cache must skip.
/// `packages` package folders of `files_per_package` files each (plus a few).
pub fn gen_tree(root: &Path, packages: usize, files_per_package: usize, special: bool) {
    fs::create_dir_all(root).unwrap();
    fs::create_dir_all(root.join(".bin")).unwrap();
    for p in 0..packages {
        let (name, dir) = if p % 5 == 0 {
            let n = format!("@scope{}/pkg{p}", p % 3);
            (n.clone(), root.join(&n))
        } else {
            (format!("pkg{p}"), root.join(format!("pkg{p}")))
        };
        let bin = p % 4 == 0;
        package(&dir, &name, files_per_package, bin);
        if bin {
            let link_name = name.rsplit('/').next().unwrap().to_string();
            symlink(
                format!("../{name}/bin/cli.js"),
                root.join(".bin").join(link_name),
            )
            .unwrap();
        }
        if p % 7 == 0 {
            let nested = dir.join("node_modules").join(format!("nested{p}"));
            package(&nested, &format!("nested{p}"), 3, false);
        }
    }
    // Odd shapes.
    fs::create_dir_all(root.join("empty-pkg/empty/deeper")).unwrap();
    write(&root.join("ünïcödé-пакет/файл-📦.js"), "unicode\n", 0o644);
    let long = "l".repeat(250);
    write(
        &root.join(&long).join(format!("{long}.js")),
        "long\n",
        0o644,
    );
    let mut deep = root.join("deep");
    for i in 0..30 {
        deep = deep.join(format!("level-{i}-{}", "d".repeat(40)));
    }
    write(&deep.join("leaf.js"), "deep\n", 0o644);
    write(&root.join("modes/private.key"), "secret\n", 0o600);
    write(&root.join("modes/script.sh"), "#!/bin/sh\n", 0o750);
    write(&root.join("modes/empty-file"), "", 0o644);
    fs::create_dir_all(root.join("modes/private-dir")).unwrap();
    write(&root.join("modes/private-dir/x"), "x\n", 0o644);
    fs::set_permissions(
        root.join("modes/private-dir"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    symlink("../does-not-exist", root.join("modes/dangling")).unwrap();
    symlink("pkg1", root.join("alias-to-dir")).unwrap();
    symlink(
        "/absolute/target/kept/verbatim",
        root.join("modes/absolute-link"),
    )
    .unwrap();
    write(&root.join(".package-lock.json"), "{}\n", 0o644);
    if special {
        // mkfifo(3) is POSIX (rustix has mkfifoat on Linux only)
        let status = std::process::Command::new("mkfifo")
            .args(["-m", "644"])
            .arg(root.join("modes/a-fifo"))
            .status()
            .unwrap();
        assert!(status.success(), "mkfifo failed");
    }
}

/// A realistic tree of about `files` files (package folders of ~15 files).
pub fn gen_sized_tree(root: &Path, files: usize) {
    let per = 12;
    gen_tree(root, (files / (per + 3)).max(1), per, false);
}

/// A project folder with package.json (and a lockfile) whose key is stable.
pub fn gen_project(dir: &Path, tag: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("package.json"),
        format!("{{\"name\":\"p\",\"dependencies\":{{\"left-pad\":\"1.3.0\",\"tag-{tag}\":\"1.0.0\"}}}}\n"),
    )
    .unwrap();
    fs::write(
        dir.join("package-lock.json"),
        format!("{{\"lockfileVersion\":3,\"tag\":\"{tag}\"}}\n"),
    )
    .unwrap();
}

/// A fresh temporary folder under /work (ext4 here), not /tmp, so cross-filesystem tests know
/// where they stand; falls back to the system temp folder elsewhere.
pub fn tempdir() -> tempfile::TempDir {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("cache-test-")
        .tempdir_in(base)
        .unwrap()
}

/// True in CI (`CI=true`): tests that could skip must run.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Skips (returns true and prints why) unless in CI, where it fails instead.
pub fn skip(reason: &str) -> bool {
    if in_ci() {
        panic!("cannot skip in CI: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
    true
}

/// The key used by tests that do not care about projects.
pub fn test_key(n: u8) -> vibetrees_core::cache::CacheKey {
    vibetrees_core::cache::CacheKey::parse(&format!("{:02x}", n).repeat(32)).unwrap()
}

/// Opens a cache in `dir`.
pub fn open_cache(dir: &Path) -> vibetrees_core::cache::NodeModulesCache {
    vibetrees_core::cache::NodeModulesCache::open(vibetrees_core::cache::CacheOptions {
        cache_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
    .unwrap()
}

/// A fresh temporary folder on /dev/shm (tmpfs) when there is one, for tests that create and
/// delete many trees: the work tree's ext4 here has no journal and reuses no recently freed inode,
/// which makes a loop of create-delete-create crawl (see BENCHMARKING.md).
pub fn shm_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::Builder::new()
            .prefix("vt-cache-test-")
            .tempdir_in(shm)
        {
            return t;
        }
    }
    tempdir()
}
