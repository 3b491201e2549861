//! A worktree's registration through libgit2 and a parallel checkout of our own over git2's object
//! database, as an alternative to `git worktree add` (see [`super::git::add_worktree`], which
//! chooses between them, and docs/worktree.md for the measurements).
//!
//! - [`register`]: `git_worktree_add` (locked, checkout as a dry run), then the registration's
//!   files written exactly as the git CLI writes them (`commondir` relative, the lock reason).
//! - [`checkout_tree`]: every blob of a tree written with N threads, each with its own
//!   `Repository` (git2's is not `Sync`), sharing the work by whole folders (work stealing);
//!   loose objects read by [`super::loose`], the others through git2; files made with `openat`
//!   relative to open directory fds (`O_EXCL|O_NOFOLLOW|O_CLOEXEC`), their stat data kept for the
//!   index.
//! - [`write_index`]: the worktree's index with full stat data, so `git status` is clean at once,
//!   and its cache-tree ([`cache_tree_extension`]), as `git worktree add` writes it.
//! - [`cli_reason`]: why a repository needs the git CLI's checkout (attributes, filters, eol
//!   conversion, sparse checkout, no symlinks, ...), if it does; the `post-checkout` hook git
//!   would run, run the way git runs it.

use super::loose::{LooseObjects, ObjectKind, parse_tree};
use crate::{Error, Result};
use git2::{Binding, Oid, Repository};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// How a worktree's files were checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutMethod {
    /// Registration by libgit2, files by [`checkout_tree`] (our parallel checkout).
    Git2Parallel,
    /// `git worktree add` (registration and checkout by the git CLI).
    GitCli,
}

impl CheckoutMethod {
    /// The name used in the task output (`"git2-parallel"` or `"git-cli"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMethod::Git2Parallel => "git2-parallel",
            CheckoutMethod::GitCli => "git-cli",
        }
    }
}

/// One checked-out path with the stat data of what was written (for the index).
#[derive(Debug, Clone)]
pub struct CheckedOut {
    /// Path relative to the worktree, `/`-separated.
    pub path: Vec<u8>,
    /// Index mode: `0o100644`, `0o100755`, `0o120000` or `0o160000`.
    pub mode: u32,
    /// The blob (or, for a gitlink, the commit).
    pub id: Oid,
    /// `lstat` of what was written.
    pub stat: rustix::fs::Stat,
}

/// A folder [`checkout_tree`] wrote: what the index's cache-tree (`TREE` extension) records
/// of it, as `git worktree add` records it (git's `prime_cache_tree`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenTree {
    /// Path relative to the worktree with a trailing `/` (empty at the top).
    pub prefix: Vec<u8>,
    /// The tree it was written from.
    pub id: Oid,
    /// Its entries that are not folders (files, symlinks, submodules).
    pub files: usize,
    /// Names of its subfolders, in tree order.
    pub subtrees: Vec<Box<[u8]>>,
}

/// What [`checkout_tree`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// Every entry, sorted in index order, with its stat data.
    pub entries: Vec<CheckedOut>,
    /// Every folder (any order).
    pub trees: Vec<WrittenTree>,
}

/// Why [`checkout_tree`] stopped without an I/O or object error.
#[derive(Debug)]
pub enum CheckoutError {
    /// A `.gitattributes` that changes the checkout (eol, filters, ...; see
    /// [`attributes_change_checkout`]) or an unusual entry was found: the caller must use the git
    /// CLI.
    NeedsCli(String),
    /// A real failure (object missing, disk full, a path in the way, ...).
    Failed(Error),
}

impl From<Error> for CheckoutError {
    fn from(e: Error) -> Self {
        CheckoutError::Failed(e)
    }
}

/// The `post-checkout` hook `git worktree add` would run, if any: in `core.hooksPath` (a relative
/// one from the main worktree's top, where git resolves it) or the common dir's `hooks/`; only an
/// executable file (git skips others with a hint). Husky projects have one (`.husky/_`).
pub fn post_checkout_hook(repo: &Repository) -> Option<PathBuf> {
    let cfg = repo.config().and_then(|mut c| c.snapshot()).ok()?;
    let common = repo.commondir().to_path_buf();
    let dir = match cfg.get_string("core.hooksPath").ok() {
        Some(p) => {
            let p = expand_home(&p);
            if p.is_absolute() {
                p
            } else {
                repo.workdir().unwrap_or(&common).join(p)
            }
        }
        None => common.join("hooks"),
    };
    let hook = dir.join("post-checkout");
    let meta = std::fs::metadata(&hook).ok()?;
    use std::os::unix::fs::PermissionsExt;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(hook)
}

/// Runs the `post-checkout` hook as `git worktree add` does after its checkout: in the new
/// worktree, arguments `<null oid> <commit> 1`, `GIT_DIR` and `GIT_WORK_TREE` removed from its
/// environment, no stdin. A non-zero exit is [`Error::Git`] with the hook's output, as the CLI
/// would fail.
pub fn run_post_checkout_hook(hook: &Path, worktree: &Path, commit: Oid) -> Result<()> {
    let out = std::process::Command::new(hook)
        .args([
            Oid::ZERO_SHA1.to_string(),
            commit.to_string(),
            "1".to_string(),
        ])
        .current_dir(worktree)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Process {
            program: hook.display().to_string(),
            message: format!("cannot run the post-checkout hook: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(Error::Git {
        context: "post-checkout hook".into(),
        message: format!("{} ({})", text.trim(), out.status),
    })
}

