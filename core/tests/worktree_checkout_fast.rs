//! The worktree checkout: registration through libgit2 plus our parallel checkout, checked with
//! the git CLI to be indistinguishable from `git worktree add`; the cases that go through the git
//! CLI instead; errors that leave nothing behind.

mod worktree_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::checkout::CheckoutMethod;
use vibetrees_core::worktree::git;
use worktree_support::{git, setup};

#[path = "worktree_checkout_fast/errors.rs"]
mod errors;
#[path = "worktree_checkout_fast/hooks.rs"]
mod hooks;
#[path = "worktree_checkout_fast/objects.rs"]
mod objects;

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A repository on `main` with nested folders, an executable, a symlink, an empty file, a file
/// bigger than one write, unusual names and a submodule entry (gitlink).
fn repo() -> (tempfile::TempDir, PathBuf) {
    setup();
    let tmp = tempfile::Builder::new().prefix("vt-co-").tempdir().unwrap();
    let root = tmp.path().join("app");
    for i in 0..300 {
        write(
            &root.join(format!("src/d{}/e{}/f{i}.js", i % 7, i % 13)),
            format!("export const v{i} = {i};\n").as_bytes(),
        );
    }
    write(&root.join("bin/run.sh"), b"#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        root.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write(&root.join("empty.txt"), b"");
    write(&root.join("big.bin"), &vec![7u8; 3 << 20]);
    write(&root.join("with space/ünïcødé ✓.md"), b"hi\n");
    write(&root.join("a-b"), b"sorts before a/b\n");
    write(&root.join("a/b"), b"index order\n");
    std::os::unix::fs::symlink("src/d1", root.join("link-to-dir")).unwrap();
    std::os::unix::fs::symlink("../empty.txt", root.join("bin/link")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    let head = git(&root, &["rev-parse", "HEAD"]);
    // a submodule entry pointing at some commit (never fetched)
    git(
        &root,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{},vendor/sub", head.trim()),
        ],
    );
    git(&root, &["commit", "-q", "-m", "submodule entry"]);
    (tmp, root)
}

fn add(root: &Path, name: &str) -> vibetrees_core::Result<git::AddedWorktree> {
    git(root, &["branch", name, "main"]);
    let parent = root.join(".worktrees");
    std::fs::create_dir_all(&parent).unwrap();
    block_on(git::add_worktree(root, &parent.join(name), name, 2))
}

/// Every file and folder under `dir`, relative, `/`-separated.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|p| format!("{name}/{p}")));
        }
        out.push(name);
    }
    out
}

/// The data of extension `sig` of the index file `index` (version 2 or 3), if it has one.
fn index_extension(index: &Path, sig: &[u8; 4]) -> Option<Vec<u8>> {
    let b = std::fs::read(index).unwrap();
    assert_eq!(&b[..4], b"DIRC");
    let be32 = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let version = be32(4);
    assert!(version == 2 || version == 3, "index version {version}");
    let mut at = 12;
    for _ in 0..be32(8) {
        let flags = u16::from_be_bytes(b[at + 60..at + 62].try_into().unwrap());
        let fixed = if version == 3 && flags & 0x4000 != 0 {
            64
        } else {
            62
        };
        let start = at + fixed;
        let name_len = b[start..].iter().position(|&c| c == 0).unwrap();
        at += (fixed + name_len + 8) & !7;
    }
    while at + 20 < b.len() {
        let size = be32(at + 4);
        if &b[at..at + 4] == sig {
            return Some(b[at + 8..at + 8 + size].to_vec());
        }
        at += 8 + size;
    }
    None
}

