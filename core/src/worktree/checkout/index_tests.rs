//! Tests of `index.rs` and `index_read.rs` on real repositories, against the index files git
//! itself writes (`git read-tree`, `git update-index --refresh`): what we read is what git
//! lists, what we write (new or updated) is git's file byte for byte, and what is not ours
//! (other versions, other extensions, a conflict, a damaged checksum) is refused.

use super::{CheckedOut, IndexFile, Written, WrittenTree, write_index, write_updated_index};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository in a temporary folder, with a temporary HOME for git.
struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    home: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, home) = (tmp.path().join("repo"), tmp.path().join("home"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let r = Repo {
            _tmp: tmp,
            dir,
            home,
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    fn command(&self, index: Option<&Path>, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("git");
        c.current_dir(&self.dir)
            .args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        if let Some(i) = index {
            c.env("GIT_INDEX_FILE", i);
        }
        c.output().unwrap()
    }

    /// Runs git (on the index file `index` when given); its output; panics when it fails.
    fn git_on(&self, index: Option<&Path>, args: &[&str]) -> String {
        let out = self.command(index, args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn git(&self, args: &[&str]) -> String {
        self.git_on(None, args)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// The index git writes for `commit` with the files' stat data: `read-tree` (entries and a
    /// whole cache-tree), then `update-index --refresh`, in the file `name` beside the repo.
    fn git_index(&self, commit: &str, name: &str) -> PathBuf {
        let index = self.dir.parent().unwrap().join(name);
        self.git_on(Some(&index), &["read-tree", commit]);
        self.git_on(Some(&index), &["update-index", "-q", "--refresh"]);
        index
    }

    /// What we record for `path` as it is in the worktree now, with `mode` and `id`.
    fn checked_out(&self, path: &[u8], mode: u32, id: git2::Oid) -> CheckedOut {
        let p = self.dir.join(std::str::from_utf8(path).unwrap());
        CheckedOut {
            path: path.to_vec(),
            mode,
            id,
            stat: rustix::fs::lstat(&p).unwrap(),
        }
    }
}

/// A project with files, an executable, a link, nested folders, and names whose index order is
/// not their folder order (`dir.txt`, `dir/...`, `dir0`).
fn project() -> (Repo, String) {
    let r = Repo::new();
    for (p, t) in [
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("dir/c.txt", "c\n"),
        ("dir/sub/d.txt", "d\n"),
        ("dir0", "zero\n"),
        ("gone/only.txt", "only\n"),
        ("x", "a file, then a folder\n"),
        ("run.sh", "#!/bin/sh\n"),
    ] {
        r.write(p, t);
    }
    let run = r.dir.join("run.sh");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("a.txt", r.dir.join("link")).unwrap();
    let a = r.commit("A");
    (r, a)
}

fn trees(i: &IndexFile) -> Vec<WrittenTree> {
    i.cache_tree().values().cloned().collect()
}

#[test]
fn reads_what_git_lists_and_writes_back_the_same_bytes() {
    let (r, a) = project();
    let index = r.git_index(&a, "a.index");
    let read = IndexFile::read(&index).unwrap();
    // entries as `git ls-files -s` lists them, stat data as lstat gives it
    let mut listed = String::new();
    for i in 0..read.len() {
        let e = read.entry(i);
        let path = String::from_utf8_lossy(e.path);
        listed.push_str(&format!("{:o} {} 0\t{path}\n", e.mode, e.id));
        let st = rustix::fs::lstat(r.dir.join(&*path)).unwrap();
        assert_eq!(
            e.mtime,
            (st.st_mtime as u32, st.st_mtime_nsec as u32),
            "{path}"
        );
        assert_eq!(
            e.ctime,
            (st.st_ctime as u32, st.st_ctime_nsec as u32),
            "{path}"
        );
        assert_eq!(
            (e.ino, e.size),
            (st.st_ino as u32, st.st_size as u32),
            "{path}"
        );
        assert_eq!((e.uid, e.gid), (st.st_uid, st.st_gid), "{path}");
    }
    assert_eq!(listed, r.git_on(Some(&index), &["ls-files", "-s"]));
    // the cache-tree read-tree primed: every folder, the top one with every entry
    let t = read.cache_tree();
    assert_eq!(t.len(), 4, "{:?}", t.keys());
    assert_eq!(
        t[&b""[..]].id.to_string(),
        r.git(&["rev-parse", "HEAD^{tree}"]).trim()
    );
    assert_eq!(t[&b"dir/"[..]].files, 1);
    // unchanged, it is written back byte for byte (entries copied, cache-tree re-made)
    let out = r.dir.parent().unwrap().join("out.index");
    write_updated_index(&out, &read, &[], Vec::new(), &trees(&read)).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&index).unwrap());
    assert!(!out.with_extension("index.vibetrees-tmp").exists());
}

#[test]
fn a_new_index_is_what_git_and_libgit2_write() {
    let (r, a) = project();
    let index = r.git_index(&a, "a.index");
    let read = IndexFile::read(&index).unwrap();
    let written = Written {
        entries: (0..read.len())
            .map(|i| {
                let e = read.entry(i);
                r.checked_out(e.path, e.mode, e.id)
            })
            .collect(),
        trees: trees(&read),
    };
    let out = r.dir.parent().unwrap().join("new.index");
    write_index(&out, &written).unwrap();
    let ours = std::fs::read(&out).unwrap();
    assert_eq!(
        ours,
        std::fs::read(&index).unwrap(),
        "git's index for the same files"
    );
    // libgit2's writer (what wrote the entries before): the same entries, no extension
    let by_git2 = r.dir.parent().unwrap().join("git2.index");
    let mut i = git2::Index::open(&by_git2).unwrap();
    for e in &written.entries {
        let st = &e.stat;
        i.add(&git2::IndexEntry {
            ctime: git2::IndexTime::new(st.st_ctime as i32, st.st_ctime_nsec as u32),
            mtime: git2::IndexTime::new(st.st_mtime as i32, st.st_mtime_nsec as u32),
            dev: st.st_dev as u32,
            ino: st.st_ino as u32,
            mode: e.mode,
            uid: st.st_uid,
            gid: st.st_gid,
            file_size: st.st_size as u32,
            id: e.id,
            flags: 0,
            flags_extended: 0,
            path: e.path.clone(),
        })
        .unwrap();
    }
    i.write().unwrap();
    let theirs = std::fs::read(&by_git2).unwrap();
    let body = theirs.len() - 20;
    assert_eq!(&ours[..body], &theirs[..body]);
    assert_eq!(&ours[body..body + 4], b"TREE");
}

#[test]
fn an_updated_index_is_the_one_git_writes_for_the_new_commit() {
    let (r, a) = project();
    let a_index = r.git_index(&a, "a.index");
    r.write("a.txt", "a, changed\n");
    std::fs::set_permissions(
        r.dir.join("b.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::remove_dir_all(r.dir.join("gone")).unwrap();
    std::fs::remove_dir_all(r.dir.join("dir/sub")).unwrap();
    r.write("dir/sub", "a folder, then a file\n");
    std::fs::remove_file(r.dir.join("x")).unwrap();
    r.write("x/y", "in a folder now\n");
    r.write("dir.txt", "before dir/ in the index\n");
    r.write("new/deep/e.txt", "e\n");
    std::fs::remove_file(r.dir.join("link")).unwrap();
    std::os::unix::fs::symlink("b.txt", r.dir.join("link")).unwrap();
    let b = r.commit("B");
    let b_index = r.git_index(&b, "b.index");
    let changed = r.git(&["diff-tree", "-r", "--no-renames", "--name-only", &a, &b]);
    let changed: Vec<&[u8]> = changed.lines().map(str::as_bytes).collect();
    assert_eq!(changed.len(), 10, "{changed:?}");

    let old = IndexFile::read(&a_index).unwrap();
    let new = IndexFile::read(&b_index).unwrap();
    let added: Vec<CheckedOut> = (0..new.len())
        .map(|i| new.entry(i))
        .filter(|e| changed.contains(&e.path))
        .map(|e| r.checked_out(e.path, e.mode, e.id))
        .rev() // any order: they are sorted
        .collect();
    assert_eq!(added.len(), 7);
    write_updated_index(&a_index, &old, &changed, added, &trees(&new)).unwrap();
    assert_eq!(
        std::fs::read(&a_index).unwrap(),
        std::fs::read(&b_index).unwrap()
    );
    let tree = r.git_on(Some(&a_index), &["write-tree"]);
    assert_eq!(tree.trim(), r.git(&["rev-parse", "HEAD^{tree}"]).trim());
}

/// The error `IndexFile::read` gives for the index file `path`.
fn refused(path: &Path) -> String {
    IndexFile::read(path).unwrap_err().to_string()
}

#[test]
fn other_versions_and_a_damaged_checksum_are_refused() {
    let (r, a) = project();
    let index = r.git_index(&a, "a.index");
    let damaged = r.dir.parent().unwrap().join("damaged.index");
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[12 + 8] ^= 1; // an entry's mtime
    std::fs::write(&damaged, &bytes).unwrap();
    assert!(
        refused(&damaged).contains("checksum"),
        "{}",
        refused(&damaged)
    );
    bytes.truncate(31);
    std::fs::write(&damaged, &bytes).unwrap();
    assert!(refused(&damaged).contains("not an index file"));

    let v4 = r.git_index(&a, "v4.index");
    r.git_on(Some(&v4), &["update-index", "--index-version", "4"]);
    assert!(refused(&v4).contains("index version 4"), "{}", refused(&v4));
    // skip-worktree is an extended flag: git writes version 3
    let v3 = r.git_index(&a, "v3.index");
    r.git_on(Some(&v3), &["update-index", "--skip-worktree", "a.txt"]);
    assert!(refused(&v3).contains("index version 3"), "{}", refused(&v3));
}

/// Extensions git may add to an index, none of which we write: refused, whatever they are
/// (`UNTR` and `link` are optional to git, `REUC` too; kept as they are, some would be wrong
/// once entries move).
#[test]
fn extensions_but_the_cache_tree_and_conflicts_are_refused() {
    let (r, a) = project();
    let untracked = r.git_index(&a, "untr.index");
    r.git_on(
        Some(&untracked),
        &[
            "-c",
            "core.untrackedCache=true",
            "update-index",
            "--force-untracked-cache",
        ],
    );
    r.git_on(
        Some(&untracked),
        &["-c", "core.untrackedCache=true", "status"],
    );
    assert!(
        refused(&untracked).contains("\"UNTR\""),
        "{}",
        refused(&untracked)
    );
    let split = r.git_index(&a, "split.index");
    r.git_on(Some(&split), &["update-index", "--split-index"]);
    assert!(refused(&split).contains("\"link\""), "{}", refused(&split));

    // a conflict: entries of stages 1 to 3; resolved, a `REUC` extension
    r.git(&["checkout", "-q", "-b", "side"]);
    r.write("a.txt", "side\n");
    r.commit("side");
    r.git(&["checkout", "-q", "main"]);
    r.write("a.txt", "main\n");
    r.commit("main");
    assert!(!r.command(None, &["merge", "-q", "side"]).status.success());
    let index = r.dir.join(".git/index");
    assert!(refused(&index).contains("unmerged"), "{}", refused(&index));
    r.write("a.txt", "both\n");
    r.git(&["add", "a.txt"]);
    assert!(refused(&index).contains("\"REUC\""), "{}", refused(&index));
}