/// Why the repository needs the git CLI's checkout for `tree`, or `None` when ours is exactly
/// equivalent: no attributes that change the checkout ([`attributes_change_checkout`]) in the
/// root `.gitattributes`, `info/attributes`, the global and system attribute files; no
/// `core.autocrlf`/`core.eol` conversion, no `filter.*`, no sparse
/// checkout or per-worktree config, `core.symlinks` not false, `core.ignorecase` not true, no
/// `submodule.recurse` (a `post-checkout` hook is run by us: [`run_post_checkout_hook`]). Nested
/// `.gitattributes` are read during the
/// checkout ([`CheckoutError::NeedsCli`]).
pub fn cli_reason(repo: &Repository, tree: Oid) -> Result<Option<String>> {
    let cfg = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map_err(|e| Error::git("read git config", e))?;
    let s = |k: &str| cfg.get_string(k).ok();
    let b = |k: &str| cfg.get_bool(k).ok();
    if let Some(v) = s("core.autocrlf")
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0"
        )
    {
        return Ok(Some(format!("core.autocrlf={v}")));
    }
    if let Some(v) = s("core.eol")
        && !matches!(v.to_ascii_lowercase().as_str(), "lf" | "native")
    {
        return Ok(Some(format!("core.eol={v}")));
    }
    for (key, unsafe_when) in [
        ("core.sparseCheckout", true),
        ("extensions.worktreeConfig", true),
        ("core.symlinks", false),
        ("core.ignorecase", true),
        ("submodule.recurse", true),
    ] {
        if b(key) == Some(unsafe_when) {
            return Ok(Some(format!("{key}={unsafe_when}")));
        }
    }
    {
        let mut entries = cfg
            .entries(Some("^filter\\."))
            .map_err(|e| Error::git("read git config", e))?;
        if let Some(Ok(e)) = entries.next() {
            return Ok(Some(format!(
                "config {} is set",
                e.name().unwrap_or("filter.*")
            )));
        }
    }
    let common = repo.commondir().to_path_buf();
    let mut attr_files = vec![common.join("info/attributes"), "/etc/gitattributes".into()];
    match s("core.attributesFile") {
        Some(p) => attr_files.push(expand_home(&p)),
        None => {
            let xdg = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
            if let Some(x) = xdg {
                attr_files.push(x.join("git/attributes"));
            }
        }
    }
    for f in attr_files {
        if let Ok(text) = std::fs::read(&f)
            && attributes_change_checkout(&text)
        {
            return Ok(Some(format!(
                "attributes file {} changes the checkout",
                f.display()
            )));
        }
    }
    let t = repo
        .find_tree(tree)
        .map_err(|e| Error::git(format!("tree {tree}"), e))?;
    if let Some(e) = t.get_name(".gitattributes") {
        let text = (e.filemode() & 0o170000 == 0o100000)
            .then(|| repo.find_blob(e.id()).ok())
            .flatten();
        if text.is_none_or(|b| attributes_change_checkout(b.content())) {
            return Ok(Some(".gitattributes changes the checkout".into()));
        }
    }
    Ok(None)
}

/// True if gitattributes `text` can change the bytes a checkout writes here (where
/// [`cli_reason`] has ruled out `core.autocrlf`, `core.eol` other than lf and any `filter.*`
/// config): `eol` set to anything but `lf`, `ident`, `working-tree-encoding`, `filter`, or a
/// macro definition (`[attr]`). `text`, `binary`, `diff`, `merge`, `linguist-*`, `export-*`,
/// `whitespace` and the like change nothing on checkout (with the native eol being LF, text files
/// are written as stored). Conservative: any token after the pattern is read as an attribute.
pub fn attributes_change_checkout(text: &[u8]) -> bool {
    for line in text.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("[attr]") {
            return true;
        }
        for token in line.split_whitespace().skip(1) {
            let set = !token.starts_with(['-', '!']);
            let (key, value) = token
                .trim_start_matches(['-', '!'])
                .split_once('=')
                .unwrap_or((token.trim_start_matches(['-', '!']), ""));
            let changes = match key {
                "eol" => set && value != "lf",
                "ident" | "filter" | "working-tree-encoding" => set,
                _ => false,
            };
            if changes {
                return true;
            }
        }
    }
    false
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => Path::new(&h).join(rest),
        _ => PathBuf::from(p),
    }
}

