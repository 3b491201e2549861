//! The `checkout: "cli"` setting: the checkout that is not the default stays reachable and
//! tested; the default (ours) is tested in worktree_checkout_fast.rs.

mod worktree_support;

use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CheckoutChoice, CreateOutcome, WorktreeManager, WorktreeOptions};
use worktree_support::*;

/// The project's options with the git CLI's checkout.
fn cli_options(p: &Project) -> WorktreeOptions {
    let mut opts = p.options();
    opts.settings.checkout = CheckoutChoice::GitCli;
    opts
}

#[test]
fn the_cli_checkout_makes_the_same_worktree_through_the_manager() {
    let p = project(None);
    p.warm_cache();
    let m = WorktreeManager::new(cli_options(&p)).unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized("via-cli", "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let CreateOutcome::Created(w) = out else {
        panic!("expected a new worktree")
    };
    assert_eq!(w.steps["git-worktree-add"]["checkout"], "git-cli");
    assert!(w.steps["git-worktree-add"]["checkoutCliBecause"].is_null());
    let wt = p.root.join(".worktrees/via-cli");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "via-cli"
    );
    assert_eq!(
        git(&wt, &["ls-files", "-s"]).lines().count(),
        git(&p.root, &["ls-tree", "-r", "main"]).lines().count()
    );
    assert!(
        !p.worktree_list().contains("locked"),
        "{}",
        p.worktree_list()
    );
}

#[test]
fn a_cli_checkout_that_fails_after_registering_is_rolled_back_and_can_be_retried() {
    use std::os::unix::fs::PermissionsExt;
    let p = project(None);
    p.warm_cache();
    // `git worktree add` registers and checks out, then fails on its post-checkout hook
    let hook = p.root.join(".git/hooks/post-checkout");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho 'hook says no' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = WorktreeManager::new(cli_options(&p)).unwrap();
    let e = block_on(m.create_worktree_optimized("hooked", "main")).unwrap_err();
    assert!(e.to_string().contains("hook says no"), "{e}");
    block_on(m.wait_background());
    let list = p.worktree_list();
    assert!(
        !list.contains("/hooked"),
        "registration left behind:\n{list}"
    );
    assert!(!p.root.join(".worktrees/hooked").exists());
    // the same manager (same process) can try again once the hook is fixed
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let out = block_on(m.create_worktree_optimized("hooked", "main")).unwrap();
    assert!(matches!(out, CreateOutcome::Created(_)));
    assert_eq!(
        git(
            &p.root.join(".worktrees/hooked"),
            &["status", "--porcelain"]
        ),
        ""
    );
}
