//! The `post-checkout` hook around the fast checkout: run as `git worktree add` runs it, a failure
//! that leaves nothing, and a hook that is not executable, skipped like git skips it.

use super::*;

/// A husky-style hook: `core.hooksPath=.husky/_`, the folder ignored (not in the tree), the hook
/// recording its arguments, folder and `GIT_DIR` into `<worktree>/hook-ran`.
fn husky_hook(root: &Path, body: &str) {
    let hook = root.join(".husky/_/post-checkout");
    write(&root.join(".husky/_/.gitignore"), b"*\n");
    write(&hook, format!("#!/bin/sh\n{body}\n").as_bytes());
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    git(root, &["config", "core.hooksPath", ".husky/_"]);
}

const RECORD: &str = r#"printf '%s|%s|%s|%s\n' "$*" "$(pwd)" "${GIT_DIR-unset}" "${GIT_WORK_TREE-unset}" > hook-ran"#;

#[test]
fn a_post_checkout_hook_runs_as_git_worktree_add_runs_it() {
    let (_tmp, root) = repo();
    husky_hook(&root, RECORD);
    let ours = add(&root, "hooked").unwrap();
    assert_eq!(
        ours.method,
        CheckoutMethod::Git2Parallel,
        "{:?}",
        ours.cli_because
    );
    // the same hook through `git worktree add`
    git(&root, &["branch", "by-cli", "main"]);
    let cli_path = root.join(".worktrees/by-cli");
    block_on(git::add_worktree_cli(&root, &cli_path, "by-cli", 1, "test")).unwrap();
    let read = |name: &str| {
        std::fs::read_to_string(root.join(".worktrees").join(name).join("hook-ran"))
            .unwrap_or_else(|e| panic!("the hook did not run in {name}: {e}"))
    };
    let (ours, cli) = (read("hooked"), read("by-cli"));
    let head = git(&root, &["rev-parse", "main"]);
    let canon = |n: &str| std::fs::canonicalize(root.join(".worktrees").join(n)).unwrap();
    assert_eq!(
        ours.trim(),
        format!(
            "{} {} 1|{}|unset|unset",
            "0".repeat(40),
            head.trim(),
            canon("hooked").display()
        )
    );
    // git's own run differs only by the folder
    assert_eq!(
        ours.replace(&canon("hooked").display().to_string(), "<wt>"),
        cli.replace(&canon("by-cli").display().to_string(), "<wt>")
    );
    // the hook's output file is untracked, as with the CLI; nothing else differs
    assert_eq!(
        git(&canon("hooked"), &["status", "--porcelain"]),
        "?? hook-ran\n"
    );
}

#[test]
fn a_failing_post_checkout_hook_fails_the_add_and_leaves_nothing() {
    let (_tmp, root) = repo();
    husky_hook(&root, "echo 'hook says no' >&2; exit 3");
    let e = add(&root, "refused").unwrap_err();
    assert_eq!(e.code(), "GIT");
    assert!(e.to_string().contains("hook says no"), "{e}");
    assert!(!root.join(".worktrees/refused").exists());
    assert!(
        !git(&root, &["worktree", "list", "--porcelain"]).contains("refused"),
        "registration left behind"
    );
}

#[test]
fn a_hook_that_is_not_executable_is_skipped_like_git_does() {
    let (_tmp, root) = repo();
    husky_hook(&root, RECORD);
    std::fs::set_permissions(
        root.join(".husky/_/post-checkout"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let added = add(&root, "plain").unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel);
    assert!(!root.join(".worktrees/plain/hook-ran").exists());
}
