//! gitoxide's checkout (`gix-worktree-state`) against ours, the git CLI's and libgit2's, on the
//! worktree_create benchmark's project (issue 12, "Measure before cutting"):
//!
//! `cargo bench -p vibetrees-core --features bench-gix --bench checkout_gix [-- --rounds N --files N --no-settle --keep --ours-only]`
//!
//! The project is [`SampleProject::web_app`]'s tracked tree (4,000 generated source files plus
//! package.json, its lockfile, README and .gitignore; no node_modules, which plays no part in a
//! checkout), first with every object loose (as freshly committed), then after
//! `git repack -adq` (as cloned). Each round runs every contender once, in turn (A B C ...,
//! A B C ...), each into a new folder, and nothing is deleted before the end (BENCHMARKING.md: this
//! machine's ext4 does not reuse freshly freed inodes). Prints medians, ranges and the ratio of each
//! median to `git worktree add`'s and to ours.
//!
//! Contenders:
//! - whole worktree adds: `git worktree add`; libgit2's `git_worktree_add` (its own checkout);
//!   ours, `git::add_worktree_git2` (libgit2 registration, our checkout, index, files beside HEAD:
//!   what creations use), 2 threads;
//! - the checkout alone, files plus index, no registration: ours (`checkout::checkout_tree` +
//!   `checkout::write_index`) and gix (`gix::open`, the index built from the tree,
//!   `gix_worktree_state::checkout` with `destination_is_initially_empty`, the index written), each
//!   with 2 threads and with 1.
//!
//! Once per object layout, outside the timings, gix's files are compared with ours, byte for byte.
//! `--ours-only` runs only `git worktree add` and ours (with 2 threads), to compare two builds of
//! ours by their ratios to the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use vibetrees_core::sample_project::SampleProject;
use vibetrees_core::worktree::{checkout, git};

