//! `platform::ConfinedDir`: files opened beneath a worktree, never through a symbolic link, on
//! a real git checkout of a branch that commits links to outside files and folders (what an
//! agent could push). Every case runs with both resolvers: the native one (`openat2` on Linux)
//! and the per-component walk other platforms and old kernels use.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use vibetrees_core::Error;
use vibetrees_core::platform::{ConfinedDir, OpenBeneath, Resolver};

const RESOLVERS: [Resolver; 2] = [Resolver::Native, Resolver::PerComponent];

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A repository whose branch commits links out of the worktree, checked out by git itself,
/// beside an `outside/` folder holding the files the links point to.
struct Attack {
    _tmp: tempfile::TempDir,
    worktree: PathBuf,
    outside: PathBuf,
}

fn attack() -> Attack {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(outside.join("claude")).unwrap();
    std::fs::write(outside.join("secret"), "do not touch\n").unwrap();
    let repo = tmp.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("package.json"), "{\"name\":\"x\"}\n").unwrap();
    std::fs::create_dir(repo.join("config")).unwrap();
    std::fs::write(repo.join("config/app.json"), "{}\n").unwrap();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, repo.join(name)).unwrap();
    link(&outside.join("secret"), ".env");
    link(&outside.join("claude"), ".claude");
    link(Path::new("../outside/secret"), "docker-compose.yml");
    link(Path::new(".."), "up");
    link(Path::new("config"), "config-alias");
    git(&repo, &["add", "-A"]);
    git(
        &repo,
        &[
            "-c",
            "user.name=a",
            "-c",
            "user.email=a@b",
            "commit",
            "-qm",
            "links",
        ],
    );
    let worktree = tmp.path().join("wt");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "agent",
            worktree.to_str().unwrap(),
            "main",
        ],
    );
    assert!(
        std::fs::symlink_metadata(worktree.join(".claude"))
            .unwrap()
            .is_symlink()
    );
    Attack {
        _tmp: tmp,
        worktree,
        outside,
    }
}

/// The error is an I/O error whose message names the link and says links are not followed.
fn assert_link_refused(r: Result<impl std::fmt::Debug, Error>, link: &str) {
    let e = r.expect_err("a path through a symbolic link must be refused");
    let msg = e.to_string();
    assert_eq!(e.code(), "IO", "{msg}");
    assert!(
        msg.contains(&format!("`{link}` is a symbolic link")) && msg.contains("never followed"),
        "{msg}"
    );
}

fn outside_untouched(a: &Attack) {
    assert_eq!(
        std::fs::read_to_string(a.outside.join("secret")).unwrap(),
        "do not touch\n"
    );
    let claude: Vec<_> = std::fs::read_dir(a.outside.join("claude"))
        .unwrap()
        .collect();
    assert!(claude.is_empty(), "written through the link: {claude:?}");
}

#[test]
fn plain_files_are_read_and_written_beneath_the_worktree() {
    let a = attack();
    for resolver in RESOLVERS {
        let wt = ConfinedDir::open_with(&a.worktree, resolver).unwrap();
        assert_eq!(wt.read("package.json").unwrap(), b"{\"name\":\"x\"}\n");
        assert_eq!(wt.read("./config//app.json").unwrap(), b"{}\n");
        assert_eq!(wt.read_if_exists("missing.json").unwrap(), None);
        assert_eq!(wt.read_if_exists("no/such/folder.json").unwrap(), None);
        // write: parents made, atomic, an existing file keeps its mode
        let name = format!("made-{resolver:?}/deep/settings.json");
        wt.write(&name, b"one", 0o600).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&a.worktree.join(&name)), 0o600);
        std::fs::set_permissions(
            a.worktree.join(&name),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        wt.write(&name, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(a.worktree.join(&name)).unwrap(), b"two");
        assert_eq!(mode(&a.worktree.join(&name)), 0o640);
        let left: Vec<_> = std::fs::read_dir(a.worktree.join(format!("made-{resolver:?}/deep")))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "a temporary file was left: {left:?}");
        // open_file: create_new refuses an existing name, append appends
        let p = format!("log-{resolver:?}.txt");
        std::io::Write::write_all(
            &mut wt.open_file(&p, OpenBeneath::create_new(0o644)).unwrap(),
            b"a",
        )
        .unwrap();
        assert!(wt.open_file(&p, OpenBeneath::create_new(0o644)).is_err());
        std::io::Write::write_all(
            &mut wt.open_file(&p, OpenBeneath::append(0o644)).unwrap(),
            b"b",
        )
        .unwrap();
        assert_eq!(wt.read(&p).unwrap(), b"ab");
        // folders
        wt.create_dir_all(format!("dirs-{resolver:?}/a/b"), 0o755)
            .unwrap();
        let sub = wt.open_dir(format!("dirs-{resolver:?}/a")).unwrap();
        assert!(sub.stat("b").unwrap().unwrap().file_type().is_dir());
    }
}

