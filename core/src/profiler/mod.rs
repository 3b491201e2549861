//! The profiler: nested timed operations ("spans"), streaming statistics per operation name, the
//! server's metrics shape and a Chrome/Perfetto trace export.
//!
//! ```
//! use vibetrees_core::Profiler;
//! let p = Profiler::new();
//! let root = p.start("create-worktree-total", None).unwrap();
//! {
//!     let _git = p.span("git-worktree-add", Some(&root)).unwrap(); // ends when dropped
//! }
//! let result = p.end(&root).unwrap();
//! assert_eq!(result.children[0].name, "git-worktree-add");
//! assert_eq!(p.get_stats("git-worktree-add").unwrap().count, 1);
//! ```
//!
//! # Memory bound
//! Running operations are kept until they end. Of the ended ones, the profiler keeps the last
//! [`ProfilerConfig::max_results`] (default 10,000) for [`Profiler::get_result`] and
//! [`Profiler::to_chrome_trace`], oldest evicted first: about 150 bytes each plus the name, which is
//! shared. Statistics are streaming aggregates, one per distinct name, at most
//! [`ProfilerConfig::max_names`] (default 4,096) of them; operations of further new names are
//! counted under [`OTHER_NAMES`]. Each name's quantile sketch is at most 32 KiB (4,096 bins) and
//! typically a few KiB. A running parent keeps the ids of at most `2 * max(max_results, 1024)` of
//! its most recent children. Whatever the number of operations, memory stays under
//! `max_results * ~150 B + max_names * 32 KiB` plus the running operations (~100 B each, plus
//! their bounded child-id lists).
//!
//! # Concurrency
//! `Profiler` is `Send + Sync`; share it as `Arc<Profiler>`. Running operations live in 32
//! mutex-guarded shards picked by id, so threads rarely wait for one another; statistics are
//! per-name; ended results go through one short critical section.

mod guard;
mod ids;
mod stats;
#[cfg(test)]
mod tests;
mod thread;
mod trace;
mod types;
mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

pub use guard::{OwnedSpanGuard, Span, SpanGuard};
pub use ids::OperationId;
pub use trace::results_chrome_trace;
pub use types::{Metrics, MetricsOperation, OperationResult, OperationStats, Report};

use crate::{Error, Result};
use ids::IdBuildHasher;
use stats::NameStats;
pub(crate) use thread::ThreadInfo;
use thread::current_thread;
pub(crate) use window::{Done, Window};
use window::{NS_PER_MS, shell};

/// Name under which operations are counted once [`ProfilerConfig::max_names`] distinct names exist.
pub const OTHER_NAMES: &str = "(other names)";

/// The operation whose average is reported as `avgWorktreeCreation` in [`Metrics`].
pub const WORKTREE_TOTAL_OPERATION: &str = "create-worktree-total";

/// Default of [`ProfilerConfig::max_results`].
pub const DEFAULT_MAX_RESULTS: usize = 10_000;

/// Default of [`ProfilerConfig::max_names`].
pub const DEFAULT_MAX_NAMES: usize = 4_096;

/// Number of shards of the running-operations table.
const SHARDS: usize = 32;

/// Settings of a [`Profiler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfilerConfig {
    /// How many ended operations are kept for `get_result` and the Chrome trace; the oldest is
    /// evicted first. 0 keeps none (statistics are still collected).
    pub max_results: usize,
    /// How many distinct operation names get statistics of their own; later new names are
    /// counted together under [`OTHER_NAMES`].
    pub max_names: usize,
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        Self {
            max_results: DEFAULT_MAX_RESULTS,
            max_names: DEFAULT_MAX_NAMES,
        }
    }
}

/// An interned operation name and its statistics.
struct NameEntry {
    name: Arc<str>,
    stats: Mutex<NameStats>,
}

impl NameEntry {
    fn new(name: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            name,
            stats: Mutex::new(NameStats::new()),
        })
    }
}

/// An operation that has started and not finished ending.
struct Running {
    entry: Arc<NameEntry>,
    /// The operation's own name when it is counted under [`OTHER_NAMES`].
    own_name: Option<Arc<str>>,
    start_ns: u64,
    parent: Option<u64>,
    /// Children in the order they registered (their start order).
    children: Vec<u64>,
    thread: Arc<ThreadInfo>,
    /// Set while `end` is in progress: the operation no longer counts as running, but stays in
    /// the table until its result is in the window, so a parent classifying its children never
    /// misses it.
    ending: bool,
}

