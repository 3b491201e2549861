//! The checkout's limits, as git's (issue 13): trees deeper than `core.maxTreeDepth` are refused
//! before anything is made of them, and blobs bigger than `core.bigFileThreshold` are streamed
//! (loose ones by our reader, packed ones by `git cat-file`), byte for byte what git writes.
//!
//! Its creations run git through a recording wrapper (the `gitProgram` setting,
//! [`git::AddOptions::git_program`]) to see which git commands the checkout ran.

mod worktree_support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::checkout::CheckoutMethod;
use vibetrees_core::worktree::git;
use worktree_support::{git, setup};

/// The git wrapper and its log (one line of arguments per run).
fn git_wrapper() -> &'static (PathBuf, PathBuf) {
    static WRAPPER: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    WRAPPER.get_or_init(|| {
        let home = setup();
        let wrapper = home.join("git-recording");
        let log = home.join("git-runs.log");
        let real = String::from_utf8(
            std::process::Command::new("sh")
                .args(["-c", "command -v git"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.trim()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        (wrapper, log)
    })
}

/// The log of the git wrapper.
fn git_log() -> &'static Path {
    &git_wrapper().1
}

/// A repository on `main` with one file.
fn repo() -> (tempfile::TempDir, PathBuf) {
    git_log();
    let tmp = tempfile::Builder::new()
        .prefix("vt-co-limits-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("app");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("README.md"), "# app\n").unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    (tmp, root)
}

/// Branch `branch`: main's tree plus `file` at the end of a chain of `folders` nested folders
/// (`d/d/.../file`, its deepest folder `folders` levels down), made with git2 (no files on disk).
fn deep_branch(root: &Path, branch: &str, folders: usize) {
    let repo = git2::Repository::open(root).unwrap();
    let blob = repo.blob(b"deep\n").unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    tb.insert("file", blob, 0o100644).unwrap();
    let mut tree = tb.write().unwrap();
    for _ in 1..folders {
        let mut tb = repo.treebuilder(None).unwrap();
        tb.insert("d", tree, 0o040000).unwrap();
        tree = tb.write().unwrap();
    }
    let main = repo.head().unwrap().peel_to_commit().unwrap();
    let mut tb = repo.treebuilder(Some(&main.tree().unwrap())).unwrap();
    tb.insert("d", tree, 0o040000).unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    let c = repo
        .commit(None, &sig, &sig, "deep", &tree, &[&main])
        .unwrap();
    repo.branch(branch, &repo.find_commit(c).unwrap(), false)
        .unwrap();
}

fn add(root: &Path, branch: &str) -> vibetrees_core::Result<git::AddedWorktree> {
    let parent = root.join(".worktrees");
    std::fs::create_dir_all(&parent).unwrap();
    let mut opts = git::AddOptions::defaults(2);
    opts.git_program = git_wrapper().0.clone();
    block_on(git::add_worktree_with(
        root,
        &parent.join(branch),
        branch,
        &opts,
    ))
}

/// `git worktree add` of `branch` into `<root>/../cli-<branch>`: whether git accepted it.
fn cli_accepts(root: &Path, branch: &str) -> bool {
    let dest = root.parent().unwrap().join(format!("cli-{branch}"));
    std::process::Command::new("git")
        .args(["worktree", "add", "-q", "--detach"])
        .arg(&dest)
        .arg(branch)
        .current_dir(root)
        .output()
        .unwrap()
        .status
        .success()
}

fn assert_nothing_left(root: &Path, name: &str) {
    assert!(!root.join(".worktrees").join(name).exists(), "{name} left");
    assert!(
        !root.join(".git/worktrees").join(name).exists(),
        "registration of {name} left"
    );
}

#[test]
fn a_tree_deeper_than_git_allows_is_refused_as_git_refuses_it() {
    let (_tmp, root) = repo();
    // 2,049 nested folders: git's default core.maxTreeDepth is 2048 (levels below the top)
    deep_branch(&root, "deep", 2049);
    let err = add(&root, "deep").unwrap_err();
    assert_eq!(err.code(), "GIT", "{err}");
    assert!(
        err.to_string().contains("core.maxTreeDepth (2048)"),
        "{err}"
    );
    assert_nothing_left(&root, "deep");
    assert!(!cli_accepts(&root, "deep"), "git itself refuses it too");
}

#[test]
fn core_max_tree_depth_is_honoured_at_its_boundary_like_the_cli() {
    let (_tmp, root) = repo();
    git(&root, &["config", "core.maxTreeDepth", "5"]);
    deep_branch(&root, "five", 5); // d/d/d/d/d/file: the deepest folder 5 levels down
    deep_branch(&root, "six", 6); // 6 levels down
    let five = add(&root, "five").unwrap();
    assert_eq!(five.method, CheckoutMethod::Git2Parallel);
    assert_eq!(
        std::fs::read_to_string(root.join(".worktrees/five/d/d/d/d/d/file")).unwrap(),
        "deep\n"
    );
    assert!(cli_accepts(&root, "five"));
    let err = add(&root, "six").unwrap_err();
    assert!(err.to_string().contains("core.maxTreeDepth (5)"), "{err}");
    assert_nothing_left(&root, "six");
    assert!(!cli_accepts(&root, "six"));
}

/// Bytes that do not compress to nothing: 1 MiB of pseudo-random bytes, 1 MiB of zeros (a hole
/// when the blob is streamed sparse), then a tail.
fn big_content() -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut v: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    v.extend(std::iter::repeat_n(0u8, 1 << 20));
    v.extend_from_slice(b"the end\n");
    v
}

#[test]
fn blobs_above_core_big_file_threshold_are_streamed_loose_and_packed() {
    let (_tmp, root) = repo();
    let content = big_content();
    std::fs::write(root.join("big.bin"), &content).unwrap();
    git(&root, &["add", "big.bin"]);
    git(&root, &["commit", "-q", "-m", "big"]);
    // then a 1 MiB threshold: the 2 MiB file is a big file, as a 600 MiB one is by default (set
    // after `git add`, which would have written a big file straight into a pack)
    git(&root, &["config", "core.bigFileThreshold", "1m"]);
    let id = git(&root, &["rev-parse", "main:big.bin"]);
    let id = id.trim();
    let cat_file = format!("cat-file blob {id}");
    let runs = || std::fs::read_to_string(git_log()).unwrap_or_default();

    // loose: our reader streams it
    assert!(
        root.join(".git/objects")
            .join(&id[..2])
            .join(&id[2..])
            .exists(),
        "loose"
    );
    git(&root, &["branch", "loose", "main"]);
    let added = add(&root, "loose").unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel);
    let wt = root.join(".worktrees/loose");
    assert_eq!(std::fs::read(wt.join("big.bin")).unwrap(), content);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert!(!runs().contains(&cat_file), "{}", runs());

    // packed: libgit2 would read it whole; git cat-file streams it into the file
    git(&root, &["repack", "-adq"]);
    git(&root, &["prune-packed"]);
    git(&root, &["branch", "packed", "main"]);
    let added = add(&root, "packed").unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel);
    let wt = root.join(".worktrees/packed");
    assert_eq!(std::fs::read(wt.join("big.bin")).unwrap(), content);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(git(&wt, &["diff-files", "--name-only"]), "");
    assert!(runs().contains(&cat_file), "{}", runs());
}
