//! `git::registration_at` on real registrations made by the git CLI: found through the
//! worktree's own `.git` file when that names a registration pointing back at it, and by the
//! scan of every registration when it does not (a `.git` file naming another worktree's, a
//! missing one), never the wrong one.

mod worktree_support;

use vibetrees_core::worktree::git;
use worktree_support::*;

#[test]
fn a_registration_is_found_by_its_own_dot_git_and_never_taken_from_a_wrong_one() {
    let p = project(None);
    let (a, b) = (p.root.join(".worktrees/a"), p.root.join(".worktrees/b"));
    for (name, path) in [("a", &a), ("b", &b)] {
        git(
            &p.root,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                name,
                "--",
                &path.to_string_lossy(),
                "main",
            ],
        );
    }
    let repo = git::open(&p.root).unwrap();
    let found = |path: &std::path::Path| git::registration_at(&repo, path).unwrap();
    assert_eq!(found(&a).unwrap().name, "a");
    assert_eq!(found(&b).unwrap().name, "b");
    // a's `.git` names b's registration, which points at b: the scan finds a's own
    let b_dot_git = std::fs::read_to_string(b.join(".git")).unwrap();
    std::fs::write(a.join(".git"), &b_dot_git).unwrap();
    let r = found(&a).unwrap();
    assert_eq!((r.name.as_str(), r.branch.as_deref()), ("a", Some("a")));
    // no `.git` at all (a folder deleted by hand): still found by the scan
    std::fs::remove_file(a.join(".git")).unwrap();
    let r = found(&a).unwrap();
    assert_eq!(r.name, "a");
    assert!(!r.folder_exists);
    // a folder nobody registered
    assert!(found(&p.root.join(".worktrees/c")).is_none());
}
