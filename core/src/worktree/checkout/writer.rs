//! The writer: every blob of a tree written into the new worktree's folder by N threads sharing
//! the work by whole folders (work stealing), each with its own `Repository` (git2's is not
//! `Sync`). Loose objects are read by [`super::loose`], the others through git2. Files are made
//! with `openat` relative to open directory fds (`O_EXCL|O_NOFOLLOW|O_CLOEXEC`), folders with
//! `mkdirat`, links with `symlinkat`, and their stat data kept for the index. Blobs reach their
//! files through [`super::blob`] with bounded memory, whatever their size; a tree deeper than
//! `core.maxTreeDepth` is refused before its folder is made, as git refuses it.
//!
//! Owns: the files and folders under the destination folder, and the scheduling of that work.
//! Must not touch: anything outside the destination (every path is relative to its fd, no link is
//! followed), the index or the registration; it decides nothing about eligibility beyond what it
//! meets mid-way (asking [`super::eligibility`]).

use super::blob::{DEFAULT_BIG_FILE_THRESHOLD, Objects};
use super::eligibility::{attributes_change_checkout, unsafe_name};
use super::folding::NameFolding;
use super::loose::{ObjectKind, parse_tree};
use super::{CheckedOut, CheckoutError, Written, WrittenTree};
use crate::{Error, Result};
use git2::{Oid, Repository};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A folder to write: made by `mkdirat(at, name)` when it has a name (the top folder has none
/// and is `at` itself), its path prefix (`a/b/`, empty at the top) and its tree. Holding the
/// parent's fd rather than its own keeps the open fds few however many folders wait.
struct Unit {
    at: Arc<OwnedFd>,
    name: Option<Box<[u8]>>,
    prefix: Vec<u8>,
    /// Components of `prefix` (0 at the top).
    depth: usize,
    tree: Oid,
}

/// What the writer obeys from the repository's config, read once per checkout.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// `core.bigFileThreshold` (git's default 512 MiB): blobs above it are streamed.
    big_file_threshold: u64,
    /// `core.maxTreeDepth` (git's default 2048): git refuses a tree nested deeper than this below
    /// the top one (a folder path of more components; `a/b/file` is at depth 2).
    max_tree_depth: usize,
    /// Names the destination's filesystem (or the repository's config) takes for one: a folder
    /// with two such entries goes to the git CLI.
    folding: NameFolding,
}

/// `core.maxTreeDepth`'s default in git (2048; its documentation said 4096 until git 2.46, but
/// the code has used 2048 since the setting appeared, except 512 in MSVC builds).
pub const DEFAULT_MAX_TREE_DEPTH: usize = 2048;

impl Settings {
    /// The repository's settings, and how names compare in `dest`'s parent folder (`folding`,
    /// or probed there when `None`).
    fn read(repo: &Repository, dest: &Path, folding: Option<NameFolding>) -> Result<Self> {
        let cfg = repo
            .config()
            .and_then(|mut c| c.snapshot())
            .map_err(|e| Error::git("read git config", e))?;
        Ok(Self {
            big_file_threshold: cfg
                .get_i64("core.bigFileThreshold")
                .ok()
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(DEFAULT_BIG_FILE_THRESHOLD),
            max_tree_depth: cfg
                .get_i64("core.maxTreeDepth")
                .ok()
                .map(|v| usize::try_from(v).unwrap_or(0))
                .unwrap_or(DEFAULT_MAX_TREE_DEPTH),
            folding: NameFolding::from_config(&cfg).or(folding.unwrap_or_else(|| probe(dest))),
        })
    }
}

/// How names compare in the folder that holds `dest` (the worktree base). When it cannot be
/// probed, names are taken to fold both ways: a tree with such twins then goes to the git CLI.
fn probe(dest: &Path) -> NameFolding {
    let base = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    NameFolding::of_folder(base).unwrap_or_else(|e| {
        tracing::warn!("cannot probe how {} compares names: {e}", base.display());
        NameFolding {
            case: true,
            unicode: true,
        }
    })
}

/// How [`checkout_tree_with`] checks out.
#[derive(Debug, Clone, Default)]
pub struct CheckoutOptions {
    /// Writer threads (0 counts as 1).
    pub workers: usize,
    /// Which differences between names the destination's filesystem ignores; `None`: probed
    /// in the destination's parent folder (the worktree base), once per folder and process.
    /// `Some` declares it instead (tests declare a case-insensitive base this way). The
    /// repository's `core.ignorecase`/`core.precomposeunicode` add to either.
    pub folding: Option<NameFolding>,
    /// The git program that streams big packed blobs (`git cat-file`); `None`: `git` on `PATH`.
    /// A creation passes its `gitProgram` setting.
    pub git_program: Option<std::path::PathBuf>,
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

struct Worker<'a> {
    shared: &'a Shared,
    /// This thread's index (its deque in [`Shared`]).
    me: usize,
    settings: Settings,
    objects: Objects<'a>,
    out: Written,
}