fn registrations_on_disk(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join(".git/worktrees"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_fast_checkout_is_indistinguishable_from_git_worktree_add() {
    let (_tmp, root) = repo();
    let added = add(&root, "feat").unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel, "{added:?}");
    let wt = std::fs::canonicalize(root.join(".worktrees/feat")).unwrap();

    // registered, locked while being created
    let list = git(&root, &["worktree", "list", "--porcelain"]);
    let block = list
        .split("\n\n")
        .find(|b| b.contains(&format!("worktree {}", wt.display())))
        .unwrap_or_else(|| panic!("not listed:\n{list}"));
    assert!(block.contains("branch refs/heads/feat"), "{block}");
    assert!(
        block.contains(&format!(
            "locked {} (pid {})",
            git::CREATING_REASON,
            std::process::id()
        )),
        "{block}"
    );
    git::unlock(&git::open(&root).unwrap(), "feat").unwrap();
    let list = git(&root, &["worktree", "list", "--porcelain"]);
    assert!(!list.contains("locked"), "{list}");

    // clean, on the branch, the same files with the same modes as the commit
    assert_eq!(
        git(&wt, &["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
    assert_eq!(git(&wt, &["diff", "--stat"]), "");
    // stat data right: diff-files reports stat-dirty entries without looking at contents
    assert_eq!(git(&wt, &["diff-files", "--name-only"]), "");
    assert_eq!(
        git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "feat"
    );
    assert_eq!(
        git(&wt, &["rev-parse", "HEAD"]),
        git(&root, &["rev-parse", "main"])
    );
    let ls_files: Vec<String> = git(&wt, &["ls-files", "-s"])
        .lines()
        .map(|l| l.replace(" 0\t", "\t"))
        .collect();
    let ls_tree: Vec<String> = git(&root, &["ls-tree", "-r", "main"])
        .lines()
        .map(|l| {
            let (meta, path) = l.split_once('\t').unwrap();
            let f: Vec<&str> = meta.split(' ').collect();
            format!("{} {}\t{path}", f[0], f[2])
        })
        .collect();
    assert_eq!(ls_files, ls_tree);
    assert!(
        ls_files
            .iter()
            .any(|l| l.starts_with("100755 ") && l.ends_with("bin/run.sh"))
    );
    assert!(
        ls_files
            .iter()
            .any(|l| l.starts_with("160000 ") && l.ends_with("vendor/sub"))
    );
    let mode = std::fs::metadata(wt.join("bin/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "exec bits: {mode:o}");
    let mode = std::fs::metadata(wt.join("empty.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0, "no exec bits: {mode:o}");
    assert_eq!(
        std::fs::read_link(wt.join("link-to-dir")).unwrap(),
        Path::new("src/d1")
    );
    assert_eq!(
        std::fs::read_link(wt.join("bin/link")).unwrap(),
        Path::new("../empty.txt")
    );
    assert!(wt.join("vendor/sub").is_dir());
    assert_eq!(std::fs::read(wt.join("big.bin")).unwrap().len(), 3 << 20);
    assert_eq!(
        std::fs::read_to_string(wt.join("with space/ünïcødé ✓.md")).unwrap(),
        "hi\n"
    );

    // the registration's files are written as the git CLI writes them
    git(&root, &["branch", "by-cli", "main"]);
    let cli_wt = root.join(".worktrees/by-cli");
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "--lock",
            "--reason",
            "r",
            "--",
            &cli_wt.to_string_lossy(),
            "by-cli",
        ],
    );
    let cli_wt = std::fs::canonicalize(cli_wt).unwrap();
    let gd = root.join(".git/worktrees");
    let listing = |dir: &Path| {
        let mut v: Vec<String> = walk(dir).into_iter().filter(|p| p != "locked").collect();
        v.sort();
        v
    };
    assert_eq!(listing(&gd.join("feat")), listing(&gd.join("by-cli")));
    let log_messages = |name: &str| -> Vec<String> {
        std::fs::read_to_string(gd.join(name).join("logs/HEAD"))
            .unwrap()
            .lines()
            .map(|l| {
                let (ids, rest) = l.split_at(82);
                let msg = rest.split_once('\t').map(|(_, m)| m).unwrap_or("");
                format!("{ids}|{msg}")
            })
            .collect()
    };
    assert_eq!(log_messages("feat"), log_messages("by-cli"));
    for f in ["commondir", "HEAD", "ORIG_HEAD", "gitdir", "locked"] {
        let ours = std::fs::read_to_string(gd.join("feat").join(f)).ok();
        let theirs = std::fs::read_to_string(gd.join("by-cli").join(f)).ok();
        if f == "locked" {
            assert!(ours.is_none(), "unlocked");
            assert_eq!(theirs.as_deref(), Some("r\n"));
            continue;
        }
        let norm = |s: Option<String>, name: &str, dir: &Path| {
            s.unwrap()
                .replace(&dir.display().to_string(), "<wt>")
                .replace(name, "<name>")
        };
        assert_eq!(
            norm(ours, "feat", &wt),
            norm(theirs, "by-cli", &cli_wt),
            "{f}"
        );
    }
    let norm_dotgit = |p: &Path, name: &str| {
        std::fs::read_to_string(p.join(".git"))
            .unwrap()
            .replace(name, "<name>")
    };
    assert_eq!(norm_dotgit(&wt, "feat"), norm_dotgit(&cli_wt, "by-cli"));

    // the index's cache-tree (TREE extension) is the CLI's, and right: `write-tree` trusts it
    let ours = index_extension(&gd.join("feat/index"), b"TREE").expect("our cache-tree");
    let theirs = index_extension(&gd.join("by-cli/index"), b"TREE").expect("the CLI's");
    assert_eq!(ours, theirs);
    assert_eq!(
        git(&wt, &["write-tree"]),
        git(&root, &["rev-parse", "main^{tree}"])
    );

    // the CLI can work in it and remove it
    write(&wt.join("new.txt"), b"x\n");
    git(&wt, &["add", "new.txt"]);
    git(&wt, &["commit", "-q", "-m", "in the worktree"]);
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&wt, &["diff", "--name-only", "main", "HEAD"]),
        "new.txt\n"
    );
    git(&root, &["fsck", "--no-dangling", "--no-progress"]);
    git(&root, &["worktree", "remove", &wt.to_string_lossy()]);
    assert!(!wt.exists());
    assert!(!git(&root, &["worktree", "list"]).contains("feat"));
}

#[test]
fn a_taken_registration_name_gets_a_numeric_suffix_like_the_cli() {
    let (_tmp, root) = repo();
    std::fs::create_dir_all(root.join(".git/worktrees/dup")).unwrap();
    git(&root, &["branch", "dup", "main"]);
    let other = root.join("elsewhere");
    std::fs::create_dir_all(&other).unwrap();
    let added = block_on(git::add_worktree(&root, &other.join("dup"), "dup", 1)).unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel);
    assert!(root.join(".git/worktrees/dup1/gitdir").exists());
    let wt = other.join("dup");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "dup"
    );
}

#[test]
fn attributes_in_the_tree_go_through_the_git_cli() {
    for at in [".gitattributes", "src/d1/.gitattributes"] {
        let (_tmp, root) = repo();
        write(&root.join(at), b"*.js text eol=crlf\n");
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "attributes"]);
        let added = add(&root, "attr").unwrap();
        assert_eq!(added.method, CheckoutMethod::GitCli, "{at}");
        assert!(
            added.cli_because.unwrap().contains(".gitattributes"),
            "{at}"
        );
        let wt = root.join(".worktrees/attr");
        // the CLI applied the attribute
        let dir = Path::new(at).parent().unwrap();
        let sample = std::fs::read_dir(wt.join(dir).join(if at.starts_with("src") {
            "e0"
        } else {
            "src/d0/e0"
        }))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
        assert!(
            std::fs::read(&sample).unwrap().ends_with(b"\r\n"),
            "{sample:?}"
        );
        assert_eq!(git(&wt, &["status", "--porcelain"]), "", "{at}");
        // one registration, made by the CLI (ours was removed before)
        assert_eq!(registrations_on_disk(&root), vec!["attr".to_string()]);
        assert!(
            git(&root, &["worktree", "list", "--porcelain"]).contains("locked vibetrees: creating")
        );
    }
}

