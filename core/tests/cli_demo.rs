//! `vibetrees demo`, the README's main command, run for real (with a generated node_modules so
//! the test does not depend on the registry; the real-npm path is the same code after the
//! install). HOME points at a temporary folder.

use std::process::Command;

#[test]
fn demo_creates_worktrees_sequential_cold_and_warm_and_compares_them() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args(["demo", "--offline", "--files", "40", "--keep"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");

    // The sample project, the three flows and the comparison are there.
    assert!(
        stdout.contains("Sample project ready: 40 source files"),
        "{stdout}"
    );
    for section in [
        "== Sequential flow",
        "== Cold creation",
        "== Warm creation (cache hit) ==",
        "== Again, already there ==",
        "== Comparison ==",
    ] {
        assert!(
            stdout.contains(section),
            "missing {section:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("node_modules: cold = hit, warm = hit"),
        "{stdout}"
    );
    assert!(stdout.contains("\"existed\":true"), "{stdout}");
    assert!(stdout.contains("critical path (*):"), "{stdout}");

    // The worktrees it made are real: the kept folder holds them, registered with git, with
    // node_modules restored.
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Kept "))
        .expect("the demo says where it kept its folder");
    let root = std::path::Path::new(kept).join("projects/sample-app");
    let list = Command::new("git")
        .args(["worktree", "list", "--porcelain"])
        .current_dir(&root)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for wt in ["demo-cold-start", "demo-warm-start", "seq-baseline"] {
        assert!(list.contains(wt), "{wt} not registered:\n{list}");
    }
    let warm = root.join(".worktrees/demo-warm-start");
    assert!(warm.join("node_modules/gen-pkg-000/package.json").is_file());
    assert!(warm.join(".env").is_file());
    assert!(warm.join(".claude/settings.json").is_file());
    // The demo's HOME was its own folder: nothing was written under ours.
    assert!(!home.path().join(".vibetrees").exists());
    std::fs::remove_dir_all(kept).unwrap();
}