/// True if `base` can be a registration name exactly as the git CLI would name it (the CLI
/// sanitizes other names; those go through the CLI).
pub fn plain_name(base: &str) -> bool {
    !base.is_empty()
        && !base.starts_with('.')
        && !base.ends_with(".lock")
        && !base.contains("..")
        && base
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Removes the registrations libgit2 was writing for one of our processes when it was killed:
/// an empty `locked` (our reason is written right after libgit2 returns, under the same lock)
/// with libgit2's absolute `commondir`, or without a `gitdir`. Call it holding
/// [`registration_lock`]: no live process of ours is writing one then. (The git CLI's own
/// unfinished registrations say `initializing` in `locked` and are left alone.)
fn sweep_unfinished_registrations(worktrees: &Path) {
    let Ok(rd) = std::fs::read_dir(worktrees) else {
        return;
    };
    for e in rd.flatten() {
        let dir = e.path();
        let Ok(lock) = std::fs::read(dir.join("locked")) else {
            // killed right after libgit2's mkdir (the git CLI writes `locked` at once, so a
            // folder with neither file for seconds is not one of its registrations)
            let stale = std::fs::symlink_metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|d| d.as_secs() >= 2));
            if stale && !dir.join("gitdir").exists() && e.file_type().is_ok_and(|t| t.is_dir()) {
                tracing::warn!(
                    "removing {} (a registration left half-written)",
                    dir.display()
                );
                let _ = std::fs::remove_dir_all(&dir);
            }
            continue;
        };
        if !lock.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let commondir_absolute = std::fs::read(dir.join("commondir"))
            .map(|c| c.is_empty() || c.starts_with(b"/"))
            .unwrap_or(true);
        let no_gitdir = std::fs::read(dir.join("gitdir"))
            .map(|g| g.iter().all(u8::is_ascii_whitespace))
            .unwrap_or(true);
        if commondir_absolute || no_gitdir {
            tracing::warn!(
                "removing {} (a registration left half-written)",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// The lock our processes take to create a branch or register a worktree, one at a time
/// (`<common dir>/vibetrees-worktree-add.lock`, an flock: released when the holder exits, even
/// killed). Held until the returned file is dropped; a second take in the same process blocks.
pub fn registration_lock(common: &Path) -> Result<std::fs::File> {
    let lock_path = common.join("vibetrees-worktree-add.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .and_then(|f| {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
            Ok(f)
        })
        .map_err(|e| Error::io_path("lock", &lock_path, e))
}
/// Registers the worktree `path` on local branch `branch` through libgit2 (`git_worktree_add`,
/// locked, checkout as a dry run) with the git CLI's naming (the folder's basename, then
/// `<base>1`, `<base>2`, ... when taken) and rewrites the registration's files the way the git CLI
/// writes them; `lock_reason` goes into its `locked` file. `path` must not exist (its parent must).
/// Returns the registration's name. On failure nothing of it is left.
pub fn register(repo: &Repository, path: &Path, branch: &str, lock_reason: &str) -> Result<String> {
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| plain_name(n))
        .ok_or_else(|| {
            Error::InvalidArgument(format!("worktree folder name of {}", path.display()))
        })?;
    let reference = repo
        .find_branch(branch, git2::BranchType::Local)
        .map_err(|e| Error::git(format!("branch {branch:?}"), e))?
        .into_reference();
    let common = std::fs::canonicalize(repo.commondir())
        .map_err(|e| Error::io_path("resolve", repo.commondir(), e))?;
    let worktrees = common.join("worktrees");
    // One registration at a time among our processes: libgit2's "is the branch checked out
    // elsewhere" reads every registration, and one that another process is writing at that
    // instant made it see a branch as checked out. Held until this function returns.
    let _registering = registration_lock(&common)?;
    sweep_unfinished_registrations(&worktrees);
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("path {}", path.display())))?;
    let mut counter = 0u32;
    loop {
        let name = if counter == 0 {
            base.to_string()
        } else {
            format!("{base}{counter}")
        };
        counter += 1;
        let gitdir = worktrees.join(&name);
        if std::fs::symlink_metadata(&gitdir).is_ok() {
            continue;
        }
        let c_name = CString::new(name.as_bytes()).expect("plain name");
        let no_path = c"\x01vibetrees-no-path";
        let no_paths = [no_path.as_ptr()];
        // SAFETY: options initialised by libgit2's own init function, then filled with pointers
        // (the reference) that outlive the call; `out` is freed right after.
        let rc = unsafe {
            let mut opts: libgit2_sys::git_worktree_add_options = std::mem::zeroed();
            let rc = libgit2_sys::git_worktree_add_options_init(
                &mut opts,
                libgit2_sys::GIT_WORKTREE_ADD_OPTIONS_VERSION,
            );
            if rc != 0 {
                return Err(Error::git(
                    "worktree add options",
                    git2::Error::last_error(rc),
                ));
            }
            opts.lock = 1;
            opts.reference = reference.raw();
            // Dry run: libgit2 only diffs (no file, no index); the files are ours to write. The
            // diff is limited to a path that sorts before any tree entry, so libgit2 reads only
            // the root tree instead of walking the whole tree (~25 ms for 4k files).
            opts.checkout_options.checkout_strategy =
                GIT_CHECKOUT_DRY_RUN | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
            opts.checkout_options.paths = libgit2_sys::git_strarray {
                strings: no_paths.as_ptr() as *mut *mut std::ffi::c_char,
                count: 1,
            };
            let mut out: *mut libgit2_sys::git_worktree = std::ptr::null_mut();
            let rc = libgit2_sys::git_worktree_add(
                &mut out,
                repo.raw(),
                c_name.as_ptr(),
                c_path.as_ptr(),
                &opts,
            );
            if !out.is_null() {
                libgit2_sys::git_worktree_free(out);
            }
            rc
        };
        if rc != 0 {
            let err = git2::Error::last_error(rc);
            let gitdir_taken = err.message().contains(&*gitdir.to_string_lossy())
                && err.message().contains("exists");
            if gitdir_taken && counter < 10_000 {
                continue; // another process took this name in between
            }
            // libgit2 made `.git/worktrees/<name>` before it failed on the folder: remove it
            // (it did not exist a moment ago; no other process would use a registration
            // without its `gitdir` file).
            if !gitdir_taken && !gitdir.join("gitdir").exists() {
                let _ = std::fs::remove_dir_all(&gitdir);
            }
            return Err(Error::git(
                format!("register worktree {}", path.display()),
                err,
            ));
        }
        // Rewritten by rename, never truncated in place: a reader (git, libgit2) never sees
        // an empty file.
        let replace = |file: &Path, bytes: &[u8]| -> std::io::Result<()> {
            let mut tmp = file.as_os_str().to_owned();
            tmp.push(".vibetrees-tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, file)
        };
        let written = (|| -> std::io::Result<()> {
            let wt = std::fs::canonicalize(path)?;
            replace(
                &gitdir.join("locked"),
                format!("{lock_reason}\n").as_bytes(),
            )?;
            replace(&gitdir.join("commondir"), b"../..\n")?;
            let mut g = wt.join(".git").into_os_string();
            g.push("\n");
            replace(&gitdir.join("gitdir"), g.as_bytes())?;
            let mut d = std::ffi::OsString::from("gitdir: ");
            d.push(gitdir.as_os_str());
            d.push("\n");
            replace(&wt.join(".git"), d.as_bytes())?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&gitdir);
            let _ = std::fs::remove_dir_all(path);
            return Err(Error::io_path("write worktree registration", &gitdir, e));
        }
        return Ok(name);
    }
}

