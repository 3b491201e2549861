//! The key: the same from a folder and from the blobs of a git tree; it moves with the lockfile
//! and the dependency sections, not with the rest of package.json.

mod cache_support;

use cache_support::*;
use std::path::Path;
use vibetrees_core::cache::{CacheKey, CacheManager, CacheManagerOptions, CacheOptions, KeyInputs};

fn commit_all(repo: &git2::Repository, msg: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree_id = index.write_tree().unwrap();
    let tree = repo.find_tree(tree_id).unwrap();
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    let parents: Vec<git2::Commit> = repo
        .head()
        .ok()
        .and_then(|h| h.peel_to_commit().ok())
        .into_iter()
        .collect();
    let parents: Vec<&git2::Commit> = parents.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
        .unwrap()
}

#[test]
fn key_from_folder_equals_key_from_git_tree() {
    let t = tempdir();
    let repo_dir = t.path().join("repo");
    let repo = git2::Repository::init(&repo_dir).unwrap();
    gen_project(&repo_dir, "a");
    std::fs::write(repo_dir.join("yarn.lock"), "# yarn\n").unwrap();
    gen_project(&repo_dir.join("apps/web"), "web");
    let c1 = commit_all(&repo, "one");
    let tree = repo.find_commit(c1).unwrap().tree().unwrap();

    let from_dir = CacheKey::from_project_dir(&repo_dir).unwrap();
    assert_eq!(CacheKey::from_git_tree(&repo, &tree).unwrap(), from_dir);
    let sub = CacheKey::from_git_tree_at(&repo, &tree, Path::new("apps/web")).unwrap();
    assert_eq!(
        sub,
        CacheKey::from_project_dir(&repo_dir.join("apps/web")).unwrap()
    );
    assert_ne!(sub, from_dir);
    let inputs = KeyInputs::from_project_dir(&repo_dir).unwrap();
    let names: Vec<_> = inputs.lockfiles.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["package-lock.json", "yarn.lock"]);
    assert_eq!(inputs.key(), from_dir);

    // Scripts and version do not change the key; a dependency does; so does the lockfile.
    let pj = repo_dir.join("package.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&pj).unwrap()).unwrap();
    v["scripts"] = serde_json::json!({"test": "x"});
    v["version"] = serde_json::json!("9.9.9");
    std::fs::write(&pj, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    assert_eq!(CacheKey::from_project_dir(&repo_dir).unwrap(), from_dir);
    v["devDependencies"] = serde_json::json!({"typescript": "5"});
    std::fs::write(&pj, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let changed = CacheKey::from_project_dir(&repo_dir).unwrap();
    assert_ne!(changed, from_dir);
    let c2 = commit_all(&repo, "two");
    let tree2 = repo.find_commit(c2).unwrap().tree().unwrap();
    assert_eq!(CacheKey::from_git_tree(&repo, &tree2).unwrap(), changed);
    std::fs::write(repo_dir.join("yarn.lock"), "# yarn 2\n").unwrap();
    assert_ne!(CacheKey::from_project_dir(&repo_dir).unwrap(), changed);

    // No package.json: a clear NotFound naming the place.
    let e = CacheKey::from_git_tree_at(&repo, &tree, Path::new("nope")).unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    let e = CacheKey::from_project_dir(&t.path().join("empty")).unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    assert!(e.to_string().contains("package.json"));
}

#[test]
fn a_committed_lockfile_link_counts_as_no_lockfile() {
    let t = tempdir();
    let repo_dir = t.path().join("repo");
    let repo = git2::Repository::init(&repo_dir).unwrap();
    gen_project(&repo_dir, "a");
    std::fs::remove_file(repo_dir.join("package-lock.json")).unwrap();
    let c1 = commit_all(&repo, "no lockfile");
    let without =
        CacheKey::from_git_tree(&repo, &repo.find_commit(c1).unwrap().tree().unwrap()).unwrap();
    // a link whose target text is a lockfile's JSON, and one pointing out of the tree
    std::os::unix::fs::symlink(
        r#"{"lockfileVersion":3,"packages":{}}"#,
        repo_dir.join("package-lock.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/hostname", repo_dir.join("yarn.lock")).unwrap();
    let c2 = commit_all(&repo, "linked lockfiles");
    let tree2 = repo.find_commit(c2).unwrap().tree().unwrap();
    assert_eq!(CacheKey::from_git_tree(&repo, &tree2).unwrap(), without);
    let inputs = KeyInputs::from_git_tree(&repo, &tree2, Path::new("")).unwrap();
    assert!(inputs.lockfiles.is_empty(), "{:?}", inputs.lockfiles.len());
}

#[test]
fn cache_manager_speaks_the_original_api() {
    let t = tempdir();
    let m = CacheManager::new(CacheManagerOptions {
        cache: CacheOptions {
            cache_dir: Some(t.path().join("cache")),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let a = t.path().join("a");
    gen_project(&a, "x");
    gen_tree(&a.join("node_modules"), 8, 2, false);
    assert!(!m.is_cache_valid(&a));
    let r = m.cache_node_modules(&a.join("node_modules")).unwrap();
    assert_eq!(r.key, CacheKey::from_project_dir(&a).unwrap());
    assert!(m.is_cache_valid(&a));
    let entry = m.cache().lookup(&r.key).unwrap().unwrap();
    assert_eq!(
        entry.manifest.inputs.unwrap(),
        KeyInputs::from_project_dir(&a).unwrap()
    );

    // Another checkout of the same project: a hit.
    let b = t.path().join("b");
    gen_project(&b, "x");
    let out = m.restore_node_modules(&b.join("node_modules")).unwrap();
    assert!(out.restored, "{out:?}");
    assert_same(
        &snapshot(&a.join("node_modules")),
        &snapshot(&b.join("node_modules")),
    );
    // A project with other dependencies: a miss with a reason, nothing created.
    let c = t.path().join("c");
    gen_project(&c, "other");
    let out = m.restore_node_modules(&c.join("node_modules")).unwrap();
    assert!(!out.restored);
    assert!(out.reason.unwrap().contains("not found"));
    assert!(!c.join("node_modules").exists());
    assert!(!m.is_cache_valid(&t.path().join("no-such-project")));
    let env = CacheManager::get_docker_cache_env();
    assert_eq!(env["DOCKER_BUILDKIT"], "1");
    assert_eq!(env["BUILDKIT_PROGRESS"], "plain");
    assert_eq!(env["COMPOSE_DOCKER_CLI_BUILD"], "1");
    assert_eq!(env.len(), 3);
}
