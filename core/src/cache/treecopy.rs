//! The parallel tree copy: materialize a [`Listing`] of a source folder as a new folder, every
//! call relative to open directory descriptors (`mkdirat`, `linkat`, `symlinkat`, `openat`: never
//! through a link), split over worker threads by whole folders (big ones split into their
//! sub-folders), largest first, each file placed by a [`Plan`] (link, clone, copy, with the
//! per-file fallbacks of `fsops`).
//!
//! Used by the cache's restore (`restore.rs`: an entry's tree into a hidden sibling of
//! node_modules) and by the worktree's copied ignored files (`worktree/include/`: a folder of the
//! main worktree into the new one). Owns no policy: where the tree is made, how it is committed
//! (renamed into place) and what is verified are the caller's.

use super::fsops::{self, Placed, Plan};
use super::listing::{Listing, NodeKind};
use crate::progress::CountProgress;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// A failure inside a worker, turned into an [`Error`](crate::Error) by the caller.
pub(crate) enum Fault {
    /// An OS call failed on listing node `node`.
    Io {
        op: &'static str,
        node: usize,
        errno: Errno,
    },
    /// A source file differs from its listing record (`verify`).
    Mutated { node: usize, detail: String },
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

/// One copy in progress: the plan, the jobs and the counters the workers share.
pub(crate) struct TreeCopy<'a> {
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
    direct: AtomicU64,
    done: AtomicU64,
    total: u64,
    progress: Option<CountProgress>,
    start: Instant,
    last_report_ms: AtomicU64,
    workers: usize,
}

const PROGRESS_INTERVAL_MS: u64 = 50;
/// Files of one folder are never split over workers: two threads linking into one folder contend
/// on its lock.
const FLAT_CHUNK: usize = usize::MAX;

/// How a [`TreeCopy`] places files.
pub(crate) struct CopyOptions {
    /// The plan of files in folders below the root.
    pub plan: Plan,
    /// The plan of files directly in the root.
    pub root_plan: Plan,
    /// Check each source file against its listing record before placing it.
    pub verify: bool,
    /// Worker threads (at least 1; fewer when there are fewer jobs).
    pub workers: usize,
    /// `(done, total)` counts of placed nodes.
    pub progress: Option<CountProgress>,
}

/// What a finished [`TreeCopy`] placed.
pub(crate) struct Copied {
    /// Files hardlinked.
    pub linked: u64,
    /// Files cloned (reflink).
    pub cloned: u64,
    /// Files copied.
    pub copied: u64,
    /// Of those, files whose bytes were written by direct I/O ([`Plan::direct`]).
    pub direct: u64,
    /// Folders whose mode must be set after they were filled (deepest last in listing order).
    pub fixups: Vec<usize>,
}

impl<'a> TreeCopy<'a> {
    /// Plans the copy of `listing` from the folder `src` into the (made, empty) folder `dst`:
    /// makes the folders too big for one job, on the calling thread, and cuts the rest into jobs.
    pub fn plan(
        listing: &'a Listing,
        src: OwnedFd,
        dst: OwnedFd,
        opts: CopyOptions,
    ) -> std::result::Result<Self, Fault> {
        let per_byte = !opts.plan.link && !opts.plan.clone;
        let (slots, jobs, fixups) = plan_jobs(listing, src, dst, opts.workers.max(1), per_byte)?;
        Ok(TreeCopy {
            listing,
            root_plan: opts.root_plan,
            slots,
            jobs,
            next: AtomicUsize::new(0),
            plan: opts.plan,
            verify: opts.verify,
            abort: AtomicBool::new(false),
            fault: Mutex::new(None),
            fixups: Mutex::new(fixups),
            linked: AtomicU64::new(0),
            cloned: AtomicU64::new(0),
            copied: AtomicU64::new(0),
            direct: AtomicU64::new(0),
            done: AtomicU64::new(0),
            total: listing.nodes.len() as u64,
            progress: opts.progress,
            start: Instant::now(),
            last_report_ms: AtomicU64::new(0),
            workers: opts.workers.max(1),
        })
    }

