//! Restore: materialize an entry as a node_modules folder, fast and all-or-nothing.
//!
//! Driven by the entry's listing (no directory reads of the cache), with every call relative to
//! open directory descriptors (`mkdirat`, `linkat`, `symlinkat`, `openat`), split over worker
//! threads by whole package folders (big ones split into their sub-folders), largest first.
//! The tree is built in a hidden sibling of the target (`.<name>.vt-restore-<pid>-<n>`) and renamed
//! into place (`RENAME_NOREPLACE`, or `RENAME_EXCHANGE` over an existing folder, which is then
//! deleted), so the target never holds a partial node_modules.
//!
//! With `verify` on (the default), each cached file's size, mtime and mode are checked against the
//! listing as it is linked: an entry mutated through a shared inode is never served; the restore
//! fails with [`Error::Cache`](crate::Error::Cache) naming the file, and the entry is evicted.

use super::fsops::{self, Placed, Plan, RestoreMethod};
use super::key::CacheKey;
use super::listing::{Listing, NodeKind};
use super::phases::{PhaseTime, Phases};
use super::store::{NodeModulesCache, cstr, io_err, path_cstr, unique_name};
use crate::progress::CountProgress;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, RenameFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Options of a restore.
#[derive(Clone, Default)]
pub struct RestoreOptions {
    /// How files are placed (default `auto`: hardlink, falling back per file to clone then copy).
    pub method: RestoreMethod,
    /// `(done, total)` counts of placed nodes, called at most ~20 times a second and once at the end.
    pub progress: Option<CountProgress>,
    /// Skip the per-file check against the listing (size, mtime, mode). Faster; then a mutated
    /// entry can be served. Off by default.
    pub skip_verify: bool,
    /// Refuse (instead of replacing) an existing target, even with `replace`.
    pub keep_existing: bool,
    /// Replace an existing target (a real `node_modules` folder: swapped out atomically, then
    /// deleted). Off by default: an existing target is refused ([`Error::AlreadyExists`]), and
    /// one that is not a `node_modules` folder always is ([`Error::InvalidArgument`]): see
    /// [`super::check_target`].
    pub replace: bool,
    /// Worker threads for this restore (default: the cache's).
    pub workers: Option<usize>,
    /// Profiler span id to nest this operation's spans under.
    pub parent_span: Option<String>,
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("method", &self.method)
            .field("progress", &self.progress.is_some())
            .field("skip_verify", &self.skip_verify)
            .field("keep_existing", &self.keep_existing)
            .field("workers", &self.workers)
            .finish()
    }
}

/// The report of one restore.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStats {
    /// The entry restored.
    pub key: CacheKey,
    /// The node_modules folder made.
    pub target: String,
    /// The method asked for.
    pub method: RestoreMethod,
    /// What the probe chose for most files: `hardlink`, `clone` or `copy`.
    pub method_used: String,
    /// Files hardlinked.
    pub linked: u64,
    /// Files cloned (reflink).
    pub cloned: u64,
    /// Files copied.
    pub copied: u64,
    /// Regular files.
    pub files: u64,
    /// Folders, the root included.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Bytes of regular files.
    pub bytes: u64,
    /// Worker threads used.
    pub workers: usize,
    /// Whether each file was checked against the listing.
    pub verified: bool,
    /// Whether an existing folder at the target was replaced.
    pub replaced_existing: bool,
    /// Wall time in milliseconds (the deletion of a replaced folder included).
    pub duration_ms: f64,
    /// Time of each phase.
    pub phases: Vec<PhaseTime>,
}

/// A failure inside a worker, turned into an [`Error`] by the caller.
enum Fault {
    Io {
        op: &'static str,
        node: usize,
        errno: Errno,
    },
    Mutated {
        node: usize,
        detail: String,
    },
}

/// A unit of work: fill folder node `dir` (already made) or make-and-fill it under a slot.
enum Job {
    /// Make folder `node` inside the folder of `slot`, then fill it recursively.
    Subtree {
        slot: usize,
        node: usize,
        weight: u64,
    },
    /// Place the given non-folder children of the folder of `slot`.
    Flat {
        slot: usize,
        nodes: Vec<usize>,
        weight: u64,
    },
}

impl Job {
    fn weight(&self) -> u64 {
        match self {
            Job::Subtree { weight, .. } | Job::Flat { weight, .. } => *weight,
        }
    }
}

