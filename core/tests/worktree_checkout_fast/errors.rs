//! Errors of the fast checkout and what they leave: a path in the way, a failed checkout, a registration cut short, a branch checked out elsewhere; each leaves nothing, and the retry succeeds.

use super::*;

#[test]
fn a_path_in_the_way_is_a_clean_error_with_nothing_left() {
    let (_tmp, root) = repo();
    git(&root, &["branch", "blocked", "main"]);
    let parent = root.join(".worktrees");
    std::fs::create_dir_all(&parent).unwrap();
    write(&parent.join("blocked"), b"not mine\n");
    let err = block_on(git::add_worktree(
        &root,
        &parent.join("blocked"),
        "blocked",
        2,
    ))
    .unwrap_err();
    assert_eq!(err.code(), "GIT", "{err}");
    assert_eq!(
        std::fs::read(parent.join("blocked")).unwrap(),
        b"not mine\n"
    );
    assert!(
        registrations_on_disk(&root).is_empty(),
        "{:?}",
        registrations_on_disk(&root)
    );
    assert!(!git(&root, &["worktree", "list"]).contains("blocked"));
}

#[test]
fn a_failed_checkout_leaves_nothing_and_the_retry_succeeds() {
    let (_tmp, root) = repo();
    // a blob the checkout needs is missing from the object database
    let blob = git(&root, &["rev-parse", "main:src/d3/e3/f3.js"]);
    let blob = blob.trim();
    let obj = root.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    let saved = std::fs::read(&obj).unwrap();
    std::fs::remove_file(&obj).unwrap();
    let err = add(&root, "broken").unwrap_err();
    assert!(err.to_string().contains("f3.js"), "{err}");
    assert!(!root.join(".worktrees/broken").exists());
    assert!(registrations_on_disk(&root).is_empty());
    std::fs::write(&obj, saved).unwrap();
    let parent = root.join(".worktrees");
    let added = block_on(git::add_worktree(
        &root,
        &parent.join("broken"),
        "broken",
        2,
    ))
    .unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel);
    assert_eq!(git(&parent.join("broken"), &["status", "--porcelain"]), "");
}

#[test]
fn a_registration_cut_short_while_built_aside_is_removed_by_the_next_one() {
    let (_tmp, root) = repo();
    let parent = root.join(".worktrees");
    // what `register` leaves when killed while building the registration aside (before the
    // rename that publishes it): git sees nothing of it
    let common = std::fs::canonicalize(root.join(".git")).unwrap();
    let aside = common.join("vibetrees-claiming/cut");
    std::fs::create_dir_all(&aside).unwrap();
    std::fs::write(aside.join("locked"), "vibetrees: creating (pid 1)\n").unwrap();
    std::fs::write(aside.join("HEAD"), "ref: refs/heads/cut\n").unwrap();
    assert!(!git(&root, &["worktree", "list"]).contains("cut"));
    // another tool's registration without a gitdir: left alone
    let theirs = common.join("worktrees/theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("locked"), "").unwrap();
    let added = add(&root, "cut").unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel);
    assert!(!common.join("vibetrees-claiming").exists());
    assert_eq!(
        std::fs::read_to_string(common.join("worktrees/cut/gitdir")).unwrap(),
        format!(
            "{}/.git\n",
            std::fs::canonicalize(parent.join("cut")).unwrap().display()
        )
    );
    assert!(theirs.join("locked").exists());
    assert_eq!(git(&parent.join("cut"), &["status", "--porcelain"]), "");
}

#[test]
fn a_branch_checked_out_elsewhere_is_refused_like_the_cli_with_nothing_left() {
    let (_tmp, root) = repo();
    let parent = root.join(".worktrees");
    std::fs::create_dir_all(&parent).unwrap();
    // `main` is the main worktree's branch; `taken` is checked out in a linked worktree
    git(&root, &["branch", "taken", "main"]);
    add(&root, "first").unwrap();
    git(&parent.join("first"), &["checkout", "-q", "taken"]);
    for (branch, at) in [("main", root.clone()), ("taken", parent.join("first"))] {
        let path = parent.join(format!("again-{branch}"));
        let err = block_on(git::add_worktree(&root, &path, branch, 2)).unwrap_err();
        assert_eq!(err.code(), "GIT", "{err}");
        let text = err.to_string();
        assert!(text.contains("already checked out"), "{text}");
        assert!(
            text.contains(&*std::fs::canonicalize(&at).unwrap().to_string_lossy())
                || text.contains(&*at.to_string_lossy()),
            "{text}"
        );
        assert!(!path.exists());
    }
    assert_eq!(registrations_on_disk(&root), ["first"]);
}

#[test]
fn a_registration_cut_short_inside_libgit2_is_debris_for_the_next_creation() {
    use vibetrees_core::worktree::checkout;
    let p = worktree_support::project(None);
    git(&p.root, &["branch", "cut", "main"]);
    let path = p.root.join(".worktrees/cut");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let repo = git::open(&p.root).unwrap();
    let name = checkout::register(&repo, &path, "cut", "x").unwrap();
    // as git_worktree_add leaves it before `register` rewrites it: empty lock, absolute commondir
    let gitdir = p.root.join(".git/worktrees").join(&name);
    std::fs::write(gitdir.join("locked"), "").unwrap();
    let common = std::fs::canonicalize(p.root.join(".git")).unwrap();
    std::fs::write(gitdir.join("commondir"), format!("{}/\n", common.display())).unwrap();
    // and our own marker of the registration it was writing
    std::fs::write(common.join("vibetrees-registering"), format!("{name}\n")).unwrap();
    let reg = git::registration_at(&repo, &path).unwrap().unwrap();
    assert!(reg.half_made(), "{reg:?}");

    let m = vibetrees_core::worktree::WorktreeManager::new(p.options()).unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized("cut", "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let vibetrees_core::worktree::CreateOutcome::Created(w) = out else {
        panic!("a half-made worktree was reported as existing")
    };
    assert_eq!(w.steps["git-worktree-add"]["checkout"], "git2-parallel");
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&path, &["ls-files"]).lines().count(),
        git(&p.root, &["ls-files"]).lines().count()
    );
}