#[test]
fn conversion_config_goes_through_the_git_cli() {
    for (k, v) in [
        ("core.autocrlf", "true"),
        ("filter.lfs.smudge", "git-lfs smudge -- %f"),
        ("core.symlinks", "false"),
        ("core.sparseCheckout", "true"),
    ] {
        let (_tmp, root) = repo();
        git(&root, &["config", k, v]);
        let added = add(&root, "conf").unwrap();
        assert_eq!(added.method, CheckoutMethod::GitCli, "{k}");
        assert!(added.cli_because.is_some(), "{k}");
    }
}

#[test]
fn the_manager_uses_the_fast_checkout_by_default_and_says_so() {
    let p = worktree_support::project(None);
    p.warm_cache();
    let m = vibetrees_core::worktree::WorktreeManager::new(p.options()).unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized("fast", "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let vibetrees_core::worktree::CreateOutcome::Created(w) = out else {
        panic!("expected a new worktree")
    };
    assert_eq!(w.steps["git-worktree-add"]["checkout"], "git2-parallel");
    // the checkout's phases: in the step's output, and as spans inside the step in the trace
    let phases = w.steps["git-worktree-add"]["checkoutPhasesMs"]
        .as_object()
        .unwrap();
    let mut names: Vec<&str> = phases.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["files", "index", "register"], "{phases:?}");
    let history = vibetrees_core::worktree::history::History::open(&p.history).unwrap();
    let trace = history
        .trace("fast")
        .unwrap()
        .expect("the creation's trace");
    let trace: serde_json::Value = serde_json::from_str(&trace).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let span = |name: &str| {
        let e = events
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in the trace"));
        let ts = e["ts"].as_f64().unwrap();
        (ts, ts + e["dur"].as_f64().unwrap())
    };
    let step = span("git-worktree-add");
    let mut last_end = step.0;
    for phase in ["checkout-register", "checkout-files", "checkout-index"] {
        let (start, end) = span(phase);
        assert!(
            start >= last_end - 1.0 && end <= step.1 + 1.0,
            "{phase} inside the step, in order"
        );
        last_end = end;
    }
    let wt = p.root.join(".worktrees/fast");
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    assert_eq!(git(&wt, &["diff-files", "--name-only"]), "");
    assert!(wt.join("node_modules").is_dir());
    assert!(
        !p.worktree_list().contains("locked"),
        "{}",
        p.worktree_list()
    );
}