/// Removes what [`register`] and [`checkout_tree`] made: the folder `path` (made by them, so
/// entirely theirs) and the registration `name`.
pub fn unregister(repo: &Repository, path: &Path, name: &str) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_dir_all(path).map_err(|e| Error::io_path("remove", path, e))?;
    }
    let gitdir = repo.commondir().join("worktrees").join(name);
    if gitdir.exists() {
        std::fs::remove_dir_all(&gitdir).map_err(|e| Error::io_path("remove", &gitdir, e))?;
    }
    Ok(())
}

/// libgit2 1.9's `GIT_CHECKOUT_DRY_RUN` (checkout.h; libgit2-sys 0.18 does not name it): the
/// checkout computes what it would do and writes nothing, neither files nor index.
const GIT_CHECKOUT_DRY_RUN: u32 = 1 << 24;
/// libgit2's `GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH`: the checkout's paths are exact paths.
const GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH: u32 = 1 << 13;

/// A folder to write: made by `mkdirat(at, name)` when it has a name (the top folder has none
/// and is `at` itself), its path prefix (`a/b/`, empty at the top) and its tree. Holding the
/// parent's fd rather than its own keeps the open fds few however many folders wait.
struct Unit {
    at: Arc<OwnedFd>,
    name: Option<Box<[u8]>>,
    prefix: Vec<u8>,
    tree: Oid,
}

/// Work shared by the checkout threads: work stealing by whole folders. Each thread keeps the
/// folders it found in its own deque and takes the newest (depth-first, near what it just
/// wrote); an idle thread steals the oldest of another (the shallowest: the biggest subtree).
/// A folder's files are all written by one thread (two threads creating files side by side in
/// the same folder contend inside ext4). Before this, a thread handed a folder over only when
/// it met one while the other was idle: the idle thread slept ~400 times per 4k-file checkout
/// and the two threads used 1.4 cores.
struct Shared {
    deques: Vec<Mutex<std::collections::VecDeque<Unit>>>,
    /// Folders pushed and not yet written (a folder counts until all its files are written;
    /// its subfolders count on their own).
    pending: AtomicUsize,
    /// Where idle threads sleep until a folder is pushed or all is written.
    sleep: Mutex<()>,
    wake: Condvar,
    sleepers: AtomicUsize,
    stop: AtomicBool,
    failure: Mutex<Option<CheckoutError>>,
}

impl Shared {
    fn new(workers: usize, top: Unit) -> Self {
        let deques: Vec<_> = (0..workers.max(1))
            .map(|_| Mutex::new(std::collections::VecDeque::new()))
            .collect();
        deques[0].lock().unwrap().push_back(top);
        Self {
            deques,
            pending: AtomicUsize::new(1),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
            sleepers: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    /// Stops every thread; the first real failure is kept (it wins over a request for the CLI).
    fn fail(&self, e: CheckoutError) {
        self.stop.store(true, Ordering::SeqCst);
        let mut f = self.failure.lock().unwrap();
        if f.is_none()
            || matches!(e, CheckoutError::Failed(_))
                && !matches!(*f, Some(CheckoutError::Failed(_)))
        {
            *f = Some(e);
        }
        drop(f);
        let _g = self.sleep.lock().unwrap();
        self.wake.notify_all();
    }

    /// Thread `me` found folder `unit`: into its deque, and an idle thread is woken.
    fn push(&self, me: usize, unit: Unit) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.deques[me].lock().unwrap().push_back(unit);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = self.sleep.lock().unwrap();
            self.wake.notify_one();
        }
    }

