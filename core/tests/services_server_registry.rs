//! The server's `PortRegistry` object over the core registry: the server's results for the
//! server's calls, never stale, read-modify-write touching only changed keys, allocation that
//! terminates when its base port is taken, the shared-name warning, and the `vibetrees ports` CLI.

mod ports_support;

use indexmap::IndexMap;
use ports_support::free_base;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;
use vibetrees_core::services::ports::is_port_in_use;
use vibetrees_core::services::server_registry::{ServerPortRegistry, WorktreeRef};

fn svcs(pairs: &[(&str, u16)]) -> Vec<(String, u16)> {
    pairs.iter().map(|(s, p)| (s.to_string(), *p)).collect()
}

#[test]
fn the_servers_calls_give_the_servers_results() {
    let home = tempfile::tempdir().unwrap();
    let reg = ServerPortRegistry::new_in(home.path(), "/home/me/code/shop")
        .unwrap()
        .with_listening_check(false);
    assert_eq!(reg.registry_dir(), home.path().join(".vibetrees/code-shop"));
    assert_eq!(
        reg.registry_file(),
        home.path().join(".vibetrees/code-shop/ports.json")
    );
    assert!(
        reg.registry_dir().is_dir(),
        "made by the constructor, as load()"
    );
    assert!(reg.ports().unwrap().is_empty());

    assert_eq!(reg.allocate("feat-a", "postgres", 5432).unwrap(), 5432);
    assert_eq!(reg.allocate("feat-a", "api", 3000).unwrap(), 3000);
    assert_eq!(reg.allocate("feat-b", "postgres", 5432).unwrap(), 5433);
    // an existing key keeps its port, whatever the base port asked
    assert_eq!(reg.allocate("feat-a", "postgres", 6000).unwrap(), 5432);
    let many = reg
        .allocate_many("feat-b", &svcs(&[("api", 3000), ("postgres", 5432)]))
        .unwrap();
    assert_eq!(
        many,
        IndexMap::from([("api".to_string(), 3001), ("postgres".to_string(), 5433)])
    );
    let text = std::fs::read_to_string(reg.registry_file()).unwrap();
    assert_eq!(
        text,
        "{\n  \"feat-a:postgres\": 5432,\n  \"feat-a:api\": 3000,\n  \"feat-b:postgres\": 5433,\n  \"feat-b:api\": 3001\n}"
    );
    assert_eq!(
        serde_json::to_value(reg.worktree_ports("feat-a").unwrap()).unwrap(),
        serde_json::json!({ "postgres": 5432, "api": 3000 })
    );
    assert!(reg.worktree_ports("feat").unwrap().is_empty());

    assert_eq!(reg.release("feat-a").unwrap(), 2);
    assert_eq!(reg.release("feat-a").unwrap(), 0);
    assert_eq!(reg.load().unwrap().len(), 2);
    // a released port is handed out again
    assert_eq!(reg.allocate("feat-c", "postgres", 5432).unwrap(), 5432);

    // syncFromWorktrees: `.env` lines `^([A-Z_]+)_PORT=(\d+)$`, only missing keys, counted
    let wt = tempfile::tempdir().unwrap();
    std::fs::write(
        wt.path().join(".env"),
        "COMPOSE_PROJECT_NAME=vibe_old\nPOSTGRES_PORT=5440\nMINIO_CONSOLE_PORT=9005\nbad_PORT=1\nAPI_PORT=3001\n",
    )
    .unwrap();
    let missing = tempfile::tempdir().unwrap();
    let worktrees = vec![
        WorktreeRef {
            name: "old".into(),
            path: wt.path().into(),
        },
        WorktreeRef {
            name: "gone".into(),
            path: missing.path().join("nope"),
        },
    ];
    assert_eq!(reg.sync_from_worktrees(&worktrees).unwrap(), 3);
    assert_eq!(reg.sync_from_worktrees(&worktrees).unwrap(), 0);
    assert_eq!(
        serde_json::to_value(reg.worktree_ports("old").unwrap()).unwrap(),
        serde_json::json!({ "postgres": 5440, "minio-console": 9005, "api": 3001 })
    );
}

#[test]
fn an_object_made_earlier_sees_every_change_and_its_changes_keep_the_others_keys() {
    let home = tempfile::tempdir().unwrap();
    let server = ServerPortRegistry::new_in(home.path(), "/w/proj")
        .unwrap()
        .with_listening_check(false);
    let ours = ServerPortRegistry::new_in(home.path(), "/w/proj")
        .unwrap()
        .with_listening_check(false);
    assert_eq!(server.allocate("a", "postgres", 5432).unwrap(), 5432);
    // made before; no reload needed
    assert_eq!(
        serde_json::to_value(ours.worktree_ports("a").unwrap()).unwrap(),
        serde_json::json!({ "postgres": 5432 })
    );
    assert_eq!(ours.allocate("b", "postgres", 5432).unwrap(), 5433);
    // the server's release of `a` does not write its old view over `b`
    assert_eq!(server.release("a").unwrap(), 1);
    assert_eq!(
        serde_json::to_value(server.ports().unwrap()).unwrap(),
        serde_json::json!({ "b:postgres": 5433 })
    );

    // save(): only the keys the host changed reach the file
    let base = server.ports().unwrap();
    let mut now = base.clone();
    now.insert("c:api".into(), 3100.into());
    now.shift_remove("b:postgres");
    ours.allocate("d", "api", 3000).unwrap(); // lands between the read and the save
    assert_eq!(server.save_changes(&base, &now).unwrap(), 2);
    assert_eq!(
        serde_json::to_value(ours.ports().unwrap()).unwrap(),
        serde_json::json!({ "d:api": 3000, "c:api": 3100 })
    );
    assert_eq!(server.save_changes(&now, &now).unwrap(), 0);
}

