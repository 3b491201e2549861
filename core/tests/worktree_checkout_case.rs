//! macOS filesystem semantics in the checkout (issue 14): on a filesystem that takes names
//! differing only in case (APFS, HFS+ by default) or only in Unicode normalisation for one file, a
//! tree with such twins (`README.md` and `readme.md`) is checked out by the git CLI, which gives
//! what git gives there; any other tree keeps our checkout. The repository's `core.ignorecase` and
//! `core.precomposeunicode` count the same way.
//!
//! The case-insensitive filesystem is real: exFAT through FUSE (`exfat-fuse`, `exfatprogs`:
//! tests/setup-machine.sh installs them) on a loop device; without them or root, that test skips
//! with a message, except under CI=true where it fails.

mod worktree_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::checkout::{
    CheckoutError, CheckoutMethod, CheckoutOptions, NameFolding, checkout_tree_with,
};
use vibetrees_core::worktree::git;
use worktree_support::{git, setup};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A repository on `main` (a few files, `README.md` among them) and branches made with git2 from
/// main's tree plus extra top-level files: `twins` adds `readme.md`, `accents` adds `café.txt`
/// twice (composed and decomposed).
fn repo() -> (tempfile::TempDir, PathBuf) {
    setup();
    let tmp = tempfile::Builder::new()
        .prefix("vt-co-case-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("app");
    for (p, text) in [
        ("README.md", "# App\n"),
        ("src/index.js", "export default 1;\n"),
        ("src/Util.js", "export const u = 2;\n"),
        ("docs/guide.md", "guide\n"),
    ] {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), text).unwrap();
    }
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    branch_with(&root, "twins", &[("readme.md", "# app, lower case\n")]);
    branch_with(
        &root,
        "accents",
        &[
            ("caf\u{e9}.txt", "composed\n"),
            ("cafe\u{301}.txt", "decomposed\n"),
        ],
    );
    (tmp, root)
}

fn branch_with(root: &Path, branch: &str, files: &[(&str, &str)]) {
    let repo = git2::Repository::open(root).unwrap();
    let main = repo.head().unwrap().peel_to_commit().unwrap();
    let mut tb = repo.treebuilder(Some(&main.tree().unwrap())).unwrap();
    for (name, text) in files {
        tb.insert(name, repo.blob(text.as_bytes()).unwrap(), 0o100644)
            .unwrap();
    }
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    let c = repo
        .commit(None, &sig, &sig, branch, &tree, &[&main])
        .unwrap();
    repo.branch(branch, &repo.find_commit(c).unwrap(), false)
        .unwrap();
}

/// Our worktree add (`git::add_worktree`) of a new branch `name` made at `from`, into `base`.
fn add(root: &Path, base: &Path, name: &str, from: &str) -> git::AddedWorktree {
    git(root, &["branch", name, from]);
    block_on(git::add_worktree(root, &base.join(name), name, 1)).unwrap()
}

/// `git worktree add -q <base>/<name> -b <name> <from>`: the reference.
fn cli_add(root: &Path, base: &Path, name: &str, from: &str) -> PathBuf {
    let dest = base.join(name);
    git(
        root,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            name,
            &dest.to_string_lossy(),
            from,
        ],
    );
    dest
}

/// Every file under `dir` (but `.git`), relative, with its content, sorted.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel == ".git" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// What the worktree looks like to the user: its files and `git status`.
fn seen(dir: &Path) -> (Vec<(String, Vec<u8>)>, String) {
    (
        contents(dir),
        git(dir, &["status", "--porcelain", "--untracked-files=all"]),
    )
}

/// An exFAT image on a loop device, mounted through FUSE: case-insensitive, case-preserving.
struct ExfatMount {
    dir: PathBuf,
    device: String,
    _holder: tempfile::TempDir,
}