#[test]
fn committed_links_are_never_followed_for_reading() {
    let a = attack();
    for resolver in RESOLVERS {
        let wt = ConfinedDir::open_with(&a.worktree, resolver).unwrap();
        assert_link_refused(wt.read(".env"), ".env");
        assert_link_refused(wt.read_if_exists(".env"), ".env");
        assert_link_refused(wt.read("docker-compose.yml"), "docker-compose.yml");
        assert_link_refused(wt.read(".claude/settings.json"), ".claude");
        assert_link_refused(wt.read("up/outside/secret"), "up");
        // a link to a folder inside the worktree is still a link
        assert_link_refused(wt.read("config-alias/app.json"), "config-alias");
        assert_link_refused(wt.open_dir(".claude"), ".claude");
        // stat reports the link itself
        let st = wt.stat(".env").unwrap().unwrap();
        assert!(st.file_type().is_symlink(), "{st:?}");
        assert_link_refused(wt.stat(".claude/settings.json"), ".claude");
    }
}

#[test]
fn committed_links_are_never_followed_for_writing() {
    let a = attack();
    for resolver in RESOLVERS {
        let wt = ConfinedDir::open_with(&a.worktree, resolver).unwrap();
        assert_link_refused(wt.write(".env", b"PORT=1\n", 0o644), ".env");
        assert_link_refused(wt.write(".claude/settings.json", b"{}", 0o644), ".claude");
        assert_link_refused(
            wt.open_file(".claude/settings.json", OpenBeneath::create(0o644)),
            ".claude",
        );
        assert_link_refused(wt.open_file(".env", OpenBeneath::append(0o644)), ".env");
        assert_link_refused(wt.create_dir_all(".claude/hooks", 0o755), ".claude");
        assert_link_refused(wt.write("up/outside/new", b"x", 0o644), "up");
        outside_untouched(&a);
        // the links themselves are left as they were
        assert!(
            std::fs::symlink_metadata(a.worktree.join(".env"))
                .unwrap()
                .is_symlink()
        );
    }
}

#[test]
fn paths_that_leave_the_worktree_are_invalid_arguments() {
    let a = attack();
    for resolver in RESOLVERS {
        let wt = ConfinedDir::open_with(&a.worktree, resolver).unwrap();
        for bad in [
            "../outside/secret",
            "config/../../outside/secret",
            "/etc/passwd",
            "",
            ".",
        ] {
            let e = wt.read(bad).expect_err(bad);
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad}: {e}");
            assert!(e.to_string().contains("plain relative names"), "{e}");
            let e = wt.write(bad, b"x", 0o644).expect_err(bad);
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad}: {e}");
        }
        outside_untouched(&a);
    }
}

#[test]
fn a_folder_where_a_file_is_written_is_refused() {
    let a = attack();
    for resolver in RESOLVERS {
        let wt = ConfinedDir::open_with(&a.worktree, resolver).unwrap();
        let e = wt.write("config", b"x", 0o644).unwrap_err();
        assert_eq!(e.code(), "IO", "{e}");
        assert!(
            std::fs::metadata(a.worktree.join("config"))
                .unwrap()
                .is_dir()
        );
        // a file where a folder is expected: not a link, a plain error naming the path
        let e = wt.read("package.json/inner").unwrap_err();
        assert!(!e.to_string().contains("symbolic link"), "{e}");
        assert!(e.to_string().contains("package.json/inner"), "{e}");
    }
}