    /// A folder taken by [`Shared::next`] is written (or failed).
    fn done_one(&self) {
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _g = self.sleep.lock().unwrap();
            self.wake.notify_all();
        }
    }

    fn steal(&self, me: usize) -> Option<Unit> {
        if let Some(u) = self.deques[me].lock().unwrap().pop_back() {
            return Some(u);
        }
        let n = self.deques.len();
        (1..n).find_map(|k| self.deques[(me + k) % n].lock().unwrap().pop_front())
    }

    /// The next folder for thread `me`, or `None` when all is written (or on stop).
    fn next(&self, me: usize) -> Option<Unit> {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            if let Some(u) = self.steal(me) {
                return Some(u);
            }
            if self.pending.load(Ordering::SeqCst) == 0 {
                return None;
            }
            let g = self.sleep.lock().unwrap();
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            // checked again after announcing ourselves: a push or the last `done_one` from now
            // on takes the `sleep` lock to wake us, so it cannot be missed
            let nothing = !self.stop.load(Ordering::SeqCst)
                && self.pending.load(Ordering::SeqCst) != 0
                && self.deques.iter().all(|d| d.lock().unwrap().is_empty());
            if nothing {
                let _unused = self
                    .wake
                    .wait_timeout(g, std::time::Duration::from_millis(50))
                    .unwrap();
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn io(what: &str, prefix: &[u8], name: &[u8], e: impl Into<std::io::Error>) -> Error {
    let mut p = String::from_utf8_lossy(prefix).into_owned();
    p.push_str(&String::from_utf8_lossy(name));
    Error::io(format!("{what} {p}"), e.into())
}

/// A tree entry name git itself would refuse to check out (or that could escape the folder).
fn unsafe_name(name: &[u8]) -> bool {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    let trimmed = {
        let mut t = &lower[..];
        while let [rest @ .., b' ' | b'.'] = t {
            t = rest;
        }
        t
    };
    trimmed == b".git" || lower.starts_with(b"git~") || name.contains(&b'\\')
}

struct Worker<'a> {
    shared: &'a Shared,
    /// This thread's index (its deque in [`Shared`]).
    me: usize,
    odb: git2::Odb<'a>,
    /// Loose objects read by us (see [`super::loose`]); `None` when the folder did not open.
    loose: Option<LooseObjects>,
    /// The current blob's content (reused between files).
    blob: Vec<u8>,
    out: Written,
}

impl Worker<'_> {
    /// Reads object `id`, which must be a `kind`, into `buf`: a loose object by ourselves,
    /// anything else (packed, in an alternate, damaged) through git2, which names the error.
    fn read_object(
        &mut self,
        id: Oid,
        kind: ObjectKind,
        buf: &mut Vec<u8>,
        what: impl Fn() -> String,
    ) -> Result<()> {
        if let Some(loose) = self.loose.as_mut()
            && loose.read(id, buf) == Some(kind)
        {
            return Ok(());
        }
        let obj = self.odb.read(id).map_err(|e| Error::git(what(), e))?;
        let expected = match kind {
            ObjectKind::Blob => git2::ObjectType::Blob,
            ObjectKind::Tree => git2::ObjectType::Tree,
            ObjectKind::Commit => git2::ObjectType::Commit,
            ObjectKind::Tag => git2::ObjectType::Tag,
        };
        if obj.kind() != expected {
            return Err(Error::Git {
                context: what(),
                message: format!("object {id} is a {}, not a {expected}", obj.kind()),
            });
        }
        buf.clear();
        buf.extend_from_slice(obj.data());
        Ok(())
    }

    fn write_tree(
        &mut self,
        dir: &Arc<OwnedFd>,
        prefix: &[u8],
        tree: Oid,
    ) -> Result<(), CheckoutError> {
        if self.shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut data = Vec::new();
        let what = || format!("read tree {}", String::from_utf8_lossy(prefix));
        self.read_object(tree, ObjectKind::Tree, &mut data, what)?;
        let entries = parse_tree(&data).ok_or_else(|| Error::Git {
            context: what(),
            message: format!("tree {tree} is malformed"),
        })?;
        self.out.trees.push(WrittenTree {
            prefix: prefix.to_vec(),
            id: tree,
            files: entries
                .iter()
                .filter(|e| e.mode & 0o170000 != 0o040000)
                .count(),
            subtrees: entries
                .iter()
                .filter(|e| e.mode & 0o170000 == 0o040000)
                .map(|e| e.name.into())
                .collect(),
        });
        for entry in entries {
            let name = entry.name;
            if unsafe_name(name) {
                return Err(CheckoutError::NeedsCli(format!(
                    "unusual path {}{}",
                    String::from_utf8_lossy(prefix),
                    String::from_utf8_lossy(name)
                )));
            }
            let mut path = Vec::with_capacity(prefix.len() + name.len());
            path.extend_from_slice(prefix);
            path.extend_from_slice(name);
            if name == b".gitattributes" {
                let mut text = Vec::new();
                let harmless = entry.mode & 0o170000 == 0o100000
                    && self
                        .read_object(entry.id, ObjectKind::Blob, &mut text, String::new)
                        .is_ok()
                    && !attributes_change_checkout(&text);
                if !harmless {
                    return Err(CheckoutError::NeedsCli(format!(
                        "{} changes the checkout",
                        String::from_utf8_lossy(&path)
                    )));
                }
            }
            let (mode, id) = (entry.mode, entry.id);
            let fd = dir.as_fd();
            match mode & 0o170000 {
                0o040000 => {
                    path.push(b'/');
                    let unit = Unit {
                        at: Arc::clone(dir),
                        name: Some(name.into()),
                        prefix: path,
                        tree: id,
                    };
                    self.shared.push(self.me, unit);
                }
                0o100000 => {
                    let exec = mode & 0o111 != 0;
                    let mut blob = std::mem::take(&mut self.blob);
                    self.read_object(id, ObjectKind::Blob, &mut blob, || {
                        format!("read blob {}", String::from_utf8_lossy(&path))
                    })?;
                    let file = rustix::fs::openat(
                        fd,
                        name,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(if exec { 0o777 } else { 0o666 }),
                    )
                    .map_err(|e| io("create", prefix, name, e))?;
                    let mut data = &blob[..];
                    while !data.is_empty() {
                        let n = rustix::io::write(&file, data)
                            .map_err(|e| io("write", prefix, name, e))?;
                        data = &data[n..];
                    }
                    let stat = rustix::fs::fstat(&file).map_err(|e| io("stat", prefix, name, e))?;
                    drop(file);
                    self.blob = blob;
                    self.out.entries.push(CheckedOut {
                        path,
                        mode: if exec { 0o100755 } else { 0o100644 },
                        id,
                        stat,
                    });
                }
                0o120000 => {
                    let mut target = Vec::new();
                    self.read_object(id, ObjectKind::Blob, &mut target, || {
                        format!("read link {}", String::from_utf8_lossy(&path))
                    })?;
                    let target = std::ffi::OsStr::from_bytes(&target);
                    rustix::fs::symlinkat(target, fd, name)
                        .map_err(|e| io("create symlink", prefix, name, e))?;
                    self.record_made(fd, prefix, name, path, 0o120000, id)?;
                }
                0o160000 => {
                    // a submodule: an empty folder, as `git worktree add` leaves it
                    rustix::fs::mkdirat(fd, name, Mode::from_raw_mode(0o777))
                        .map_err(|e| io("create directory", prefix, name, e))?;
                    self.record_made(fd, prefix, name, path, 0o160000, id)?;
                }
                _ => {
                    return Err(CheckoutError::NeedsCli(format!(
                        "entry {} has mode {mode:o}",
                        String::from_utf8_lossy(&path)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Records entry `name` of `dir` (just made: a symlink or a submodule's folder) with its
    /// `lstat`, for the index.
    fn record_made(
        &mut self,
        dir: std::os::fd::BorrowedFd<'_>,
        prefix: &[u8],
        name: &[u8],
        path: Vec<u8>,
        mode: u32,
        id: Oid,
    ) -> Result<()> {
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io("stat", prefix, name, e))?;
        self.out.entries.push(CheckedOut {
            path,
            mode,
            id,
            stat,
        });
        Ok(())
    }

    /// Writes folders (its own, else stolen) until all are written.
    fn run(&mut self) {
        while let Some(unit) = self.shared.next(self.me) {
            if let Err(e) = self.write_unit(unit) {
                self.shared.fail(e);
            }
            self.shared.done_one();
        }
    }

    /// Makes the unit's folder (unless it is the top one), then writes its entries.
    fn write_unit(&mut self, unit: Unit) -> Result<(), CheckoutError> {
        let dir = match &unit.name {
            None => unit.at,
            Some(name) => {
                let parent = &unit.prefix[..unit.prefix.len() - name.len() - 1];
                rustix::fs::mkdirat(&unit.at, &name[..], Mode::from_raw_mode(0o777))
                    .map_err(|e| io("create directory", parent, name, e))?;
                let fd = rustix::fs::openat(
                    &unit.at,
                    &name[..],
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io("open directory", parent, name, e))?;
                Arc::new(fd)
            }
        };
        self.write_tree(&dir, &unit.prefix, unit.tree)
    }
}

/// Writes every entry of `tree` (from the repository at `git_dir`) into the existing, empty
/// folder `dest` with `workers` threads: blobs with their mode (0644/0755 under the umask),
/// symlinks as symlinks, submodules as empty folders. Returns what was written, sorted in index
/// order, with its stat data. Stops at a nested `.gitattributes` ([`CheckoutError::NeedsCli`]);
/// on any error, what was written so far stays (the caller removes the folder).
pub fn checkout_tree(
    git_dir: &Path,
    tree: Oid,
    dest: &Path,
    workers: usize,
) -> Result<Written, CheckoutError> {
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io_path("open", dest, e.into()))?;
    let shared = Shared::new(
        workers,
        Unit {
            at: Arc::new(root),
            name: None,
            prefix: Vec::new(),
            tree,
        },
    );
    let workers = workers.max(1);
    let results: Vec<Result<Written, CheckoutError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let shared = &shared;
                std::thread::Builder::new()
                    .name(format!("vt-checkout-{i}"))
                    .spawn_scoped(s, move || -> Result<Written, CheckoutError> {
                        let repo = match Repository::open(git_dir) {
                            Ok(r) => r,
                            Err(e) => {
                                let what = format!("open repository {}", git_dir.display());
                                shared.fail(CheckoutError::Failed(Error::git(what, e)));
                                return Ok(Written::default());
                            }
                        };
                        let odb = match repo.odb() {
                            Ok(o) => o,
                            Err(e) => {
                                shared
                                    .fail(CheckoutError::Failed(Error::git("object database", e)));
                                return Ok(Written::default());
                            }
                        };
                        let mut w = Worker {
                            shared,
                            me: i,
                            odb,
                            loose: LooseObjects::open(&repo.commondir().join("objects")).ok(),
                            blob: Vec::new(),
                            out: Written::default(),
                        };
                        w.run();
                        Ok(std::mem::take(&mut w.out))
                    })
                    .map_err(|e| {
                        shared.fail(CheckoutError::Failed(Error::io(
                            "start a checkout thread",
                            e,
                        )))
                    })
                    .ok()
            })
            .collect();
        handles
            .into_iter()
            .flatten()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(CheckoutError::Failed(Error::Internal(
                        "checkout thread panicked".into(),
                    )))
                })
            })
            .collect()
    });
    if let Some(f) = shared.failure.into_inner().unwrap() {
        return Err(f);
    }
    let mut all = Written::default();
    for r in results {
        let r = r?;
        all.entries.extend(r.entries);
        all.trees.extend(r.trees);
    }
    all.entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(all)
}