    /// The worker threads [`run`](Self::run) uses: the asked number, at most one per job.
    pub fn workers(&self) -> usize {
        self.workers.min(self.jobs.len().max(1))
    }

    /// Places everything, on [`workers`](Self::workers) threads (the calling one included); the
    /// first failure stops the others.
    pub fn run(&self) {
        let workers = self.workers();
        std::thread::scope(|s| {
            for _ in 1..workers {
                s.spawn(|| run_worker(self));
            }
            run_worker(self);
        });
    }

    /// What was placed, or the first failure.
    pub fn finish(self) -> std::result::Result<Copied, Fault> {
        if let Some(f) = self.fault.lock().unwrap().take() {
            return Err(f);
        }
        Ok(Copied {
            linked: self.linked.load(Ordering::Relaxed),
            cloned: self.cloned.load(Ordering::Relaxed),
            copied: self.copied.load(Ordering::Relaxed),
            direct: self.direct.load(Ordering::Relaxed),
            fixups: std::mem::take(&mut *self.fixups.lock().unwrap()),
        })
    }
}

/// Calls the progress callback; a panicking callback is contained (it must not unwind through
/// the worker threads, nor across a C or JS boundary) and only loses that report.
pub(crate) fn report_progress(p: &CountProgress, done: u64, total: u64) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p(done, total)));
}

/// Bytes that cost roughly as much to copy as placing one more file (an estimate for ordering
/// the jobs, not a measurement: a small file's create, copy, times and closes vs. the in-kernel
/// copy of fresh page-cache pages).
const BYTES_PER_UNIT: u64 = 32 << 10;

/// Weight of a subtree: 1 per file or symlink, 3 per folder (mkdir costs more than link), plus,
/// when the bytes are copied (`per_byte`), one per [`BYTES_PER_UNIT`] of each file: a folder of
/// big files is then split and started first like a folder of many.
fn weights(listing: &Listing, per_byte: bool) -> Vec<u64> {
    let n = listing.nodes.len();
    let mut w = vec![0u64; n];
    for i in (0..n).rev() {
        let node = &listing.nodes[i];
        w[i] += match node.kind {
            NodeKind::Dir => 3,
            NodeKind::File if per_byte => 1 + node.size / BYTES_PER_UNIT,
            _ => 1,
        };
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
    per_byte: bool,
) -> std::result::Result<Planned, Fault> {
    let w = weights(listing, per_byte);
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
                        weight: nodes.iter().map(|&n| w[n]).sum(),
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
                weight: flat.iter().map(|&c| w[c]).sum(),
                nodes: flat,
            });
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.weight()));
    Ok((slots, jobs, fixups))
}

fn run_worker(ctx: &TreeCopy<'_>) {
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
    direct: u64,
    done: u64,
    fixups: Vec<usize>,
}

impl Local {
    fn flush(&mut self, ctx: &TreeCopy<'_>) {
        ctx.linked
            .fetch_add(std::mem::take(&mut self.linked), Ordering::Relaxed);
        ctx.cloned
            .fetch_add(std::mem::take(&mut self.cloned), Ordering::Relaxed);
        ctx.copied
            .fetch_add(std::mem::take(&mut self.copied), Ordering::Relaxed);
        ctx.direct
            .fetch_add(std::mem::take(&mut self.direct), Ordering::Relaxed);
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

    fn tick(&mut self, ctx: &TreeCopy<'_>) {
        self.done += 1;
        if self.done >= 1024 {
            self.flush(ctx);
        }
    }
}

fn subtree(
    ctx: &TreeCopy<'_>,
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
    ctx: &TreeCopy<'_>,
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
                Ok(Placed::CopiedDirect) => {
                    local.copied += 1;
                    local.direct += 1;
                }
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
    match super::restore::mutation(src, name, node) {
        Ok(None) => Ok(()),
        Ok(Some(detail)) => Err(Fault::Mutated { node: i, detail }),
        Err(errno) => Err(Fault::Io {
            op: "check cached file",
            node: i,
            errno,
        }),
    }
}