struct Ctx<'a> {
    listing: &'a Listing,
    /// For files directly in node_modules (`.package-lock.json`, `.yarn-integrity`,
    /// `.modules.yaml`): package managers rewrite them in place, so `auto` never hardlinks them.
    root_plan: Plan,
    /// Open (cache folder, target folder) pairs of the folders the main thread made.
    slots: Vec<(OwnedFd, OwnedFd)>,
    jobs: Vec<Job>,
    next: AtomicUsize,
    plan: Plan,
    verify: bool,
    abort: AtomicBool,
    fault: Mutex<Option<Fault>>,
    fixups: Mutex<Vec<usize>>,
    linked: AtomicU64,
    cloned: AtomicU64,
    copied: AtomicU64,
    done: AtomicU64,
    total: u64,
    progress: Option<CountProgress>,
    start: Instant,
    last_report_ms: AtomicU64,
}

const PROGRESS_INTERVAL_MS: u64 = 50;
/// Files of one folder are never split over workers: two threads linking into one folder contend
/// on its lock.
const FLAT_CHUNK: usize = usize::MAX;

impl NodeModulesCache {
    /// Restores entry `key` as the node_modules folder `target` (its parent is created if needed).
    ///
    /// Errors: [`Error::NotFound`] when there is no entry (counted as a miss); [`Error::Cache`] when
    /// the entry was found mutated (it is then evicted; the message names the file);
    /// [`Error::AlreadyExists`] when `keep_existing` is set and `target` exists.
    pub fn restore(
        &self,
        key: &CacheKey,
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<RestoreStats> {
        let mut phases = Phases::start(
            self.profiler.as_deref(),
            "cache-restore",
            opts.parent_span.as_deref(),
        );
        let r = self.restore_inner(key, target, opts, &mut phases);
        phases.finish(r.as_ref().err());
        match &r {
            Ok(_) => self.record_outcome(true),
            Err(Error::NotFound(_)) => self.record_outcome(false),
            Err(_) => {}
        }
        r.map(|mut s| {
            s.duration_ms = phases.elapsed_ms();
            s.phases = std::mem::take(&mut phases.times);
            s
        })
    }

    fn restore_inner(
        &self,
        key: &CacheKey,
        target: &Path,
        opts: &RestoreOptions,
        phases: &mut Phases<'_>,
    ) -> Result<RestoreStats> {
        let (parent, name) = split_target(target)?;
        if !opts.keep_existing {
            super::target::check_target(target, opts.replace)?;
        }
        let (entry, listing) = phases.run("cache-restore-open", || {
            let entry = self
                .lock_entry(key, false, true)?
                .ok_or_else(|| Error::NotFound(format!("cache entry {key}")))?;
            let lpath = entry.path.join("listing.bin");
            let bytes = std::fs::read(&lpath).map_err(|e| Error::io_path("read", &lpath, e))?;
            let listing =
                Listing::parse(bytes).map_err(|e| Error::Cache(format!("entry {key}: {e}")))?;
            Ok((entry, listing))
        })?;
        if opts.keep_existing && std::fs::symlink_metadata(target).is_ok() {
            return Err(Error::AlreadyExists(format!(
                "{} (restore target; keep_existing is set)",
                target.display()
            )));
        }

        // The hidden sibling the tree is built in, and its cleaner.
        let tmp_name = unique_name(&format!(".{}.vt-restore", name));
        let tmp_path = parent.join(&tmp_name);
        let tmp_guard = TmpGuard(Some(tmp_path.clone()));
        let (parent_fd, tmp_fd, plan, probe_clone, (ctx_slots, jobs, plan_fixups), root_fixup) =
            phases.run("cache-restore-plan", || {
                std::fs::create_dir_all(&parent)
                    .map_err(|e| Error::io_path("create folder", &parent, e))?;
                clean_stale_siblings(&parent, &name);
                let parent_fd = fsops::open_path_dir(&parent)
                    .map_err(|e| Error::io_path("open", &parent, e))?;
                let root_mode = listing.nodes[0].mode;
                let tmp_c = cstr(&tmp_name);
                let root_fixup = fsops::make_dir(parent_fd.as_fd(), &tmp_c, root_mode)
                    .map_err(|e| io_err("create", &tmp_path, e))?;
                let tmp_fd = fsops::open_dir_path(parent_fd.as_fd(), &tmp_c)
                    .map_err(|e| io_err("open", &tmp_path, e))?;
                let scratch = fsops::open_path_dir(&self.entries_dir)
                    .map_err(|e| Error::io_path("open", &self.entries_dir, e))?;
                let probe = fsops::probe(scratch.as_fd(), tmp_fd.as_fd());
                let plan = Plan::new(opts.method, probe);
                let tree = fsops::open_dir_path(entry.dir.as_fd(), &cstr("tree"))
                    .map_err(|e| io_err("open", &entry.path.join("tree"), e))?;
                let tmp_dup = tmp_fd
                    .try_clone()
                    .map_err(|e| Error::io_path("dup", &tmp_path, e))?;
                let workers = opts.workers.unwrap_or(self.workers).max(1);
                let planned = plan_jobs(&listing, tree, tmp_dup, workers)
                    .map_err(|f| fault_error(f, &listing, &entry.path, &tmp_path))?;
                Ok((parent_fd, tmp_fd, plan, probe.clone, planned, root_fixup))
            })?;

        let total = listing.nodes.len() as u64;
        let ctx = Ctx {
            listing: &listing,
            // `hardlink` asked explicitly links everything; `auto` keeps those files private.
            root_plan: if opts.method == RestoreMethod::Hardlink {
                plan
            } else {
                plan.private(probe_clone)
            },
            slots: ctx_slots,
            jobs,
            next: AtomicUsize::new(0),
            plan,
            verify: !opts.skip_verify,
            abort: AtomicBool::new(false),
            fault: Mutex::new(None),
            fixups: Mutex::new(plan_fixups),
            linked: AtomicU64::new(0),
            cloned: AtomicU64::new(0),
            copied: AtomicU64::new(0),
            done: AtomicU64::new(0),
            total,
            progress: opts.progress.clone(),
            start: Instant::now(),
            last_report_ms: AtomicU64::new(0),
        };
        let workers = opts
            .workers
            .unwrap_or(self.workers)
            .max(1)
            .min(ctx.jobs.len().max(1));
        phases.run("cache-restore-place", || {
            std::thread::scope(|s| {
                for _ in 1..workers {
                    s.spawn(|| run_worker(&ctx));
                }
                run_worker(&ctx);
            });
            Ok(())
        })?;
        if let Some(fault) = ctx.fault.lock().unwrap().take() {
            let mutated = matches!(fault, Fault::Mutated { .. });
            let err = fault_error(fault, &listing, &entry.path, &tmp_path);
            drop(tmp_guard);
            if mutated {
                let trash = self.move_to_trash(&entry.path, key).ok();
                drop(entry);
                if let Some(t) = trash {
                    self.delete_if_unlocked(&t, 0, 0);
                }
                return Err(Error::Cache(format!(
                    "{err}; the entry was evicted (a file shared by hardlink was changed in place); \
                     it will be populated again"
                )));
            }
            return Err(err);
        }

        let replaced = phases.run("cache-restore-commit", || {
            let mut fixups = std::mem::take(&mut *ctx.fixups.lock().unwrap());
            fixups.sort_unstable_by(|a, b| b.cmp(a));
            for node in fixups {
                let rel = listing.rel_path(node);
                let c = path_cstr(&rel)?;
                rustix::fs::chmodat(
                    &tmp_fd,
                    c.as_c_str(),
                    crate::platform::mode(listing.nodes[node].mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("set mode of", &tmp_path.join(&rel), e))?;
            }
            let tmp_c = cstr(&tmp_name);
            if root_fixup {
                rustix::fs::chmodat(
                    &parent_fd,
                    tmp_c.as_c_str(),
                    crate::platform::mode(listing.nodes[0].mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("set mode of", &tmp_path, e))?;
            }
            let name_c = path_cstr(Path::new(&name))?;
            match rustix::fs::renameat_with(
                &parent_fd,
                &tmp_c,
                &parent_fd,
                &name_c,
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => Ok(false),
                Err(Errno::EXIST) | Err(Errno::NOTEMPTY) if !opts.keep_existing => {
                    rustix::fs::renameat_with(
                        &parent_fd,
                        &tmp_c,
                        &parent_fd,
                        &name_c,
                        RenameFlags::EXCHANGE,
                    )
                    .map_err(|e| io_err("swap restored node_modules into", target, e))?;
                    Ok(true)
                }
                Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Err(Error::AlreadyExists(format!(
                    "{} (restore target; keep_existing is set)",
                    target.display()
                ))),
                Err(e) => Err(io_err("move restored node_modules to", target, e)),
            }
        })?;
        if replaced {
            // The old folder now sits at the temporary name: delete it.
            phases.run("cache-restore-remove-old", || {
                fsops::remove_tree(&tmp_path)
                    .map_err(|e| Error::io_path("delete replaced node_modules at", &tmp_path, e))
            })?;
        }
        tmp_guard.disarm();
        let _ = rustix::fs::utimensat(
            &entry.dir,
            "last-used",
            &rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                },
            },
            AtFlags::empty(),
        );
        if let Some(p) = &opts.progress {
            report_progress(p, total, total);
        }
        let (mut files, mut dirs, mut symlinks, mut bytes) = (0, 0, 0, 0);
        for n in &listing.nodes {
            match n.kind {
                NodeKind::File => {
                    files += 1;
                    bytes += n.size;
                }
                NodeKind::Dir => dirs += 1,
                NodeKind::Symlink => symlinks += 1,
            }
        }
        Ok(RestoreStats {
            key: key.clone(),
            target: target.display().to_string(),
            method: opts.method,
            method_used: plan.primary().to_string(),
            linked: ctx.linked.load(Ordering::Relaxed),
            cloned: ctx.cloned.load(Ordering::Relaxed),
            copied: ctx.copied.load(Ordering::Relaxed),
            files,
            dirs,
            symlinks,
            bytes,
            workers,
            verified: !opts.skip_verify,
            replaced_existing: replaced,
            duration_ms: 0.0,
            phases: Vec::new(),
        })
    }
}

/// Calls the progress callback; a panicking callback is contained (it must not unwind through
/// the worker threads, nor across a C or JS boundary) and only loses that report.
fn report_progress(p: &CountProgress, done: u64, total: u64) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p(done, total)));
}