/// Writes the index at `index_path` (a new file) holding what was written (entries in index
/// order, with their full stat data) and its cache-tree, as the git CLI's checkout would.
pub fn write_index(index_path: &Path, written: &Written) -> Result<()> {
    write_index_entries(index_path, &written.entries)?;
    let Some(ext) = cache_tree_extension(&written.trees) else {
        return Ok(());
    };
    append_extension(index_path, &ext)
        .map_err(|e| Error::io_path("write the index's cache-tree", index_path, e))
}

/// The index's `TREE` extension (signature, size, data) for the folders written, as git's
/// `prime_cache_tree` + `cache_tree_write` make it: each folder in pre-order as
/// `<name>\0<entries> <subtrees>\n<tree id>`, its subfolders ordered by name length, then bytes.
/// `None` when the folders do not form one whole tree (nothing to record then).
pub fn cache_tree_extension(trees: &[WrittenTree]) -> Option<Vec<u8>> {
    use std::collections::HashMap;
    let by_prefix: HashMap<&[u8], &WrittenTree> =
        trees.iter().map(|t| (&t.prefix[..], t)).collect();
    if by_prefix.len() != trees.len() {
        return None;
    }
    // entries under each folder (its files and all its subfolders'), children first
    fn count<'a>(
        t: &'a WrittenTree,
        by_prefix: &HashMap<&[u8], &'a WrittenTree>,
        counts: &mut HashMap<&'a [u8], usize>,
    ) -> Option<usize> {
        let mut n = t.files;
        for sub in &t.subtrees {
            let mut p = t.prefix.clone();
            p.extend_from_slice(sub);
            p.push(b'/');
            let child = by_prefix.get(&p[..])?;
            n += count(child, by_prefix, counts)?;
        }
        counts.insert(&t.prefix[..], n);
        Some(n)
    }
    fn emit(
        t: &WrittenTree,
        name: &[u8],
        by_prefix: &HashMap<&[u8], &WrittenTree>,
        counts: &HashMap<&[u8], usize>,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(name);
        out.push(0);
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(num.format(counts[&t.prefix[..]]).as_bytes());
        out.push(b' ');
        out.extend_from_slice(num.format(t.subtrees.len()).as_bytes());
        out.push(b'\n');
        out.extend_from_slice(t.id.as_bytes());
        let mut subs: Vec<&[u8]> = t.subtrees.iter().map(|s| &s[..]).collect();
        subs.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        for sub in subs {
            let mut p = t.prefix.clone();
            p.extend_from_slice(sub);
            p.push(b'/');
            emit(by_prefix[&p[..]], sub, by_prefix, counts, out);
        }
    }
    let root = by_prefix.get(&b""[..])?;
    let mut counts = HashMap::with_capacity(trees.len());
    count(root, &by_prefix, &mut counts)?;
    if counts.len() != trees.len() {
        return None; // a folder outside the tree
    }
    let mut data = Vec::with_capacity(trees.len() * 48);
    emit(root, b"", &by_prefix, &counts, &mut data);
    let mut ext = Vec::with_capacity(data.len() + 8);
    ext.extend_from_slice(b"TREE");
    ext.extend_from_slice(&u32::try_from(data.len()).ok()?.to_be_bytes());
    ext.extend_from_slice(&data);
    Some(ext)
}

