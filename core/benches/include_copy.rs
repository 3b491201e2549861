//! Copying a build cache (~1 GB, ~20k files) into a new worktree, the ways the field does it,
//! in one run, alternating: `cp -a`, worktrunk's way (per-file reflink-or-copy on 4 threads,
//! reproduced here: walk, then each file `FICLONE` else `std::fs::copy`), and ours
//! (`.worktreeinclude` selection + `copy_selected`), buffered and with direct I/O (the
//! `includeDirectIo` setting). On a loop-mounted XFS with reflink (when root and `mkfs.xfs`
//! allow) also `cp -a --reflink=always`. Each run is followed by a timed `sync`: the
//! "+ sync" column counts the disk write a buffered copy leaves behind, which direct I/O does
//! inside the copy. Results: docs/include.md.
//!
//! Run (release without LTO, on a quiet machine):
//! `CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16 cargo bench -p vibetrees-core --bench include_copy`
//! `VT_BENCH_FILES` (default 20000), `VT_BENCH_MB` (default 1024), `VT_BENCH_ROUNDS` (default 3),
//! `VT_BENCH_WORKERS` (ours' worker threads; default the step's: 4 buffered, 16 by direct I/O).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use vibetrees_core::worktree::include::{self, IncludeRules};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic, incompressible-looking bytes.
fn fill(buf: &mut [u8], mut seed: u64) {
    for chunk in buf.chunks_mut(8) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// A project at `root` (a git repo) with an ignored `target/` of `files` files, `mb` MB in all:
/// 16 big files hold 3/8 of the bytes, the rest are small, in 200 folders.
fn make_project(root: &Path, files: u64, mb: u64) {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n.worktrees/\n").unwrap();
    std::fs::write(root.join(".worktreeinclude"), "target/\n").unwrap();
    std::fs::write(root.join("README.md"), "bench\n").unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(
        root,
        &["-c", "user.email=b@x", "-c", "user.name=b", "add", "-A"],
    );
    git(
        root,
        &[
            "-c",
            "user.email=b@x",
            "-c",
            "user.name=b",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
    let total = mb << 20;
    let big = 16u64;
    let big_size = total * 3 / 8 / big;
    let small_size = (total - big * big_size) / (files - big);
    let mut buf = vec![0u8; big_size.max(small_size * 2) as usize];
    fill(&mut buf, 0x9e37_79b9_7f4a_7c15);
    for i in 0..files {
        let dir = root.join(format!("target/debug/deps{}/m{}", i % 20, i % 200));
        std::fs::create_dir_all(&dir).unwrap();
        let size = if i < big {
            big_size
        } else {
            // 0.5x .. 1.5x the mean, varying per file
            small_size / 2 + (i * 7919 % small_size.max(1))
        };
        let off = (i * 4099) as usize % (buf.len() - size as usize).max(1);
        std::fs::write(
            dir.join(format!("f{i}.rlib")),
            &buf[off..off + size as usize],
        )
        .unwrap();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

fn sync() {
    let _ = Command::new("sync").status();
}

fn rm(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

/// worktrunk's way, reproduced: walk the tree, make the folders, then copy each file by
/// reflink-or-copy on 4 threads.
fn worktrunk_style(src: &Path, dst: &Path) {
    let mut dirs = vec![PathBuf::new()];
    let mut files = Vec::new();
    let mut i = 0;
    while i < dirs.len() {
        let rel = dirs[i].clone();
        std::fs::create_dir_all(dst.join(&rel)).unwrap();
        for e in std::fs::read_dir(src.join(&rel)).unwrap().flatten() {
            let ft = e.file_type().unwrap();
            let r = rel.join(e.file_name());
            if ft.is_dir() {
                dirs.push(r);
            } else if ft.is_file() {
                files.push(r);
            }
        }
        i += 1;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(rel) = files.get(k) else { break };
                    let (from, to) = (src.join(rel), dst.join(rel));
                    if !reflink(&from, &to) {
                        std::fs::copy(&from, &to).unwrap();
                    }
                }
            });
        }
    });
}

fn ours(root: &Path, dst_worktree: &Path, staging: &Path, direct_io: bool) -> (f64, String) {
    let repo = git2::Repository::open(root).unwrap();
    let text = std::fs::read_to_string(root.join(".worktreeinclude")).unwrap();
    let rules = IncludeRules::new(root, Some(&text), &[]).unwrap().unwrap();
    let sel = include::select(root, &repo, &rules, &[root.join(".worktrees")]).unwrap();
    std::fs::create_dir_all(dst_worktree).unwrap();
    let workers = env_num("VT_BENCH_WORKERS", include::copy_workers(direct_io) as u64) as usize;
    let out =
        include::copy_selected(root, dst_worktree, staging, &sel, workers, direct_io).unwrap();
    assert!(direct_io || out.direct == 0);
    let method = if out.direct > 0 {
        format!("{} ({} by direct I/O)", out.method, out.direct)
    } else {
        out.method.to_string()
    };
    (out.ms, method)
}

fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1000.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs every method `rounds` times in alternating order on the project at `root`.
fn run(label: &str, root: &Path, work: &Path, reflink: bool, rounds: u64) {
    let src = root.join("target");
    let mut names: Vec<&str> = vec![
        "cp -a",
        "worktrunk-style 4 threads",
        "vibetrees copy-ignored",
        "vibetrees copy-ignored direct I/O",
    ];
    if reflink {
        names.insert(1, "cp -a --reflink=always");
    }
    // VT_BENCH_ONLY=<substring>: only the methods whose name contains it (cp -a is the base)
    if let Ok(only) = std::env::var("VT_BENCH_ONLY") {
        names.retain(|n| *n == "cp -a" || n.contains(only.as_str()));
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut synced: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut method = Vec::new();
    let mut copy_ms = Vec::new();
    for round in 0..rounds {
        for k in 0..names.len() {
            let k = (k + round as usize) % names.len();
            // a new folder per run, deleted only after the series: deleting then re-creating
            // 20k files makes ext4 hunt for inodes (docs/include.md, "the inode trap")
            let dst = work.join(format!("dst-{round}-{k}"));
            sync();
            let ms = match names[k] {
                "cp -a" => time(|| {
                    let st = Command::new("cp")
                        .arg("-a")
                        .arg(&src)
                        .arg(&dst)
                        .status()
                        .unwrap();
                    assert!(st.success());
                }),
                "cp -a --reflink=always" => time(|| {
                    let st = Command::new("cp")
                        .args(["-a", "--reflink=always"])
                        .arg(&src)
                        .arg(&dst)
                        .status()
                        .unwrap();
                    assert!(st.success());
                }),
                "worktrunk-style 4 threads" => time(|| worktrunk_style(&src, &dst)),
                name => {
                    let direct_io = name.ends_with("direct I/O");
                    let mut m = (0.0, String::new());
                    let ms = time(|| {
                        let staging = work.join(format!("staging-{round}-{k}"));
                        m = ours(root, &dst, &staging, direct_io);
                    });
                    if !direct_io {
                        copy_ms.push(m.0);
                    }
                    method.push(format!("{name}: {}", m.1));
                    ms
                }
            };
            times[k].push(ms);
            synced[k].push(ms + time(sync));
        }
    }
    for round in 0..rounds {
        for k in 0..names.len() {
            rm(&work.join(format!("dst-{round}-{k}")));
            rm(&work.join(format!("staging-{round}-{k}")));
        }
    }
    let base = median(&mut times[0].clone());
    let base_synced = median(&mut synced[0].clone());
    println!("\n{label}: medians of {rounds} alternating rounds (source in the page cache)");
    println!(
        "  (the default, includeDirectIo unset, writes by direct I/O on this disk: {})",
        if include::use_direct_io(None, work) {
            "yes"
        } else {
            "no"
        }
    );
    println!(
        "  {:<34} {:>9} {:>16} {:>9} {:>16}",
        "", "copy", "", "+ sync", ""
    );
    for (k, n) in names.iter().enumerate() {
        let (m, s) = (median(&mut times[k]), median(&mut synced[k]));
        println!(
            "  {n:<34} {m:>6.0} ms  {:>5.2}x of cp -a {s:>6.0} ms  {:>5.2}x of cp -a",
            m / base,
            s / base_synced
        );
    }
    method.sort();
    method.dedup();
    for m in method {
        println!("  (ours placed files by: {m})");
    }
    if !copy_ms.is_empty() {
        let m = median(&mut copy_ms);
        println!("  (ours: {m:.0} ms in copy_selected, the rest is the selection)");
    }
}

fn xfs_mount(holder: &Path, gb: u64) -> Option<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let img = holder.join("xfs.img");
    let dir = holder.join("mnt");
    std::fs::create_dir_all(&dir).ok()?;
    std::fs::File::create(&img).ok()?.set_len(gb << 30).ok()?;
    let ok = |c: &mut Command| c.status().map(|s| s.success()).unwrap_or(false);
    (ok(Command::new("mkfs.xfs")
        .args(["-q", "-m", "reflink=1"])
        .arg(&img))
        && ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&dir)))
    .then_some(dir)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("include_copy: bench");
        return;
    }
    let files = env_num("VT_BENCH_FILES", 20_000);
    let mb = env_num("VT_BENCH_MB", 1024);
    let rounds = env_num("VT_BENCH_ROUNDS", 3);
    let holder = tempfile::Builder::new()
        .prefix("vt-bench-include-")
        .tempdir()
        .unwrap();
    let root = holder.path().join("ext4/app");
    let t = time(|| make_project(&root, files, mb));
    println!("made {files} files, {mb} MB in {t:.0} ms");
    run(
        "ext4 (the work tree's filesystem)",
        &root,
        &holder.path().join("ext4"),
        false,
        rounds,
    );
    rm(&root);
    let xfs_holder = holder.path().join("xfs");
    if let Some(mnt) = xfs_mount(&xfs_holder, (mb * 3 / 1024).max(2) + 1) {
        // unmounted even when a panic (a closed stdout) ends the run early
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = Command::new("umount").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(mnt.clone());
        let root = mnt.join("app");
        make_project(&root, files, mb);
        run("XFS with reflink (loop mount)", &root, &mnt, true, rounds);
        rm(&root);
    } else {
        println!("\nXFS: skipped (not root, or no mkfs.xfs / loop device)");
    }
}

/// worktrunk's per-file attempt: a reflink (`FICLONE` on Linux), false when it fails.
#[cfg(target_os = "linux")]
fn reflink(from: &Path, to: &Path) -> bool {
    let f = std::fs::File::open(from).unwrap();
    let t = std::fs::File::create(to).unwrap();
    rustix::fs::ioctl_ficlone(&t, &f).is_ok()
}

/// Elsewhere this benchmark measures the copy alone.
#[cfg(not(target_os = "linux"))]
fn reflink(_from: &Path, _to: &Path) -> bool {
    false
}