/// Splits a target into (parent folder, file name), refusing `/`, `..` and the like.
fn split_target(target: &Path) -> Result<(PathBuf, String)> {
    let abs = if target.is_absolute() {
        target.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("read the current folder", e))?
            .join(target)
    };
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "." && *n != "..")
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "restore target {} has no usable folder name",
                target.display()
            ))
        })?
        .to_string();
    let parent = abs.parent().map(Path::to_path_buf).ok_or_else(|| {
        Error::InvalidArgument(format!("restore target {} has no parent", target.display()))
    })?;
    Ok((parent, name))
}

/// Deletes `.<name>.vt-restore-<pid>-<n>` siblings left by processes that no longer run.
fn clean_stale_siblings(parent: &Path, name: &str) {
    let prefix = format!(".{name}.vt-restore-");
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let fname = e.file_name();
        let Some(rest) = fname.to_str().and_then(|s| s.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !crate::process::alive(pid) {
            let _ = fsops::remove_tree(&e.path());
        }
    }
}

/// Deletes the temporary sibling unless disarmed.
struct TmpGuard(Option<PathBuf>);

impl TmpGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fsops::remove_tree(&p);
        }
    }
}

fn fault_error(f: Fault, listing: &Listing, entry: &Path, tmp: &Path) -> Error {
    match f {
        Fault::Io { op, node, errno } => {
            let rel = listing.rel_path(node);
            Error::io_path(
                &format!(
                    "{op} (cache file {})",
                    entry.join("tree").join(&rel).display()
                ),
                tmp.join(&rel),
                std::io::Error::from_raw_os_error(errno.raw_os_error()),
            )
        }
        Fault::Mutated { node, detail } => Error::Cache(format!(
            "cached file {} was changed after caching ({detail})",
            entry.join("tree").join(listing.rel_path(node)).display()
        )),
    }
}