impl Worker<'_> {
    /// Reads object `id`, which must be a `kind`, whole into `buf` (see [`Objects::read`]).
    fn read_object(
        &mut self,
        id: Oid,
        kind: ObjectKind,
        buf: &mut Vec<u8>,
        what: impl Fn() -> String,
    ) -> Result<()> {
        self.objects.read(id, kind, buf, what)
    }

    fn write_tree(
        &mut self,
        dir: &Arc<OwnedFd>,
        prefix: &[u8],
        depth: usize,
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
        // two entries that are one file on this filesystem: git's checkout writes one over the
        // other and warns; that is the git CLI's to do
        let folding = self.settings.folding;
        if let Some((a, b)) = folding.collision(entries.iter().map(|e| e.name)) {
            let p = String::from_utf8_lossy(prefix);
            let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
            return Err(CheckoutError::NeedsCli(format!(
                "{p}{a} and {p}{b} are one file here ({folding})"
            )));
        }
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
                    // git refuses a tree nested deeper than core.maxTreeDepth below the top:
                    // so does this, before making the folder or reading its tree
                    if depth + 1 > self.settings.max_tree_depth {
                        return Err(too_deep(&path, self.settings.max_tree_depth).into());
                    }
                    path.push(b'/');
                    let unit = Unit {
                        at: Arc::clone(dir),
                        name: Some(name.into()),
                        prefix: path,
                        depth: depth + 1,
                        tree: id,
                    };
                    self.shared.push(self.me, unit);
                }
                0o100000 => {
                    let exec = mode & 0o111 != 0;
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
                    self.objects
                        .write_blob(id, &file, || String::from_utf8_lossy(&path).into_owned())?;
                    let stat = rustix::fs::fstat(&file).map_err(|e| io("stat", prefix, name, e))?;
                    drop(file);
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
        self.write_tree(&dir, &unit.prefix, unit.depth, unit.tree)
    }
}

/// The error for folder `path` (no trailing `/`), nested one level deeper than `max` (git's
/// `core.maxTreeDepth`).
fn too_deep(path: &[u8], max: usize) -> Error {
    let shown = String::from_utf8_lossy(&path[..path.len().min(120)]);
    let cut = if path.len() > 120 { "..." } else { "" };
    Error::Git {
        context: format!("tree {shown}{cut}"),
        message: format!(
            "deeper than core.maxTreeDepth ({max}) allows: git refuses to check it out, and so \
             does this"
        ),
    }
}

/// Writes every entry of `tree` (from the repository at `git_dir`) into the existing, empty
/// folder `dest` with `workers` threads: blobs with their mode (0644/0755 under the umask),
/// symlinks as symlinks, submodules as empty folders. Returns what was written, sorted in index
/// order, with its stat data. Stops at a nested `.gitattributes` or at two names that are one
/// file on the destination's filesystem ([`CheckoutError::NeedsCli`]); on any error, what was
/// written so far stays (the caller removes the folder). How names compare there is probed
/// ([`checkout_tree_with`] can declare it).
pub fn checkout_tree(
    git_dir: &Path,
    tree: Oid,
    dest: &Path,
    workers: usize,
) -> Result<Written, CheckoutError> {
    let options = CheckoutOptions {
        workers,
        folding: None,
        git_program: None,
    };
    checkout_tree_with(git_dir, tree, dest, &options)
}

/// [`checkout_tree`] with [`CheckoutOptions`].
pub fn checkout_tree_with(
    git_dir: &Path,
    tree: Oid,
    dest: &Path,
    options: &CheckoutOptions,
) -> Result<Written, CheckoutError> {
    let workers = options.workers.max(1);
    let root = rustix::fs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io_path("open", dest, e.into()))?;
    // the first thread's repository, opened here to read the settings
    let repo = Repository::open(git_dir)
        .map_err(|e| Error::git(format!("open repository {}", git_dir.display()), e))?;
    let settings = Settings::read(&repo, dest, options.folding)?;
    let git_program = options.git_program.clone().unwrap_or_else(|| "git".into());
    let first = Mutex::new(Some(repo));
    let shared = Shared::new(
        workers,
        Unit {
            at: Arc::new(root),
            name: None,
            prefix: Vec::new(),
            depth: 0,
            tree,
        },
    );
    let results: Vec<Result<Written, CheckoutError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let (shared, first, git_program) = (&shared, &first, &git_program);
                std::thread::Builder::new()
                    .name(format!("vt-checkout-{i}"))
                    .spawn_scoped(s, move || -> Result<Written, CheckoutError> {
                        let first = (i == 0).then(|| first.lock().unwrap().take()).flatten();
                        let repo = match first.map_or_else(|| Repository::open(git_dir), Ok) {
                            Ok(r) => r,
                            Err(e) => {
                                let what = format!("open repository {}", git_dir.display());
                                shared.fail(CheckoutError::Failed(Error::git(what, e)));
                                return Ok(Written::default());
                            }
                        };
                        let objects = match Objects::new(
                            &repo,
                            git_dir,
                            git_program,
                            settings.big_file_threshold,
                        ) {
                            Ok(o) => o,
                            Err(e) => {
                                shared.fail(CheckoutError::Failed(e));
                                return Ok(Written::default());
                            }
                        };
                        let mut w = Worker {
                            shared,
                            me: i,
                            settings,
                            objects,
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
