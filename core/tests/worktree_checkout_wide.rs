//! The checkout's folder-by-folder work stealing on a wide and deep tree, with few file
//! descriptors allowed: folders waiting to be written hold their parent's fd, not their own, so
//! 2,000 sibling folders do not need 2,000 open fds. Its own test binary: it lowers the process's
//! `RLIMIT_NOFILE`, which would disturb tests running beside it.

mod worktree_support;

use std::path::Path;
use vibetrees_core::worktree::checkout::{cache_tree_extension, checkout_tree};
use vibetrees_core::worktree::git;
use worktree_support::{git, setup};

#[test]
fn two_thousand_sibling_folders_and_a_deep_chain_check_out_with_128_fds() {
    setup();
    let tmp = tempfile::Builder::new()
        .prefix("vt-co-wide-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("app");
    for i in 0..2000 {
        let d = root.join(format!("wide/d{i:04}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f.txt"), format!("{i}\n")).unwrap();
    }
    let mut deep = root.join("deep");
    for level in 0..100 {
        deep = deep.join(format!("l{level}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom.txt"), "bottom\n").unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "wide and deep"]);

    let repo = git::open(&root).unwrap();
    let tree = repo.revparse_single("main^{tree}").unwrap().id();
    let dest = tmp.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    let limit = libc::rlimit {
        rlim_cur: 128,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/setrlimit on structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let limit = libc::rlimit {
            rlim_max: old.rlim_max,
            ..limit
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    let written = checkout_tree(repo.commondir(), tree, &dest, 2);
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    let written = written.unwrap_or_else(|e| panic!("{e:?}"));

    assert_eq!(written.entries.len(), 2001);
    assert_eq!(
        std::fs::read_to_string(dest.join("wide/d1234/f.txt")).unwrap(),
        "1234\n"
    );
    let bottom = dest
        .join(deep.strip_prefix(&root).unwrap())
        .join("bottom.txt");
    assert_eq!(std::fs::read_to_string(bottom).unwrap(), "bottom\n");
    // every folder was recorded once: the cache-tree covers the whole tree
    assert_eq!(written.trees.len(), 1 + 1 + 2000 + 1 + 100);
    assert!(cache_tree_extension(&written.trees).is_some());
    assert_eq!(list(&dest).len(), list(&root).len() - 1, "all but .git");
}

/// Relative paths of everything under `dir` (depth-first).
fn list(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() && e.file_name() != ".git" {
                stack.push(p);
            }
        }
    }
    out
}