#[test]
fn any_thread_count_writes_the_same_tree_and_an_empty_tree_is_fine() {
    use vibetrees_core::worktree::checkout::{CheckoutError, checkout_tree};
    let (tmp, root) = repo();
    let repo = git::open(&root).unwrap();
    let tree = repo.revparse_single("main^{tree}").unwrap().id();
    let (mut listings, mut trees) = (Vec::new(), Vec::new());
    for threads in [1, 2, 3, 8] {
        let dest = tmp.path().join(format!("t{threads}"));
        std::fs::create_dir(&dest).unwrap();
        let written = checkout_tree(repo.commondir(), tree, &dest, threads)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let ext = vibetrees_core::worktree::checkout::cache_tree_extension(&written.trees);
        trees.push(ext.expect("a whole tree"));
        let listing: Vec<(Vec<u8>, u32, String)> = written
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.mode, e.id.to_string()))
            .collect();
        assert!(listing.windows(2).all(|w| w[0].0 < w[1].0), "index order");
        listings.push(listing);
    }
    assert!(listings.windows(2).all(|w| w[0] == w[1]));
    assert!(trees.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        listings[0].len(),
        git(&root, &["ls-tree", "-r", "main"]).lines().count()
    );
    let empty = repo.treebuilder(None).unwrap().write().unwrap();
    let dest = tmp.path().join("empty");
    std::fs::create_dir(&dest).unwrap();
    assert!(
        checkout_tree(repo.commondir(), empty, &dest, 4)
            .unwrap()
            .entries
            .is_empty()
    );
    // a file in the way: a clean error, not a hang
    let dest = tmp.path().join("blocked");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("src"), "in the way").unwrap();
    match checkout_tree(repo.commondir(), tree, &dest, 2) {
        Err(CheckoutError::Failed(e)) => assert!(e.to_string().contains("src"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn attributes_that_change_nothing_on_checkout_keep_the_fast_path() {
    let (_tmp, root) = repo();
    let harmless = b"* text=auto eol=lf\n*.png binary\ndocs/** linguist-documentation\n";
    write(&root.join(".gitattributes"), harmless);
    write(
        &root.join("src/d2/.gitattributes"),
        b"*.js -diff whitespace=tab\n",
    );
    write(&root.join("crlf.txt"), b"stored\r\nwith crlf\r\n");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "harmless attributes"]);
    let added = add(&root, "calm").unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel, "{added:?}");
    let wt = root.join(".worktrees/calm");
    assert_eq!(
        git(&wt, &["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
    assert_eq!(git(&wt, &["diff-files", "--name-only"]), "");
    // byte for byte what the git CLI writes
    git(&root, &["branch", "calm-cli", "main"]);
    let cli = root.join(".worktrees/calm-cli");
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "--",
            &cli.to_string_lossy(),
            "calm-cli",
        ],
    );
    for f in [
        "crlf.txt",
        ".gitattributes",
        "src/d2/.gitattributes",
        "src/d2/e2/f2.js",
    ] {
        assert_eq!(
            std::fs::read(wt.join(f)).unwrap(),
            std::fs::read(cli.join(f)).unwrap(),
            "{f}"
        );
    }
    // info/attributes that converts: the CLI
    write(&root.join(".git/info/attributes"), b"*.txt eol=crlf\n");
    let added = add(&root, "info").unwrap();
    assert_eq!(added.method, CheckoutMethod::GitCli);
    assert!(
        std::fs::read(root.join(".worktrees/info/crlf.txt"))
            .unwrap()
            .ends_with(b"\r\n")
    );
}
