//! Branch content is untrusted: symbolic links a branch commits (`.claude`, `.claude/settings.json`,
//! `.env`, `node_modules`, the compose file) never make a creation read or write outside the
//! worktree. Real repositories, real links, real files outside.

mod worktree_support;

use serde_json::Value;
use std::path::Path;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{WorktreeManager, WorktreeOptions};
use worktree_support::*;

/// Commits `links` (name in the tree -> target) on a new branch `branch`, back on main after.
fn branch_with_links(p: &Project, branch: &str, links: &[(&str, &Path)]) {
    git(&p.root, &["checkout", "-q", "-b", branch]);
    for (name, target) in links {
        let at = p.root.join(name);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        if at.exists() {
            std::fs::rename(&at, p.root.join(format!("{name}.aside"))).unwrap();
        }
        std::os::unix::fs::symlink(target, &at).unwrap();
        git(&p.root, &["add", "-f", name]);
    }
    git(&p.root, &["commit", "-qm", "links"]);
    git(&p.root, &["checkout", "-q", "main"]);
    for (name, _) in links {
        let _ = std::fs::remove_file(p.root.join(name));
        let aside = p.root.join(format!("{name}.aside"));
        if aside.exists() {
            std::fs::rename(aside, p.root.join(name)).unwrap();
        }
    }
}

/// Creates `branch` (existing) with progress recorded: the result's JSON and the messages.
fn create(p: &Project, branch: &str) -> (Value, Vec<String>) {
    let (sink, events) = recorder();
    let m = WorktreeManager::new(WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized(branch, "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let msgs = events.lock().iter().map(|e| e.message.clone()).collect();
    (out.to_json(), msgs)
}

#[test]
fn a_committed_claude_link_to_a_folder_outside_is_never_written_through() {
    let p = project(None);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.txt"), "mine").unwrap();
    branch_with_links(&p, "evil-claude", &[(".claude", outside.path())]);
    let before = tree(outside.path());
    let (json, msgs) = create(&p, "evil-claude");
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(tree(outside.path()), before, "nothing written outside");
    assert!(!outside.path().join("settings.json").exists());
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("⚠ mcp skipped: .claude is a symbolic link")),
        "{msgs:?}"
    );
    let wt = p.root.join(".worktrees/evil-claude");
    assert!(
        std::fs::symlink_metadata(wt.join(".claude"))
            .unwrap()
            .is_symlink(),
        "the branch's link is left as it is"
    );
}

#[test]
fn a_committed_settings_link_to_a_file_outside_is_neither_read_nor_written() {
    let p = project(None);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("config.json");
    std::fs::write(&secret, r#"{"auths":{"registry":"s3cret"}}"#).unwrap();
    branch_with_links(
        &p,
        "evil-settings",
        &[(".claude/settings.json", secret.as_path())],
    );
    let (json, msgs) = create(&p, "evil-settings");
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        r#"{"auths":{"registry":"s3cret"}}"#
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("⚠ mcp skipped: .claude/settings.json is a symbolic link")),
        "{msgs:?}"
    );
    let wt = p.root.join(".worktrees/evil-settings");
    let settings = wt.join(".claude/settings.json");
    assert!(std::fs::symlink_metadata(&settings).unwrap().is_symlink());
    // the secret was not copied into the worktree under another name
    for (path, content) in tree(&wt.join(".claude")) {
        assert!(!content.contains("s3cret"), "{path}: {content}");
    }
}

#[test]
fn a_committed_env_link_is_kept_and_its_target_untouched() {
    let p = project(None);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("id_rsa");
    std::fs::write(&target, "PRIVATE KEY\n").unwrap();
    branch_with_links(&p, "evil-env", &[(".env", target.as_path())]);
    let (json, msgs) = create(&p, "evil-env");
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "PRIVATE KEY\n");
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("⚠ write-env skipped: .env is a symbolic link")),
        "{msgs:?}"
    );
    assert_eq!(json["worktree"]["steps"]["write-env"]["written"], false);
}

