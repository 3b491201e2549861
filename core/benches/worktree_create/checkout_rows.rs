//! The checkout-alone rows of the `worktree_create` benchmark (`--checkout`): the git CLI, libgit2
//! and ours side by side, on loose then packed objects, also beside a burnt core.

use super::{median, ms, run};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// One way to add a worktree, for [`checkout_comparison`].
#[derive(Clone, Copy)]
enum Checkout {
    /// `git -c checkout.workers=N worktree add`.
    Cli(usize),
    /// libgit2's `git_worktree_add` with its own checkout.
    Libgit2,
    /// Ours: libgit2 registration + our parallel checkout with N threads.
    Ours(usize),
    /// Ours with libgit2's hash check of every object read turned off (what it would save).
    OursUnverified(usize),
}

/// A second process that burns a core while a contender runs (the restore beside the checkout).
struct Burner(std::process::Child);

impl Burner {
    fn start() -> Self {
        let child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        Burner(child)
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The checkout alone, contenders alternating each round (A B C ..., A B C ...), on the loose
/// objects of the benchmark's project, then again after `git repack -ad` (real clones are
/// packed): the git CLI (1 and 2 checkout workers), libgit2's own worktree add, ours with 1, 2
/// and 3 threads, and, while another process burns a core, ours with 1 and 2 and the CLI.
pub fn checkout_comparison(root: &Path, rounds: usize, tmp: &Path) {
    use vibetrees_core::worktree::{checkout, git};
    let repo = git2::Repository::open(root).unwrap();
    let files = repo.index().unwrap().len();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let base = tmp.join("checkout-cmp");
    std::fs::create_dir_all(&base).unwrap();
    let contenders: &[(&str, Checkout, bool)] = &[
        ("git worktree add", Checkout::Cli(1), false),
        (
            "git -c checkout.workers=2 worktree add",
            Checkout::Cli(2),
            false,
        ),
        (
            "libgit2 worktree add (its checkout)",
            Checkout::Libgit2,
            false,
        ),
        ("ours, 1 thread", Checkout::Ours(1), false),
        ("ours, 2 threads", Checkout::Ours(2), false),
        ("ours, 3 threads", Checkout::Ours(3), false),
        (
            "ours, 2 threads, no hash check",
            Checkout::OursUnverified(2),
            false,
        ),
        ("git worktree add     + core burnt", Checkout::Cli(1), true),
        ("ours, 1 thread       + core burnt", Checkout::Ours(1), true),
        ("ours, 2 threads      + core burnt", Checkout::Ours(2), true),
        ("ours, 3 threads      + core burnt", Checkout::Ours(3), true),
    ];
    let mut n = 0usize;
    for packed in [false, true] {
        if packed {
            run("git", &["repack", "-adq"], root);
        }
        let mut times = vec![Vec::new(); contenders.len()];
        for _ in 0..rounds {
            for (i, (_, how, burn)) in contenders.iter().enumerate() {
                n += 1;
                let name = format!("co-{n}");
                let branch = repo.branch(&name, &head, false).unwrap();
                let path = base.join(&name);
                let _burner = burn.then(Burner::start);
                let t = Instant::now();
                match *how {
                    Checkout::Cli(w) => run(
                        "git",
                        &[
                            "-c",
                            &format!("checkout.workers={w}"),
                            "worktree",
                            "add",
                            "-q",
                            "--",
                            &path.to_string_lossy(),
                            &name,
                        ],
                        root,
                    ),
                    Checkout::Libgit2 => {
                        let mut o = git2::WorktreeAddOptions::new();
                        o.reference(Some(branch.get()));
                        repo.worktree(&name, &path, Some(&o)).unwrap();
                    }
                    Checkout::Ours(threads) | Checkout::OursUnverified(threads) => {
                        let unverified = matches!(*how, Checkout::OursUnverified(_));
                        if unverified {
                            git2::opts::strict_hash_verification(false);
                        }
                        let why = git::add_worktree_git2(
                            root,
                            &path,
                            &name,
                            "bench",
                            threads,
                            std::path::Path::new("git"),
                            &mut Default::default(),
                        )
                        .unwrap();
                        if unverified {
                            git2::opts::strict_hash_verification(true);
                        }
                        assert!(why.is_none(), "ours refused: {why:?}");
                    }
                }
                times[i].push(ms(t));
            }
        }
        // where ours spends its time (one more run, 2 threads)
        n += 1;
        let name = format!("co-{n}");
        repo.branch(&name, &head, false).unwrap();
        let path = base.join(&name);
        let t = Instant::now();
        let why = checkout::cli_reason(&repo, head.tree_id()).unwrap();
        assert!(why.is_none());
        let t_checks = ms(t);
        let t = Instant::now();
        let reg = checkout::register(&repo, &path, &name, "bench").unwrap();
        let t_reg = ms(t);
        let t = Instant::now();
        let entries = checkout::checkout_tree(repo.commondir(), head.tree_id(), &path, 2)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let t_files = ms(t);
        let t = Instant::now();
        checkout::write_index(
            &repo.commondir().join("worktrees").join(&reg).join("index"),
            &entries,
        )
        .unwrap();
        let t_index = ms(t);

        let objects = if packed { "packed" } else { "loose" };
        println!(
            "\ncheckout of {files} files, {objects} objects, over {rounds} rounds (alternating): median [min-max], ratio to git worktree add"
        );
        let cli = median(&times[0]);
        for ((label, _, _), t) in contenders.iter().zip(&times) {
            let (lo, hi) = t
                .iter()
                .fold((f64::MAX, 0f64), |(a, b), &x| (a.min(x), b.max(x)));
            println!(
                "  {label:<40} {:>8.1} ms [{lo:.0}-{hi:.0}]  {:.2}x",
                median(t),
                median(t) / cli
            );
        }
        println!(
            "  ours, 2 threads, phases: checks {t_checks:.1} ms, registration (libgit2) {t_reg:.1} ms, files {t_files:.1} ms, index {t_index:.1} ms"
        );
    }
}
