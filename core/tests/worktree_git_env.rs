//! Git CLI calls never follow repository-location variables of the host's environment
//! (`GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE`, ...): a server started from a git hook, or a
//! shell with a stray `GIT_DIR`, creates the worktree in the project it was asked for and
//! touches no other repository. Real git, the real CLI.

mod worktree_support;

use std::process::Command;
use worktree_support::*;

#[test]
fn git_location_variables_of_the_host_do_not_redirect_the_git_cli() {
    let p = project(None);
    let decoy = tempfile::tempdir().unwrap();
    git(decoy.path(), &["init", "-q", "-b", "main"]);
    let decoy_git = decoy.path().join(".git");
    let decoy_index = decoy.path().join("stray-index");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args([
            "create",
            "git-env",
            "--checkout",
            "cli",
            "--runtime",
            "none",
            "--json",
            "--cache-dir",
        ])
        .arg(&p.cache_dir)
        .arg("--repo")
        .arg(&p.root)
        .env("HOME", home.path())
        .env("GIT_DIR", &decoy_git)
        .env("GIT_COMMON_DIR", &decoy_git)
        .env("GIT_WORK_TREE", decoy.path())
        .env("GIT_INDEX_FILE", &decoy_index)
        .env("GIT_OBJECT_DIRECTORY", decoy_git.join("objects"))
        .env("GIT_NAMESPACE", "elsewhere")
        .env("GIT_CEILING_DIRECTORIES", "/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let wt = p.root.join(".worktrees/git-env");
    assert!(wt.join("README.md").is_file(), "{stdout}\n{stderr}");
    assert!(
        p.worktree_list().contains("branch refs/heads/git-env"),
        "{}",
        p.worktree_list()
    );
    assert!(!decoy_index.exists(), "no index written for the decoy");
    assert!(
        !decoy_git.join("worktrees").exists(),
        "no worktree registered in the decoy repository"
    );
    assert_eq!(git(decoy.path(), &["branch", "--list"]), "");
}