#[test]
fn a_committed_node_modules_link_is_never_restored_into_installed_into_or_cached() {
    let p = project(None);
    p.warm_cache();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.txt"), "mine").unwrap();
    branch_with_links(&p, "evil-modules", &[("node_modules", outside.path())]);
    let before = tree(outside.path());
    let entries_before = std::fs::read_dir(p.cache_dir.join("entries"))
        .map(|d| d.count())
        .unwrap_or(0);
    let (json, msgs) = create(&p, "evil-modules");
    assert_eq!(json["success"], true, "{json}");
    assert_eq!(tree(outside.path()), before, "nothing restored outside");
    assert_eq!(
        json["worktree"]["steps"]["npm-bootstrap"]["outcome"], "refused",
        "{json}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("⚠ install skipped: node_modules is a symbolic link")),
        "{msgs:?}"
    );
    let entries_after = std::fs::read_dir(p.cache_dir.join("entries"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        entries_before, entries_after,
        "nothing cached from the link"
    );
}

#[test]
fn local_mcp_servers_behind_links_are_not_followed() {
    let p = project(None);
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("evil")).unwrap();
    std::fs::write(outside.path().join("evil/index.js"), "// outside\n").unwrap();
    std::fs::write(outside.path().join("entry.js"), "// outside\n").unwrap();
    let servers = p.root.join("mcp-servers");
    std::fs::create_dir_all(servers.join("real")).unwrap();
    std::fs::write(servers.join("real/index.js"), "// ok\n").unwrap();
    // a linked server folder, a linked entry file, a `main` that climbs out
    std::os::unix::fs::symlink(outside.path().join("evil"), servers.join("linked")).unwrap();
    std::fs::create_dir_all(servers.join("entry-link")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("entry.js"),
        servers.join("entry-link/index.js"),
    )
    .unwrap();
    std::fs::create_dir_all(servers.join("climb")).unwrap();
    std::fs::write(
        servers.join("climb/package.json"),
        r#"{"main": "../../../outside.js"}"#,
    )
    .unwrap();
    let found: Vec<String> = vibetrees_core::services::mcp::local_servers(&p.root)
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(found, ["real"]);
    // the whole `mcp-servers` folder as a link
    let p2 = project(None);
    std::os::unix::fs::symlink(&servers, p2.root.join("mcp-servers")).unwrap();
    assert!(vibetrees_core::services::mcp::local_servers(&p2.root).is_empty());
}

#[test]
fn a_committed_compose_link_is_not_the_compose_file() {
    let p = project(None);
    let outside = tempfile::tempdir().unwrap();
    let compose = outside.path().join("compose.yml");
    let text =
        "services:\n  outsider:\n    image: busybox\n    ports: ['${OUTSIDER_PORT:-7000}:80']\n";
    std::fs::write(&compose, text).unwrap();
    // a link out of the worktree, and one whose target text is itself compose YAML (the link's
    // blob would parse as a compose file if it were read as one)
    branch_with_links(
        &p,
        "evil-compose",
        &[("docker-compose.yml", compose.as_path())],
    );
    let yaml_target =
        Path::new("{services: {linked: {image: busybox, ports: ['${LINKED_PORT:-7001}:80']}}}");
    branch_with_links(
        &p,
        "evil-compose-yaml",
        &[("docker-compose.yml", yaml_target)],
    );
    for branch in ["evil-compose", "evil-compose-yaml"] {
        let (json, _) = create(&p, branch);
        assert_eq!(json["success"], true, "{json}");
        let wt = p.root.join(".worktrees").join(branch);
        assert!(
            std::fs::symlink_metadata(wt.join("docker-compose.yml"))
                .unwrap()
                .is_symlink(),
            "the branch's link is left as it is"
        );
        // neither the outside file's services nor the link text's became this worktree's
        let env = std::fs::read_to_string(wt.join(".env")).unwrap_or_default();
        for service in ["OUTSIDER", "LINKED", "outsider", "linked"] {
            assert!(
                !env.contains(service),
                "{branch}: .env names {service}: {env}"
            );
            assert!(
                !json["ports"].to_string().contains(service),
                "{branch}: ports {}",
                json["ports"]
            );
        }
    }
    assert_eq!(std::fs::read_to_string(&compose).unwrap(), text);
}