/// CLOCK_MONOTONIC in ns (what `std::time::Instant` reads on Linux, without its checked
/// arithmetic: this is on the hot path twice per operation).
#[inline]
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[repr(align(128))]
struct Shard(Mutex<HashMap<u64, Running, IdBuildHasher>>);

/// Times nested operations; see the [module documentation](self).
pub struct Profiler {
    /// The monotonic clock's reading when the profiler was made, in ns.
    epoch_ns: u64,
    config: ProfilerConfig,
    next_num: AtomicU64,
    shards: Box<[Shard]>,
    names: RwLock<HashMap<Arc<str>, Arc<NameEntry>, foldhash::fast::RandomState>>,
    other: Arc<NameEntry>,
    window: Mutex<Window>,
}

impl Default for Profiler {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profiler")
            .field("config", &self.config)
            .field("running", &self.running_count())
            .field("kept_results", &self.window.lock().len())
            .finish()
    }
}

impl Profiler {
    /// A profiler with the default configuration (10,000 kept results, 4,096 names).
    pub fn new() -> Self {
        Self::with_config(ProfilerConfig::default())
    }

    /// A profiler with the given configuration.
    pub fn with_config(config: ProfilerConfig) -> Self {
        Self {
            epoch_ns: monotonic_ns(),
            next_num: AtomicU64::new(1),
            shards: (0..SHARDS)
                .map(|_| Shard(Mutex::new(HashMap::default())))
                .collect(),
            names: RwLock::new(HashMap::default()),
            other: NameEntry::new(Arc::from(OTHER_NAMES)),
            window: Mutex::new(Window::new(config.max_results)),
            config,
        }
    }

    /// This profiler's configuration.
    pub fn config(&self) -> &ProfilerConfig {
        &self.config
    }

    /// Milliseconds since the profiler was made, from a monotonic clock.
    pub fn now_ms(&self) -> f64 {
        self.now_ns() as f64 / NS_PER_MS
    }

    #[inline]
    fn now_ns(&self) -> u64 {
        monotonic_ns().saturating_sub(self.epoch_ns)
    }

    #[inline]
    fn shard(&self, num: u64) -> &Mutex<HashMap<u64, Running, IdBuildHasher>> {
        &self.shards[(num as usize) % SHARDS].0
    }

    /// The interned entry of `name` (and the name itself when it overflows into "other").
    #[inline]
    fn entry(&self, name: &str) -> (Arc<NameEntry>, Option<Arc<str>>) {
        {
            let names = self.names.read();
            if let Some(e) = names.get(name) {
                return (Arc::clone(e), None);
            }
            if names.len() >= self.config.max_names {
                return (Arc::clone(&self.other), Some(Arc::from(name)));
            }
        }
        let mut names = self.names.write();
        if let Some(e) = names.get(name) {
            return (Arc::clone(e), None);
        }
        if names.len() >= self.config.max_names {
            return (Arc::clone(&self.other), Some(Arc::from(name)));
        }
        let key: Arc<str> = Arc::from(name);
        let e = NameEntry::new(Arc::clone(&key));
        names.insert(key, Arc::clone(&e));
        (e, None)
    }

    /// Starts an operation named `name`, under the running operation `parent` if given, and
    /// returns its id (`op-<n>`).
    ///
    /// Fails with [`Error::NotFound`] naming the parent when `parent` is not a running operation
    /// of this profiler (unknown, or already ended); nothing is started then.
    pub fn start(&self, name: &str, parent: Option<&str>) -> Result<String> {
        self.start_num(name, parent).map(ids::format_id)
    }

