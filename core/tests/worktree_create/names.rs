//! Branch names and `from`: refused, slugged, or read as a ref, with nothing touched on a refusal.

use super::*;

#[test]
fn bad_names_are_refused_with_nothing_touched() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let branches = p.branches();
    let long = "a".repeat(300);
    for bad in [
        "..",
        ".",
        "",
        "---",
        "a..b",
        ".hidden",
        long.as_str(),
        "日本語",
    ] {
        let err = block_on(m.create_worktree_optimized(bad, "main")).unwrap_err();
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{bad:?}: {err}");
        assert!(
            err.to_string().contains(&format!("{bad:?}")),
            "error does not name the input: {err}"
        );
    }
    assert!(!p.root.join(".worktrees").exists(), "something was created");
    assert_eq!(p.branches(), branches);
    assert!(
        !p.ports_json().exists()
            || !std::fs::read_to_string(p.ports_json())
                .unwrap()
                .contains("..")
    );
    assert_eq!(p.worktree_list().matches("worktree ").count(), 1);
}

#[test]
fn names_with_spaces_upper_case_and_unicode_are_slugged() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    for (input, slug) in [
        ("My Feature", "my-feature"),
        ("UPPER_Case", "upper_case"),
        ("Añadir Login ✓", "a-adir-login"),
        ("fix/Issue #12", "fix-issue-12"),
    ] {
        let out = block_on(m.create_worktree_optimized(input, "main")).unwrap();
        assert_eq!(out.name(), slug, "{input:?}");
        assert!(p.root.join(".worktrees").join(slug).join(".git").exists());
        assert!(p.branches().contains(&slug.to_string()));
    }
}

#[test]
fn from_is_only_ever_a_ref_name() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let cwd_x = std::env::current_dir().unwrap().join("x");
    for from in [
        "no-such-branch",
        "--help",
        "main\"; touch x; \"",
        "-b",
        "main~1",
        "HEAD@{0}",
    ] {
        let err = block_on(m.create_worktree_optimized("feature", from)).unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND", "{from:?}: {err}");
        assert!(err.to_string().contains(&format!("{from:?}")), "{err}");
    }
    assert!(!p.root.join("x").exists() && !cwd_x.exists());
    assert!(!p.root.join(".worktrees").exists());
    assert!(!p.branches().contains(&"feature".to_string()));
    // an existing branch is checked out, not re-created; a tag works as `from`
    git(&p.root, &["tag", "v1"]);
    git(&p.root, &["branch", "existing"]);
    let w = created(block_on(m.create_worktree_optimized("existing", "v1")).unwrap());
    assert!(!w.created_branch);
    assert_eq!(w.from, "refs/tags/v1");
}

#[test]
fn an_existing_branch_is_read_from_its_own_commit() {
    let p = project(None);
    // the branch changes package.json; `from` (main) does not have that change
    git(&p.root, &["checkout", "-q", "-b", "own-deps"]);
    let pkg = std::fs::read_to_string(p.root.join("package.json")).unwrap();
    std::fs::write(
        p.root.join("package.json"),
        pkg.replace("\"left-pad\": \"1.3.0\"", "\"left-pad\": \"1.2.0\""),
    )
    .unwrap();
    git(&p.root, &["commit", "-qam", "left-pad 1.2.0"]);
    git(&p.root, &["checkout", "-q", "main"]);
    let m = WorktreeManager::new(p.options()).unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized("own-deps", "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let json = out.to_json();
    let w = created(out);
    assert!(!w.created_branch);
    assert!(
        std::fs::read_to_string(w.path.join("package.json"))
            .unwrap()
            .contains("1.2.0")
    );
    // the node_modules key is the checked-out package.json's, not main's
    let ours = vibetrees_core::cache::CacheKey::from_project_dir(&w.path).unwrap();
    let mains = vibetrees_core::cache::CacheKey::from_project_dir(&p.root).unwrap();
    assert_ne!(ours, mains);
    assert_eq!(json["worktree"]["cache"]["key"], ours.as_str(), "{json}");
}
