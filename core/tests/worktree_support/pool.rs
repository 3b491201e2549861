//! Helpers of the pool tests (`worktree_pool*.rs`): a creation that waits for the background
//! refill, a project big enough to be caught mid-way, and the comparison of a claimed worktree
//! with a fresh creation of the same commit.

use super::{Project, git};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CreateOutcome, CreatedWorktree, WorktreeManager};

/// Commits `n` small source files (`src/big<k>/f<i>.js`, in 30 folders) on the project's
/// branch: enough files that making or updating a spare takes long enough to be caught mid-way.
pub fn commit_many_files(p: &Project, n: usize) {
    for i in 0..n {
        let f = p.root.join(format!("src/big{}/f{i}.js", i % 30));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, format!("export const x{i} = {i};\n")).unwrap();
    }
    git(&p.root, &["add", "-A"]);
    git(&p.root, &["commit", "-q", "-m", "many files"]);
}

/// The new worktree of `o` (panics on any other outcome).
pub fn created(o: CreateOutcome) -> Box<CreatedWorktree> {
    match o {
        CreateOutcome::Created(w) => w,
        other => panic!("expected a new worktree, got {other:?}"),
    }
}

/// Creates `branch` from `from`, then waits for the background jobs (the refill among them).
pub fn create_settled(m: &WorktreeManager, branch: &str, from: &str) -> Box<CreatedWorktree> {
    created(
        block_on(async {
            let r = m.create_worktree_optimized(branch, from).await;
            m.wait_background().await;
            r
        })
        .unwrap(),
    )
}

/// Every entry under `dir` but `.git`, `.env` and `.claude` (relative path -> what it is: a
/// folder, a link and its target, or a file with its executable bit and bytes), recursively,
/// links never followed.
pub fn entries(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            // the registration's link and what differs by design (ports, names)
            if matches!(rel.as_str(), ".git" | ".env" | ".claude") {
                continue;
            }
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.push((rel, format!("-> {}", target.display())));
            } else if m.is_dir() {
                out.push((format!("{rel}/"), String::new()));
                walk(base, &p, out);
            } else {
                let exec = m.permissions().mode() & 0o111 != 0;
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                out.push((rel, format!("exec={exec} {text}")));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The index's cache-tree extension (`TREE`), byte for byte.
pub fn tree_ext(index: &Path) -> Vec<u8> {
    let i = std::fs::read(index).unwrap();
    let body = &i[..i.len() - 20];
    let at = body
        .windows(4)
        .rposition(|w| w == b"TREE")
        .expect("a TREE extension");
    body[at..].to_vec()
}

/// The registration folder of the worktree at `w` (named after its folder).
pub fn registration(p: &Project, w: &Path) -> PathBuf {
    p.root.join(".git/worktrees").join(w.file_name().unwrap())
}

/// `claimed` and `fresh` (made from the same commit) as git and a reader see them: both clean,
/// no spare marker left, the same index entries, cache-tree and tree, the same files, and the
/// repository passes `git fsck`.
pub fn assert_indistinguishable(p: &Project, claimed: &Path, fresh: &Path) {
    for path in [claimed, fresh] {
        let shown = path.display();
        assert_eq!(git(path, &["status", "--porcelain"]), "", "{shown}");
        assert_eq!(git(path, &["diff", "--cached"]), "", "{shown}");
        assert!(!path.join(".vibetrees-spare").exists(), "{shown}");
    }
    assert_eq!(
        git(claimed, &["ls-files", "-s"]),
        git(fresh, &["ls-files", "-s"]),
        "the index entries"
    );
    let (ci, fi) = (
        registration(p, claimed).join("index"),
        registration(p, fresh).join("index"),
    );
    let header = |i: &Path| std::fs::read(i).unwrap()[..12].to_vec();
    assert_eq!(header(&ci), header(&fi), "the index header");
    assert_eq!(tree_ext(&ci), tree_ext(&fi), "the cache-tree");
    assert_eq!(
        git(claimed, &["write-tree"]),
        git(fresh, &["write-tree"]),
        "the index's tree"
    );
    assert_eq!(entries(claimed), entries(fresh), "the files");
    git(&p.root, &["fsck", "--no-progress"]);
}