struct Args {
    rounds: usize,
    files: usize,
    settle: bool,
    keep: bool,
    /// Only `git worktree add` and ours (to compare two builds of ours, run after one another).
    ours_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 7,
        files: 4000,
        settle: true,
        keep: false,
        ours_only: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        match v[i].as_str() {
            "--rounds" => {
                a.rounds = v[i + 1].parse().expect("--rounds N");
                i += 1;
            }
            "--files" => {
                a.files = v[i + 1].parse().expect("--files N");
                i += 1;
            }
            "--no-settle" => a.settle = false,
            "--keep" => a.keep = true,
            "--ours-only" => a.ours_only = true,
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    a
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// BENCHMARKING.md's ext4 trap: a file system without a journal skips inodes freed in the last
/// ~60 s, and looking for others dominates file creation. `sync`, then 65 s.
fn settle() {
    println!("settling: sync, then 65 s for ext4 to reuse the freed inodes (--no-settle skips)");
    run("sync", &[], Path::new("/"));
    std::thread::sleep(std::time::Duration::from_secs(65));
}

/// CPU time used so far by this process (all threads) and its waited-for children (the git
/// CLI), user + system, in ms: less swayed than wall time by other work on the machine.
fn cpu_ms() -> f64 {
    let t = |who| {
        // SAFETY: getrusage writes into the struct we pass.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let tv = |v: libc::timeval| v.tv_sec as f64 * 1e3 + v.tv_usec as f64 / 1e3;
        tv(u.ru_utime) + tv(u.ru_stime)
    };
    t(libc::RUSAGE_SELF) + t(libc::RUSAGE_CHILDREN)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// One way to check a tree out.
#[derive(Clone, Copy)]
enum Contender {
    /// `git worktree add -q -- <path> <branch>`.
    Cli,
    /// libgit2's `git_worktree_add` with its own checkout.
    Libgit2,
    /// `git::add_worktree_git2`: libgit2 registration + our checkout + index, N threads.
    OursAdd(usize),
    /// `checkout::checkout_tree` + `checkout::write_index` into a new folder, N threads.
    OursFiles(usize),
    /// gix: open, index from the tree, `gix_worktree_state::checkout`, index written, N threads.
    GixFiles(usize),
}

const CONTENDERS: &[(&str, Contender)] = &[
    ("git worktree add", Contender::Cli),
    ("libgit2 worktree add (its checkout)", Contender::Libgit2),
    (
        "ours: git::add_worktree_git2, 2 threads",
        Contender::OursAdd(2),
    ),
    ("ours: files + index, 2 threads", Contender::OursFiles(2)),
    ("gix: files + index, 2 threads", Contender::GixFiles(2)),
    ("ours: files + index, 1 thread", Contender::OursFiles(1)),
    ("gix: files + index, 1 thread", Contender::GixFiles(1)),
];

/// gitoxide's checkout of `tree` into the existing, empty folder `dest`, as `gix clone` does
/// its main worktree (`gix::clone::PrepareCheckout::main_worktree`), its index written to
/// `index_path`. Returns the number of files written.
fn gix_checkout(
    root: &Path,
    tree: git2::Oid,
    dest: &Path,
    index_path: &Path,
    threads: usize,
) -> usize {
    let repo = gix::open(root).expect("gix opens the repository");
    let id = gix::ObjectId::from_bytes_or_panic(tree.as_bytes());
    let state = gix::index::State::from_tree(&id, &repo.objects, Default::default())
        .expect("gix builds the index from the tree");
    let mut index = gix::index::File::from_state(state, index_path.to_path_buf());
    let mut opts = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .expect("checkout options");
    opts.destination_is_initially_empty = true;
    opts.thread_limit = Some(threads);
    let objects = repo.objects.clone().into_arc().expect("thread-safe odb");
    let interrupt = AtomicBool::new(false);
    let outcome = gix::worktree::state::checkout(
        &mut index,
        dest,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        &interrupt,
        opts,
    )
    .expect("gix checkout");
    assert!(
        outcome.errors.is_empty() && outcome.collisions.is_empty(),
        "gix: {:?} {:?}",
        outcome.errors,
        outcome.collisions
    );
    index
        .write(Default::default(), Default::default())
        .expect("gix writes the index");
    outcome.files_updated
}

/// Every file under `dir` (but `.git`) with its content or link target, sorted.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if rel == Path::new(".git") {
                continue;
            }
            if t.is_dir() {
                stack.push(p);
            } else if t.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.push((rel, target.into_os_string().into_encoded_bytes()));
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn main() {
    let a = args();
    let tmp = tempfile::Builder::new()
        .prefix("vt-bench-gix-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("bench-app");
    std::fs::create_dir_all(&root).unwrap();
    // node_modules plays no part in a checkout: generated empty, no npm
    let sample = SampleProject {
        source_files: a.files,
        offline: true,
        generated_packages: 0,
        ..SampleProject::web_app()
    };
    sample.build(&root, &|line| eprintln!("{line}")).unwrap();
    let repo = git2::Repository::open(&root).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let tree = head.tree_id();
    let files = repo.index().unwrap().len();
    println!("project: {} ({files} tracked files)", root.display());
    if a.settle {
        println!(
            "settling: sync, then 65 s for ext4 to reuse the freed inodes (--no-settle skips)"
        );
        run("sync", &[], Path::new("/"));
        std::thread::sleep(std::time::Duration::from_secs(65));
    }
    let base = tmp.path().join("out");
    std::fs::create_dir_all(&base).unwrap();
    let mut n = 0usize;
    for packed in [false, true] {
        if packed {
            run("git", &["repack", "-adq"], &root);
            run("git", &["prune-packed"], &root);
            // prune-packed deleted every loose object: thousands of freshly freed inodes
            if a.settle {
                settle();
            }
        }
        let layout = if packed { "packed" } else { "loose" };
        let mut times = vec![Vec::new(); CONTENDERS.len()];
        let mut cpu = vec![Vec::new(); CONTENDERS.len()];
        let mut compared = false;
        for _ in 0..a.rounds {
            let mut ours_dir = None;
            let mut gix_dir = None;
            for (i, (_, how)) in CONTENDERS.iter().enumerate() {
                let ours = matches!(
                    how,
                    Contender::Cli | Contender::OursAdd(2) | Contender::OursFiles(2)
                );
                if a.ours_only && !ours {
                    continue;
                }
                n += 1;
                let name = format!("co-{n}");
                let path = base.join(&name);
                let (t, c) = (Instant::now(), cpu_ms());
                match *how {
                    Contender::Cli => {
                        repo.branch(&name, &head, false).unwrap();
                        run(
                            "git",
                            &[
                                "worktree",
                                "add",
                                "-q",
                                "--",
                                &path.to_string_lossy(),
                                &name,
                            ],
                            &root,
                        );
                    }
                    Contender::Libgit2 => {
                        let branch = repo.branch(&name, &head, false).unwrap();
                        let mut o = git2::WorktreeAddOptions::new();
                        o.reference(Some(branch.get()));
                        repo.worktree(&name, &path, Some(&o)).unwrap();
                    }
                    Contender::OursAdd(threads) => {
                        repo.branch(&name, &head, false).unwrap();
                        let why = git::add_worktree_git2(
                            &root,
                            &path,
                            &name,
                            "bench",
                            threads,
                            std::path::Path::new("git"),
                            &mut Default::default(),
                        )
                        .unwrap();
                        assert!(why.is_none(), "ours refused: {why:?}");
                    }
                    Contender::OursFiles(threads) => {
                        std::fs::create_dir(&path).unwrap();
                        let written =
                            checkout::checkout_tree(repo.commondir(), tree, &path, threads)
                                .unwrap_or_else(|e| panic!("{e:?}"));
                        checkout::write_index(&base.join(format!("{name}.index")), &written)
                            .unwrap();
                        ours_dir.get_or_insert(path.clone());
                    }
                    Contender::GixFiles(threads) => {
                        std::fs::create_dir(&path).unwrap();
                        let written = gix_checkout(
                            &root,
                            tree,
                            &path,
                            &base.join(format!("{name}.index")),
                            threads,
                        );
                        assert_eq!(written, files);
                        gix_dir.get_or_insert(path.clone());
                    }
                }
                times[i].push(t.elapsed().as_secs_f64() * 1e3);
                cpu[i].push(cpu_ms() - c);
            }
            if !compared && let (Some(o), Some(g)) = (&ours_dir, &gix_dir) {
                let (o, g) = (contents(o), contents(g));
                assert_eq!(o.len(), files);
                assert!(o == g, "gix wrote other files than ours");
                compared = true;
            }
        }
        println!(
            "\ncheckout of {files} files, {layout} objects, {} rounds (alternating): median [min-max], / git worktree add, / ours; CPU time (user + system) median",
            a.rounds
        );
        let cli = median(&times[0]);
        for (((label, how), t), c) in CONTENDERS.iter().zip(&times).zip(&cpu) {
            if t.is_empty() {
                continue;
            }
            let (lo, hi) = t
                .iter()
                .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
            let m = median(t);
            // the matching "ours" for a ratio: same kind of work, same threads
            let ours = match how {
                Contender::GixFiles(th) => CONTENDERS
                    .iter()
                    .position(|(_, c)| matches!(c, Contender::OursFiles(o) if o == th)),
                Contender::Cli | Contender::Libgit2 => CONTENDERS
                    .iter()
                    .position(|(_, c)| matches!(c, Contender::OursAdd(2))),
                _ => None,
            };
            let vs_ours = ours
                .filter(|&j| !times[j].is_empty())
                .map(|j| format!("  {:.2}x ours", m / median(&times[j])))
                .unwrap_or_default();
            println!(
                "  {label:<42} {m:>8.1} ms [{lo:.0}-{hi:.0}]  {:.2}x CLI{vs_ours}   cpu {:.0} ms",
                m / cli,
                median(c)
            );
        }
    }
    if a.keep {
        println!(
            "kept {} (delete it at a quiet moment)",
            tmp.keep().display()
        );
    }
}