/// Weight of a subtree: 1 per file or symlink, 3 per folder (mkdir costs more than link).
fn weights(listing: &Listing) -> Vec<u64> {
    let n = listing.nodes.len();
    let mut w = vec![0u64; n];
    for i in (0..n).rev() {
        let node = &listing.nodes[i];
        w[i] += if node.kind == NodeKind::Dir { 3 } else { 1 };
        if i != 0 {
            let p = node.parent as usize;
            w[p] += w[i];
        }
    }
    w
}

/// Open (cache, target) folder pairs, the jobs, and the folders whose mode needs a fix-up.
type Planned = (Vec<(OwnedFd, OwnedFd)>, Vec<Job>, Vec<usize>);

/// Makes the folders too big for one job (on the calling thread) and cuts the rest into jobs,
/// largest first.
fn plan_jobs(
    listing: &Listing,
    tree: OwnedFd,
    tmp: OwnedFd,
    workers: usize,
) -> std::result::Result<Planned, Fault> {
    let w = weights(listing);
    let mut fixups = Vec::new();
    let threshold = if workers <= 1 {
        u64::MAX
    } else {
        (w[0] / (workers as u64 * 8)).max(256)
    };
    let mut slots = vec![(tree, tmp)];
    let mut jobs = Vec::new();
    let mut stack = vec![(0usize, 0usize)]; // (folder node, its slot)
    while let Some((d, slot)) = stack.pop() {
        let mut flat: Vec<usize> = Vec::new();
        for c in listing.children(d) {
            if listing.nodes[c].kind != NodeKind::Dir {
                flat.push(c);
                if flat.len() == FLAT_CHUNK {
                    let nodes = std::mem::take(&mut flat);
                    jobs.push(Job::Flat {
                        slot,
                        weight: nodes.len() as u64,
                        nodes,
                    });
                }
            } else if w[c] > threshold {
                let name = listing.name(c);
                let (src_parent, dst_parent) = &slots[slot];
                let io = |op, errno| Fault::Io { op, node: c, errno };
                if fsops::make_dir(dst_parent.as_fd(), name, listing.nodes[c].mode)
                    .map_err(|e| io("create folder", e))?
                {
                    fixups.push(c);
                }
                let s = fsops::open_dir_path(src_parent.as_fd(), name)
                    .map_err(|e| io("open cached folder", e))?;
                let t = fsops::open_dir_path(dst_parent.as_fd(), name)
                    .map_err(|e| io("open folder", e))?;
                slots.push((s, t));
                stack.push((c, slots.len() - 1));
            } else {
                jobs.push(Job::Subtree {
                    slot,
                    node: c,
                    weight: w[c],
                });
            }
        }
        if !flat.is_empty() {
            jobs.push(Job::Flat {
                slot,
                weight: flat.len() as u64,
                nodes: flat,
            });
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.weight()));
    Ok((slots, jobs, fixups))
}