#[test]
fn allocation_terminates_when_its_base_port_is_taken() {
    let home = tempfile::tempdir().unwrap();
    let reg = ServerPortRegistry::new_in(home.path(), "/w/term").unwrap();
    let base = free_base(4);
    // the server's allocateAtomic loops forever here (it marks each next port used before testing it)
    assert_eq!(
        reg.allocate_many("a", &svcs(&[("api", base)])).unwrap()["api"],
        base
    );
    assert_eq!(
        reg.allocate_many("b", &svcs(&[("api", base)])).unwrap()["api"],
        base + 1
    );
    // a port something listens on is skipped
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, base + 2)).unwrap();
    assert!(is_port_in_use(base + 2));
    assert_eq!(reg.allocate("c", "api", base).unwrap(), base + 3);
    drop(l);
    // no port left above the base: a clear error, not a hang, and nothing written
    let reg = reg.with_listening_check(false);
    assert_eq!(reg.allocate("top", "x", 65535).unwrap(), 65535);
    let before = std::fs::read(reg.registry_file()).unwrap();
    let err = reg.allocate("top2", "x", 65535).unwrap_err();
    assert!(err.to_string().contains("no free port"), "{err}");
    assert_eq!(std::fs::read(reg.registry_file()).unwrap(), before);
    // bad input: refused, nothing written
    assert_eq!(
        reg.allocate("a", "api", 0).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        reg.allocate("a:b", "api", 3000).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
    assert_eq!(std::fs::read(reg.registry_file()).unwrap(), before);
}

#[test]
fn a_corrupt_registry_is_an_error_and_left_untouched() {
    let home = tempfile::tempdir().unwrap();
    let reg = ServerPortRegistry::new_in(home.path(), "/w/corrupt").unwrap();
    std::fs::write(reg.registry_file(), "{ not json").unwrap();
    assert_eq!(reg.ports().unwrap_err().code(), "PARSE");
    assert_eq!(reg.allocate("a", "api", 3000).unwrap_err().code(), "PARSE");
    assert_eq!(reg.release("a").unwrap_err().code(), "PARSE");
    assert_eq!(
        std::fs::read_to_string(reg.registry_file()).unwrap(),
        "{ not json"
    );
}

#[test]
fn two_projects_with_the_same_last_two_components_are_told_they_share() {
    let home = tempfile::tempdir().unwrap();
    let one = ServerPortRegistry::new_in(home.path(), "/a/code/shop").unwrap();
    assert!(one.shared_with().is_empty());
    let again = ServerPortRegistry::new_in(home.path(), "/a/code/shop").unwrap();
    assert!(again.shared_with().is_empty(), "the same project again");
    let other = ServerPortRegistry::new_in(home.path(), "/b/code/shop").unwrap();
    // the server's file name, kept
    assert_eq!(other.registry_file(), one.registry_file());
    assert_eq!(other.shared_with(), ["/a/code/shop".to_string()]);
    let first = ServerPortRegistry::new_in(home.path(), "/a/code/shop").unwrap();
    assert_eq!(first.shared_with(), ["/b/code/shop".to_string()]);
}

fn cli(home: &Path, root: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .arg("ports")
        .args(args)
        .args(["--root", root])
        .env("HOME", home)
        .output()
        .unwrap()
}

#[test]
fn the_cli_allocates_lists_and_releases() {
    let home = tempfile::tempdir().unwrap();
    let base = free_base(3);
    let b = base.to_string();
    let out = cli(
        home.path(),
        "/x/p/q",
        &["allocate", "feat", &format!("api={b}"), &format!("web={b}")],
    );
    assert!(out.status.success(), "{out:?}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, serde_json::json!({ "api": base, "web": base + 1 }));
    let reg = ServerPortRegistry::new_in(home.path(), "/x/p/q").unwrap();
    assert_eq!(reg.load().unwrap().len(), 2);
    let out = cli(home.path(), "/x/p/q", &["list", "feat"]);
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, serde_json::json!({ "api": base, "web": base + 1 }));
    let out = cli(home.path(), "/x/p/q", &["allocate", "feat", "api=0"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INVALID_ARGUMENT"),
        "{out:?}"
    );
    let out = cli(home.path(), "/x/p/q", &["release", "feat"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
    assert!(reg.load().unwrap().is_empty());
}