    /// Starts an operation and returns a guard that ends it when dropped.
    /// Fails like [`Profiler::start`].
    pub fn span(&self, name: &str, parent: Option<&str>) -> Result<SpanGuard<'_>> {
        let num = self.start_num(name, parent)?;
        Ok(Span::new(self, num))
    }

    /// Like [`Profiler::span`], holding an `Arc` of the profiler: for spans that move into
    /// `'static` futures or threads.
    pub fn span_owned(
        self: &Arc<Self>,
        name: &str,
        parent: Option<&str>,
    ) -> Result<OwnedSpanGuard> {
        let num = self.start_num(name, parent)?;
        Ok(Span::new(Arc::clone(self), num))
    }

    /// Like [`Profiler::start`] with typed ids: no id string is formatted or parsed.
    pub fn start_op(&self, name: &str, parent: Option<OperationId>) -> Result<OperationId> {
        let parent_num = parent.map(OperationId::get);
        self.start_raw(name, parent_num)
            .map(OperationId::new)
            .map_err(|()| {
                let given = parent.map(|p| p.to_string()).unwrap_or_default();
                self.parent_error(&given, parent_num)
            })
    }

    /// Like [`Profiler::end`] with a typed id.
    pub fn end_op(&self, id: OperationId) -> Result<OperationResult> {
        self.finish_num(id.get(), None)
    }

    /// Like [`Profiler::end_failed`] with a typed id.
    pub fn end_op_failed(&self, id: OperationId, error: &str) -> Result<OperationResult> {
        self.finish_num(id.get(), Some(error))
    }

    /// Ends operation `id` (as failed when `error` is given) without building its result: the
    /// cheapest way to end, for callers that only want the statistics and the trace.
    /// Fails like [`Profiler::end`].
    pub fn end_op_quiet(&self, id: OperationId, error: Option<&str>) -> Result<()> {
        self.finish_quiet(id.get(), error)
    }

    fn start_num(&self, name: &str, parent: Option<&str>) -> Result<u64> {
        let parent_num = match parent {
            None => None,
            Some(p) => Some(ids::parse_id(p).ok_or_else(|| self.parent_error(p, None))?),
        };
        self.start_raw(name, parent_num)
            .map_err(|()| self.parent_error(parent.unwrap_or_default(), parent_num))
    }

    /// How many child ids a running parent keeps at least (it keeps at most twice that): the
    /// window size, but never fewer than 1,024 so `runningChildren` stays useful.
    fn child_ids_kept(&self) -> usize {
        self.config.max_results.max(1024)
    }

    /// Starts an operation; `Err(())` when `parent_num` is not running.
    fn start_raw(&self, name: &str, parent_num: Option<u64>) -> std::result::Result<u64, ()> {
        let (entry, own_name) = self.entry(name);
        let thread = current_thread();
        let num = self.next_num.fetch_add(1, Ordering::Relaxed);
        let start_ns = self.now_ns();
        self.shard(num).lock().insert(
            num,
            Running {
                entry,
                own_name,
                start_ns,
                parent: parent_num,
                children: Vec::new(),
                thread,
                ending: false,
            },
        );
        if let Some(p) = parent_num {
            // Register with the parent only once the child is in the table, so a parent that
            // ends concurrently finds every registered child either running or ended.
            let registered = match self.shard(p).lock().get_mut(&p) {
                Some(r) if !r.ending => {
                    r.children.push(num);
                    let keep = self.child_ids_kept();
                    if r.children.len() >= 2 * keep {
                        // Bounded: only the most recent children can still be in the window
                        // when the parent ends; forget the oldest ids (amortized O(1)).
                        r.children.drain(..r.children.len() - keep);
                    }
                    true
                }
                _ => false,
            };
            if !registered {
                self.shard(num).lock().remove(&num);
                return Err(());
            }
        }
        Ok(num)
    }

    fn parent_error(&self, given: &str, num: Option<u64>) -> Error {
        match num {
            Some(n) if n < self.next_num.load(Ordering::Relaxed) => Error::NotFound(format!(
                "parent operation '{given}' is not running: it already ended"
            )),
            _ => Error::NotFound(format!("unknown parent operation id '{given}'")),
        }
    }

    fn not_running_error(&self, given: &str, num: Option<u64>) -> Error {
        match num {
            Some(n) if n < self.next_num.load(Ordering::Relaxed) => Error::NotFound(format!(
                "operation '{given}' is not running: it already ended"
            )),
            _ => Error::NotFound(format!("unknown operation id '{given}'")),
        }
    }

    /// Ends the running operation `id` as succeeded and returns its result.
    ///
    /// Fails with [`Error::NotFound`] naming `id` when it is unknown or already ended.
    pub fn end(&self, id: &str) -> Result<OperationResult> {
        let num = ids::parse_id(id).ok_or_else(|| self.not_running_error(id, None))?;
        self.finish(id, num, None)
    }

    /// Ends the running operation `id` as failed with `error` and returns its result; the
    /// failure is counted in the name's statistics.
    ///
    /// Fails with [`Error::NotFound`] naming `id` when it is unknown or already ended.
    pub fn end_failed(&self, id: &str, error: &str) -> Result<OperationResult> {
        let num = ids::parse_id(id).ok_or_else(|| self.not_running_error(id, None))?;
        self.finish(id, num, Some(error))
    }

    pub(crate) fn finish(
        &self,
        id: &str,
        num: u64,
        error: Option<&str>,
    ) -> Result<OperationResult> {
        match self.finish_inner(num, Some(id), error, true) {
            Ok(r) => Ok(r.expect("a result was asked for")),
            Err(()) => Err(self.not_running_error(id, Some(num))),
        }
    }

    /// Ends operation number `num` (the id string is made once, for its result).
    fn finish_num(&self, num: u64, error: Option<&str>) -> Result<OperationResult> {
        match self.finish_inner(num, None, error, true) {
            Ok(r) => Ok(r.expect("a result was asked for")),
            Err(()) => Err(self.not_running_error(&ids::format_id(num), Some(num))),
        }
    }

    /// Ends without building a result (a guard's drop).
    pub(crate) fn finish_quiet(&self, num: u64, error: Option<&str>) -> Result<()> {
        self.finish_inner(num, None, error, false)
            .map(|_| ())
            .map_err(|()| self.not_running_error(&ids::format_id(num), Some(num)))
    }

    fn finish_inner(
        &self,
        num: u64,
        id: Option<&str>,
        error: Option<&str>,
        want_result: bool,
    ) -> std::result::Result<Option<OperationResult>, ()> {
        let end_ns = self.now_ns();
        let shard = self.shard(num);

        // Claim the operation. A root without children is removed at once (nobody classifies
        // it); any other stays in the table, marked as ending, until its result is in the window.
        let mut guard = shard.lock();
        let std::collections::hash_map::Entry::Occupied(mut slot) = guard.entry(num) else {
            return Err(());
        };
        let r = slot.get_mut();
        if r.ending {
            return Err(());
        }
        let (running, children) = if r.parent.is_none() && r.children.is_empty() {
            let running = slot.remove();
            drop(guard);
            (Some(running), Vec::new())
        } else {
            r.ending = true;
            let children = std::mem::take(&mut r.children);
            drop(guard);
            (None, children)
        };

        let make_done = |r: Running, ended_children: Vec<u64>, running_children: Vec<u64>| {
            let duration_ns = end_ns.saturating_sub(r.start_ns);
            r.entry
                .stats
                .lock()
                .record(duration_ns, error.is_some(), r.parent.is_none());
            Done {
                num,
                entry: r.entry,
                own_name: r.own_name,
                start_ns: r.start_ns,
                end_ns: end_ns.max(r.start_ns),
                parent: r.parent,
                ended_children,
                running_children,
                error: error.map(Box::from),
                thread: r.thread,
            }
        };

        match running {
            Some(r) => {
                // Root without children: nobody else looks for it, no lock needed around both.
                let done = make_done(r, Vec::new(), Vec::new());
                let result = want_result.then(|| shell(&done, id));
                self.window.lock().push(done);
                Ok(result)
            }
            None => {
                let (ended_children, running_children) = self.classify_children(children);
                // Leave the table and enter the window under the shard lock, so a parent that
                // does not find this operation in the table finds it in the window.
                let mut table = shard.lock();
                let r = table
                    .remove(&num)
                    .expect("claimed above, only the claimer removes");
                let done = make_done(r, ended_children, running_children);
                let mut w = self.window.lock();
                let result = want_result.then(|| w.build_result(&done, id));
                w.push(done);
                Ok(result)
            }
        }
    }

    /// Splits children into those ended (their results are in the window) and those running.
    fn classify_children(&self, children: Vec<u64>) -> (Vec<u64>, Vec<u64>) {
        if children.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let mut ended = Vec::new();
        let mut pending = Vec::new();
        {
            let w = self.window.lock();
            for c in children {
                if w.contains(c) {
                    ended.push(c);
                } else {
                    pending.push(c);
                }
            }
        }
        let mut running = Vec::new();
        for c in pending {
            // Still in the table (even with its end in progress): it has not ended. Out of the
            // table: it entered the window in the same critical section, unless it was evicted
            // or cleared since (then it is gone from the result).
            if self.shard(c).lock().contains_key(&c) {
                running.push(c);
            } else if self.window.lock().contains(c) {
                ended.push(c);
            }
        }
        ended.sort_unstable();
        (ended, running)
    }

    /// Whether `id` names an operation that has started and not ended.
    pub fn is_running(&self, id: &str) -> bool {
        match ids::parse_id(id) {
            Some(n) => self.shard(n).lock().get(&n).is_some_and(|r| !r.ending),
            None => false,
        }
    }

    /// How many operations are running now.
    pub fn running_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().values().filter(|r| !r.ending).count())
            .sum()
    }

    /// The result of the ended operation `id`, while it is in the window of kept results.
    pub fn get_result(&self, id: &str) -> Option<OperationResult> {
        let n = ids::parse_id(id)?;
        let w = self.window.lock();
        let done = w.get(n)?;
        Some(w.build_result(done, Some(id)))
    }

    /// Statistics of every ended operation named `name`, or `None` when none ended.
    pub fn get_stats(&self, name: &str) -> Option<OperationStats> {
        if name == OTHER_NAMES {
            return self.other.stats.lock().to_stats(name);
        }
        let entry = self.names.read().get(name).cloned()?;
        entry.stats.lock().to_stats(name)
    }

    /// Every interned entry, plus the "other names" entry.
    fn entries(&self) -> Vec<Arc<NameEntry>> {
        let mut all: Vec<Arc<NameEntry>> = self.names.read().values().cloned().collect();
        all.push(Arc::clone(&self.other));
        all
    }

    /// Statistics of every operation name, largest total first, and the total duration of the
    /// root operations.
    pub fn generate_report(&self) -> Report {
        let mut root_total_ns: u128 = 0;
        let mut operations = Vec::new();
        for e in self.entries() {
            let s = e.stats.lock();
            root_total_ns += s.root_total_ns();
            if let Some(st) = s.to_stats(&e.name) {
                operations.push(st);
            }
        }
        operations.sort_by(|a, b| {
            b.total
                .total_cmp(&a.total)
                .then_with(|| a.name.cmp(&b.name))
        });
        Report {
            operations,
            total_duration: root_total_ns as f64 / NS_PER_MS,
        }
    }

    /// The server's metrics: `{ operations: [{ name, count, avg, min, max, total }], totalTime,
    /// avgWorktreeCreation }`; see [`Metrics`].
    pub fn metrics(&self) -> Metrics {
        let mut root_total_ns: u128 = 0;
        let mut operations = Vec::new();
        let mut avg_worktree_creation = None;
        for e in self.entries() {
            let s = e.stats.lock();
            root_total_ns += s.root_total_ns();
            if let Some(m) = s.to_metrics(&e.name) {
                operations.push(m);
            }
            if &*e.name == WORKTREE_TOTAL_OPERATION && !Arc::ptr_eq(&e, &self.other) {
                avg_worktree_creation = s.avg();
            }
        }
        operations.sort_by(|a, b| {
            b.total
                .total_cmp(&a.total)
                .then_with(|| a.name.cmp(&b.name))
        });
        Metrics {
            operations,
            total_time: root_total_ns as f64 / NS_PER_MS,
            avg_worktree_creation,
        }
    }

    /// The ended operations in the window as a Chrome Trace Event Format JSON document (opens in
    /// Perfetto and chrome://tracing): one complete (`"X"`) event per operation, laid out on
    /// tracks so that every event nests only inside its ancestors (concurrently overlapping
    /// siblings get tracks of their own), with process and thread names. Running operations are
    /// not included.
    pub fn to_chrome_trace(&self) -> String {
        let w = self.window.lock();
        trace::chrome_trace(&w)
    }

    /// Forgets every ended result and all statistics. Running operations keep running and are
    /// recorded as usual when they end. The clock is not reset.
    pub fn clear(&self) {
        self.window.lock().clear();
        for e in self.entries() {
            e.stats.lock().reset();
        }
    }
}