fn run_worker(ctx: &Ctx<'_>) {
    let mut local = Local::default();
    loop {
        if ctx.abort.load(Ordering::Relaxed) {
            break;
        }
        let i = ctx.next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = ctx.jobs.get(i) else { break };
        let r = match job {
            Job::Subtree { slot, node, .. } => {
                let (s, d) = &ctx.slots[*slot];
                subtree(ctx, &mut local, s.as_fd(), d.as_fd(), *node)
            }
            Job::Flat { slot, nodes, .. } => {
                let (s, d) = &ctx.slots[*slot];
                nodes
                    .iter()
                    .try_for_each(|&n| leaf(ctx, &mut local, s.as_fd(), d.as_fd(), n))
            }
        };
        local.flush(ctx);
        if let Err(f) = r {
            ctx.abort.store(true, Ordering::Relaxed);
            let mut slot = ctx.fault.lock().unwrap();
            if slot.is_none() {
                *slot = Some(f);
            }
            break;
        }
    }
    local.flush(ctx);
    if !local.fixups.is_empty() {
        ctx.fixups.lock().unwrap().append(&mut local.fixups);
    }
}

#[derive(Default)]
struct Local {
    linked: u64,
    cloned: u64,
    copied: u64,
    done: u64,
    fixups: Vec<usize>,
}

impl Local {
    fn flush(&mut self, ctx: &Ctx<'_>) {
        ctx.linked
            .fetch_add(std::mem::take(&mut self.linked), Ordering::Relaxed);
        ctx.cloned
            .fetch_add(std::mem::take(&mut self.cloned), Ordering::Relaxed);
        ctx.copied
            .fetch_add(std::mem::take(&mut self.copied), Ordering::Relaxed);
        let d = std::mem::take(&mut self.done);
        if d == 0 {
            return;
        }
        let done = ctx.done.fetch_add(d, Ordering::Relaxed) + d;
        if let Some(p) = &ctx.progress {
            let now = ctx.start.elapsed().as_millis() as u64;
            let last = ctx.last_report_ms.load(Ordering::Relaxed);
            if now >= last + PROGRESS_INTERVAL_MS
                && ctx
                    .last_report_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                && done < ctx.total
            {
                report_progress(p, done, ctx.total);
            }
        }
    }