/// Adds extension `ext` (signature, size, data) at the end of the index file `path`, before its
/// trailing SHA-1, and recomputes that checksum; the file is replaced by rename.
fn append_extension(path: &Path, ext: &[u8]) -> std::io::Result<()> {
    let old = std::fs::read(path)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an index file");
    if old.len() < 12 + 20 || &old[..4] != b"DIRC" {
        return Err(bad());
    }
    let body = &old[..old.len() - 20];
    if sha1_smol::Sha1::from(body).digest().bytes() != old[old.len() - 20..] {
        return Err(bad());
    }
    let mut new = Vec::with_capacity(old.len() + ext.len());
    new.extend_from_slice(body);
    new.extend_from_slice(ext);
    let sum = sha1_smol::Sha1::from(&new[..]).digest().bytes();
    new.extend_from_slice(&sum);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".vibetrees-tmp");
    std::fs::write(&tmp, &new)?;
    std::fs::rename(&tmp, path)
}

/// The index's entries (see [`write_index`]), written by libgit2.
fn write_index_entries(index_path: &Path, entries: &[CheckedOut]) -> Result<()> {
    let mut index = git2::Index::open(index_path)
        .map_err(|e| Error::git(format!("open index {}", index_path.display()), e))?;
    for e in entries {
        let st = &e.stat;
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(st.st_ctime as i32, st.st_ctime_nsec as u32),
            mtime: git2::IndexTime::new(st.st_mtime as i32, st.st_mtime_nsec as u32),
            dev: st.st_dev as u32,
            ino: st.st_ino as u32,
            mode: e.mode,
            uid: st.st_uid,
            gid: st.st_gid,
            file_size: if e.mode == 0o160000 {
                0
            } else {
                st.st_size as u32
            },
            id: e.id,
            flags: 0,
            flags_extended: 0,
            path: e.path.clone(),
        };
        index.add(&entry).map_err(|e| {
            Error::git(
                format!("index entry {}", String::from_utf8_lossy(&entry.path)),
                e,
            )
        })?;
    }
    index
        .write()
        .map_err(|e| Error::git(format!("write index {}", index_path.display()), e))
}