impl ExfatMount {
    fn new() -> Result<Self, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not root: cannot set up a loop device".into());
        }
        let run = |cmd: &mut Command| -> Result<String, String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            } else {
                Err(format!(
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let holder = tempfile::Builder::new()
            .prefix("vt-exfat-")
            .tempdir()
            .unwrap();
        let img = holder.path().join("exfat.img");
        let dir = holder.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        std::fs::File::create(&img)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        run(Command::new("mkfs.exfat").arg(&img))
            .map_err(|e| format!("mkfs.exfat (apt-get install exfatprogs): {e}"))?;
        let device = run(Command::new("losetup").args(["-f", "--show"]).arg(&img))?;
        if let Err(e) = run(Command::new("mount.exfat-fuse").arg(&device).arg(&dir)) {
            let _ = Command::new("losetup").args(["-d", &device]).status();
            return Err(format!(
                "mount.exfat-fuse (apt-get install exfat-fuse): {e}"
            ));
        }
        Ok(ExfatMount {
            dir,
            device,
            _holder: holder,
        })
    }
}

impl Drop for ExfatMount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount").arg("-u").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

#[test]
fn on_a_case_insensitive_filesystem_case_twins_take_the_git_cli_and_give_what_it_gives() {
    let (_tmp, root) = repo();
    let mount = match ExfatMount::new() {
        Ok(m) => m,
        Err(why) if !in_ci() => {
            eprintln!("SKIPPED: no case-insensitive filesystem (exFAT through FUSE): {why}");
            return;
        }
        Err(why) => panic!("cannot skip in CI: no exFAT through FUSE: {why}"),
    };
    let base = mount.dir.join("worktrees");
    std::fs::create_dir(&base).unwrap();
    assert_eq!(
        NameFolding::of_folder(&base).unwrap(),
        NameFolding {
            case: true,
            unicode: false
        },
        "exFAT folds case, not normalisation"
    );
    assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0, "probe left");

    // a tree without twins: ours, the same worktree as the CLI's
    let ours = add(&root, &base, "plain", "main");
    assert_eq!(ours.method, CheckoutMethod::Git2Parallel, "{ours:?}");
    let cli = cli_add(&root, &base, "plain-cli", "main");
    assert_eq!(seen(&base.join("plain")), seen(&cli));

    // README.md and readme.md: the git CLI's checkout, exactly what `git worktree add` gives
    let ours = add(&root, &base, "twins-ours", "twins");
    assert_eq!(ours.method, CheckoutMethod::GitCli, "{ours:?}");
    let why = ours.cli_because.unwrap();
    assert!(why.contains("README.md and readme.md"), "{why}");
    let cli = cli_add(&root, &base, "twins-cli", "twins");
    let (files, status) = seen(&base.join("twins-ours"));
    assert_eq!((files.clone(), status.clone()), seen(&cli));
    // one file of the two, as git leaves it here
    assert_eq!(
        files
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("readme.md"))
            .count(),
        1,
        "{files:?}"
    );
    drop(mount);
}

#[test]
fn a_base_declared_case_insensitive_sends_twins_to_the_git_cli() {
    let (tmp, root) = repo();
    let repo = git2::Repository::open(&root).unwrap();
    let tree = |rev: &str| {
        repo.revparse_single(&format!("{rev}^{{tree}}"))
            .unwrap()
            .id()
    };
    let checkout = |rev: &str, name: &str, case: bool, unicode: bool| {
        let dest = tmp.path().join(name);
        std::fs::create_dir(&dest).unwrap();
        let options = CheckoutOptions {
            workers: 2,
            folding: Some(NameFolding { case, unicode }),
            git_program: None,
        };
        checkout_tree_with(repo.commondir(), tree(rev), &dest, &options)
    };
    match checkout("twins", "twins-ci", true, false) {
        Err(CheckoutError::NeedsCli(why)) => {
            assert!(why.contains("README.md and readme.md"), "{why}");
            assert!(why.contains("differ in case"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    match checkout("accents", "accents-nfd", false, true) {
        Err(CheckoutError::NeedsCli(why)) => assert!(why.contains("normalisation"), "{why}"),
        other => panic!("{other:?}"),
    }
    // what does not fold keeps our checkout: both twins written where case matters
    let written = checkout("twins", "twins-cs", false, true).unwrap();
    assert_eq!(written.entries.len(), 5);
    let written = checkout("accents", "accents-ci", true, false).unwrap();
    assert_eq!(written.entries.len(), 6);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("accents-ci/cafe\u{301}.txt")).unwrap(),
        "decomposed\n"
    );
    assert!(checkout("main", "main-ci", true, true).is_ok());
}

#[test]
fn core_ignorecase_and_precomposeunicode_send_only_their_twins_to_the_git_cli() {
    let (_tmp, root) = repo();
    let base = root.join(".worktrees");
    std::fs::create_dir_all(&base).unwrap();
    // set by git on macOS in every repository it makes there: the fast path must stay
    git(&root, &["config", "core.ignorecase", "true"]);
    git(&root, &["config", "core.precomposeunicode", "true"]);
    let plain = add(&root, &base, "plain", "main");
    assert_eq!(plain.method, CheckoutMethod::Git2Parallel, "{plain:?}");
    assert_eq!(
        git(&base.join("plain"), &["status", "--porcelain"]),
        "",
        "clean"
    );
    let twins = add(&root, &base, "twins-ours", "twins");
    assert_eq!(twins.method, CheckoutMethod::GitCli, "{twins:?}");
    assert!(
        twins
            .cli_because
            .unwrap()
            .contains("README.md and readme.md"),
        "the reason names them"
    );
    let cli = cli_add(&root, &base, "twins-cli", "twins");
    assert_eq!(seen(&base.join("twins-ours")), seen(&cli));

    git(&root, &["config", "core.ignorecase", "false"]);
    let accents = add(&root, &base, "accents-ours", "accents");
    assert_eq!(accents.method, CheckoutMethod::GitCli, "{accents:?}");
    let cli = cli_add(&root, &base, "accents-cli", "accents");
    assert_eq!(seen(&base.join("accents-ours")), seen(&cli));
    // only normalisation folds now: the case twins keep our checkout
    let twins = add(&root, &base, "twins-fast", "twins");
    assert_eq!(twins.method, CheckoutMethod::Git2Parallel, "{twins:?}");
}