    fn tick(&mut self, ctx: &Ctx<'_>) {
        self.done += 1;
        if self.done >= 1024 {
            self.flush(ctx);
        }
    }
}

fn subtree(
    ctx: &Ctx<'_>,
    local: &mut Local,
    src_parent: BorrowedFd<'_>,
    dst_parent: BorrowedFd<'_>,
    d: usize,
) -> std::result::Result<(), Fault> {
    let l = ctx.listing;
    let name = l.name(d);
    let io = |op, errno| Fault::Io { op, node: d, errno };
    if fsops::make_dir(dst_parent, name, l.nodes[d].mode).map_err(|e| io("create folder", e))? {
        local.fixups.push(d);
    }
    let s = fsops::open_dir_path(src_parent, name).map_err(|e| io("open cached folder", e))?;
    let t = fsops::open_dir_path(dst_parent, name).map_err(|e| io("open folder", e))?;
    local.tick(ctx);
    for c in l.children(d) {
        if ctx.abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        if l.nodes[c].kind == NodeKind::Dir {
            subtree(ctx, local, s.as_fd(), t.as_fd(), c)?;
        } else {
            leaf(ctx, local, s.as_fd(), t.as_fd(), c)?;
        }
    }
    Ok(())
}

fn leaf(
    ctx: &Ctx<'_>,
    local: &mut Local,
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    i: usize,
) -> std::result::Result<(), Fault> {
    let l = ctx.listing;
    let node = &l.nodes[i];
    let name = l.name(i);
    match node.kind {
        NodeKind::Symlink => {
            rustix::fs::symlinkat(l.target(i), dst, name).map_err(|errno| Fault::Io {
                op: "create symlink",
                node: i,
                errno,
            })?;
        }
        NodeKind::File => {
            if ctx.verify {
                check_file(src, name, node, i)?;
            }
            match fsops::place_file(
                src,
                dst,
                name,
                node.mode,
                (node.mtime_sec, node.mtime_nsec),
                if node.parent == 0 {
                    ctx.root_plan
                } else {
                    ctx.plan
                },
            ) {
                Ok(Placed::Linked) => local.linked += 1,
                Ok(Placed::Cloned) => local.cloned += 1,
                Ok(Placed::Copied) => local.copied += 1,
                Err(errno) => {
                    return Err(Fault::Io {
                        op: "place file",
                        node: i,
                        errno,
                    });
                }
            }
        }
        NodeKind::Dir => unreachable!("folders are placed by subtree()"),
    }
    local.tick(ctx);
    Ok(())
}

/// Compares the cached file with what the listing recorded when the entry was made.
fn check_file(
    src: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    node: &super::listing::Node,
    i: usize,
) -> std::result::Result<(), Fault> {
    match mutation(src, name, node) {
        Ok(None) => Ok(()),
        Ok(Some(detail)) => Err(Fault::Mutated { node: i, detail }),
        Err(errno) => Err(Fault::Io {
            op: "check cached file",
            node: i,
            errno,
        }),
    }
}

/// How the file `name` of `dir` differs from its listing record, if it does.
pub(crate) fn mutation(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    node: &super::listing::Node,
) -> std::result::Result<Option<String>, Errno> {
    let st = match crate::platform::stat_at(dir, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Some("missing".into())),
        Err(e) => return Err(e),
    };
    Ok(if st.file_type() != FileType::RegularFile {
        Some("no longer a regular file".to_string())
    } else if st.size != node.size {
        Some(format!("size {} -> {}", node.size, st.size))
    } else if st.mtime_sec != node.mtime_sec || st.mtime_nsec != node.mtime_nsec {
        Some("modification time changed".to_string())
    } else if st.permissions() != node.mode & 0o7777 {
        Some(format!(
            "mode {:o} -> {:o}",
            node.mode & 0o7777,
            st.permissions()
        ))
    } else {
        None
    })
}