/// Writes what `git worktree add` leaves beside HEAD in the registration `gitdir` after its
/// internal `reset --hard`: `ORIG_HEAD`, an empty `refs/`, and (unless `core.logAllRefUpdates` is
/// false) HEAD's reflog with the CLI's two entries. The reflog needs a committer identity
/// (`GIT_COMMITTER_NAME`/`EMAIL` or `user.name`/`user.email`); without one it is left out.
pub fn write_head_files(repo: &Repository, gitdir: &Path, commit: Oid) -> Result<()> {
    let io = |what: &str, p: &Path, e| Error::io_path(what, p, e);
    let orig = gitdir.join("ORIG_HEAD");
    std::fs::write(&orig, format!("{commit}\n")).map_err(|e| io("write", &orig, e))?;
    let refs = gitdir.join("refs");
    std::fs::create_dir_all(&refs).map_err(|e| io("create directory", &refs, e))?;
    let log_refs = repo
        .config()
        .and_then(|c| c.get_bool("core.logAllRefUpdates"))
        .unwrap_or(true);
    let ident = {
        let cfg = repo.config().ok();
        let get = |env: &str, key: &str| {
            std::env::var(env)
                .ok()
                .or_else(|| cfg.as_ref().and_then(|c| c.get_string(key).ok()))
        };
        match (
            get("GIT_COMMITTER_NAME", "user.name"),
            get("GIT_COMMITTER_EMAIL", "user.email"),
        ) {
            (Some(n), Some(m)) => git2::Signature::now(&n, &m).ok(),
            _ => None,
        }
    };
    if let (true, Some(sig)) = (log_refs, ident) {
        let t = sig.when();
        let off = t.offset_minutes();
        let sign = if off < 0 { '-' } else { '+' };
        let who = format!(
            "{} <{}> {} {sign}{:02}{:02}",
            String::from_utf8_lossy(sig.name_bytes()),
            String::from_utf8_lossy(sig.email_bytes()),
            t.seconds(),
            off.abs() / 60,
            off.abs() % 60
        );
        let zero = Oid::ZERO_SHA1;
        let logs = gitdir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| io("create directory", &logs, e))?;
        let log = logs.join("HEAD");
        std::fs::write(
            &log,
            format!("{zero} {commit} {who}\n{commit} {commit} {who}\treset: moving to HEAD\n"),
        )
        .map_err(|e| io("write", &log, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_git_would_refuse_go_to_the_cli() {
        for bad in [
            &b".git"[..],
            b".GIT",
            b".git. ",
            b"git~1",
            b"..",
            b".",
            b"",
            b"a\\b",
        ] {
            assert!(unsafe_name(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        for ok in [&b".gitignore"[..], b".github", b"src", b"a.git", b"git"] {
            assert!(!unsafe_name(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for changes in [
            &b"*.js text eol=crlf\n"[..],
            b"* ident\n",
            b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
            b"*.txt working-tree-encoding=UTF-16\n",
            b"[attr]mine eol=crlf\n",
            b"a eol\n",
        ] {
            assert!(
                attributes_change_checkout(changes),
                "{:?}",
                String::from_utf8_lossy(changes)
            );
        }
        for harmless in [
            &b"* text=auto eol=lf\n"[..],
            b"# comment eol=crlf\n\n*.png binary\n*.sh -crlf\n",
            b"docs/** linguist-documentation export-ignore -diff\n*.c whitespace=tab -ident !eol\n",
        ] {
            assert!(
                !attributes_change_checkout(harmless),
                "{:?}",
                String::from_utf8_lossy(harmless)
            );
        }
        assert!(plain_name("feature-x_1.2"));
        for bad in ["", ".hidden", "a..b", "x.lock", "sp ace", "ünï"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }
}
