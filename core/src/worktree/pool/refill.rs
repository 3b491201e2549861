//! Filling the pool: for one commit source (a ref, default the main worktree's branch), spares
//! are made until `poolSize` of its current commit exist or the disk budget (`poolMaxBytes`) is
//! reached. A spare of that source whose commit moved is brought up to date by the difference
//! update of a near claim ([`super::near`]) when it is within `poolNearMaxChanges` (as a spare
//! being made, `.making-*`, so a kill mid-way leaves debris, never a half-updated spare; its
//! node_modules restored again when the key changed), else discarded; a spare whose commit is
//! gone is discarded. When the
//! budget is full, the oldest spares of other commits make room, never this source's. Before
//! each spare it waits until no creation of the manager is running (refills yield to creations).
//! Debris is swept first: a `.making-*` folder whose maker died (its flock free), a `.discard-*`
//! folder whose deleter died. One fill at a time among all processes (the fill flock).
//!
//! `spawn_refill` runs a fill as a background job of the manager (`wait_background` awaits it)
//! on a thread of its own at low CPU and I/O priority.
//!
//! Owns: what is under `.pool/` and bears our marks. Must not touch folders there without them
//! (they are left alone), nor anything outside `.pool/`.

use super::layout::{self, DISCARD_PREFIX, FILL_LOCK, MAKING_PREFIX, SpareMeta};
use super::near;
use super::spare::{self, NotMade};
use crate::worktree::git::{self, ResolvedFrom};
use crate::worktree::manager::ManagerState;
use crate::worktree::recovery::{left_by_dead_process, unique_suffix};
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a fill did. JSON, camelCase.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FillReport {
    /// The ref filled for (`refs/heads/main`), if one resolved.
    pub from: Option<String>,
    /// Spares made.
    pub made: usize,
    /// Spares and debris removed.
    pub discarded: usize,
    /// Spares of the source whose commit moved, brought up to date by a difference update.
    pub updated: usize,
    /// Why it stopped before `poolSize` spares, if it did (`budget`, the checkout needs the git
    /// CLI, ...).
    pub stopped: Option<String>,
}

/// How long a refill sleeps between looks at whether a creation is still running.
const YIELD_POLL: Duration = Duration::from_millis(20);

/// Fills the pool of `state` for `from` (a ref name; `None`: the main worktree's branch).
/// Blocking; see the module doc.
pub(crate) fn fill(state: &ManagerState, from: Option<&str>) -> Result<FillReport> {
    let mut report = FillReport::default();
    let size = state.settings.pool_size;
    if !super::enabled(&state.settings) {
        report.stopped = Some("the pool is off (poolSize 0, or checkout \"cli\")".into());
        return Ok(report);
    }
    let pool = layout::pool_dir(&state.base);
    std::fs::create_dir_all(&pool).map_err(|e| Error::io_path("create directory", &pool, e))?;
    let _fill = layout::lock(&pool.join(FILL_LOCK))?;
    report.discarded += sweep_debris(&pool);
    let repo = git::open(&state.root)?;
    let Some(resolved) = source(&repo, from)? else {
        report.stopped = Some("no branch to fill for (detached HEAD)".into());
        return Ok(report);
    };
    report.from = Some(resolved.ref_name.clone());
    let current = resolved.commit.to_string();
    for s in layout::spares(&state.base) {
        let moved = s.meta.from == resolved.ref_name && s.meta.commit != current;
        let gone = git2::Oid::from_str(&s.meta.commit)
            .map(|c| repo.find_commit(c).is_err())
            .unwrap_or(true);
        if moved && !gone {
            while state.creations_running() {
                std::thread::sleep(YIELD_POLL);
            }
            if refresh(state, &repo, &pool, &s, &resolved) {
                report.updated += 1;
                continue;
            }
        }
        if (moved || gone) && discard(&pool, &s.path) {
            report.discarded += 1;
        }
    }
    let max = state.settings.pool_max_bytes;
    loop {
        let spares = layout::spares(&state.base);
        let have = spares.iter().filter(|s| s.meta.commit == current).count();
        if have >= size {
            return Ok(report);
        }
        let bytes: u64 = spares.iter().map(|s| s.meta.bytes).sum();
        if bytes >= max {
            // room is made by the oldest spare of another commit, never by this source's
            if evict_oldest_other(&pool, &spares, &current).is_some() {
                report.discarded += 1;
                continue;
            }
            report.stopped = Some(format!(
                "budget: the spares hold {bytes} bytes, poolMaxBytes is {max}"
            ));
            return Ok(report);
        }
        while state.creations_running() {
            std::thread::sleep(YIELD_POLL);
        }
        let made = match spare::make(state, &resolved)? {
            Ok(s) => s,
            Err(NotMade::NeedsCli(why)) => {
                report.stopped = Some(format!("no spare: the checkout needs the git CLI ({why})"));
                return Ok(report);
            }
            Err(NotMade::MarkerInTree) => {
                report.stopped = Some(format!(
                    "no spare: the tree holds a path named {}",
                    layout::MARKER_DIR
                ));
                return Ok(report);
            }
        };
        report.made += 1;
        let mut total = bytes + made.meta.bytes;
        let mut others = spares;
        while total > max {
            match evict_oldest_other(&pool, &others, &current) {
                Some(freed) => {
                    report.discarded += 1;
                    total -= freed.min(total);
                    others = layout::spares(&state.base);
                }
                None => {
                    discard(&pool, &made.path);
                    report.made -= 1;
                    report.stopped = Some(format!(
                        "budget: a spare holds {} bytes, poolMaxBytes is {max}",
                        made.meta.bytes
                    ));
                    return Ok(report);
                }
            }
        }
    }
}

/// Brings the spare `s` (of `resolved`'s ref, at an older commit) to `resolved`'s commit by its
/// difference update, renamed to `.making-<suffix>` meanwhile with that name's flock held (and
/// the spare's own, so no claimer takes it), then published under its new commit. node_modules
/// are restored again when the cache key changed. False when it is not near, or is being
/// claimed, or the update failed (what it left is removed): the caller discards it.
fn refresh(
    state: &ManagerState,
    repo: &git2::Repository,
    pool: &Path,
    s: &layout::Spare,
    resolved: &ResolvedFrom,
) -> bool {
    let Ok(old) = git2::Oid::from_str(&s.meta.commit) else {
        return false;
    };
    let max = near::max_changes(&state.settings, s.meta.files);
    let plan = match near::plan(repo, &state.base, old, resolved.commit, resolved.tree, max) {
        Ok(p) => p,
        Err(why) => {
            tracing::debug!("pool: {} is not near: {why}", s.path.display());
            return false;
        }
    };
    let Some(_claim_lock) = layout::try_lock(&layout::spare_lock_path(&s.path), false) else {
        return false;
    };
    let suffix = unique_suffix();
    let making = pool.join(format!("{MAKING_PREFIX}{suffix}"));
    let lock_path = pool.join(format!("{MAKING_PREFIX}{suffix}.lock"));
    let Ok(lock) = layout::lock(&lock_path) else {
        return false;
    };
    let mut ok = false;
    if crate::platform::rename_no_replace(&s.path, &making).is_ok() {
        match update_in_place(state, repo, &making, &s.meta, &plan) {
            Ok(meta) => {
                let dest = pool.join(format!("{}-{suffix}", &meta.commit[..12]));
                ok = crate::platform::rename_no_replace(&making, &dest).is_ok();
            }
            Err(e) => tracing::warn!("pool: updating a spare failed: {}", e.full_message()),
        }
        if !ok {
            let _ = std::fs::remove_dir_all(&making);
        }
    }
    let _ = std::fs::remove_file(&lock_path);
    drop(lock);
    ok
}

/// The difference update of the spare at `dir` (see [`refresh`]); returns its new metadata
/// (written).
fn update_in_place(
    state: &ManagerState,
    repo: &git2::Repository,
    dir: &Path,
    meta: &SpareMeta,
    plan: &near::NearPlan,
) -> Result<SpareMeta> {
    near::apply(repo, dir, plan, &state.settings.git_program)?;
    let key = crate::worktree::create::tree_key_inputs(repo, plan.new_tree)?.map(|i| i.key());
    let mut meta = meta.clone();
    let (added, removed) = plan.changes.iter().fold((0, 0), |(a, r), c| {
        match (c.old.is_some(), c.new.is_some()) {
            (false, true) => (a + 1, r),
            (true, false) => (a, r + 1),
            _ => (a, r),
        }
    });
    meta.files = (meta.files + added).saturating_sub(removed);
    meta.commit = plan.new_commit.to_string();
    let new_key = key.as_ref().map(|k| k.as_str().to_string());
    if new_key != meta.cache_key || !meta.node_modules {
        if meta.node_modules {
            let nm = dir.join("node_modules");
            std::fs::remove_dir_all(&nm).map_err(|e| Error::io_path("remove", &nm, e))?;
        }
        meta.node_modules_files = spare::restore_node_modules(state, key.as_ref(), dir);
        meta.node_modules = meta.node_modules_files.is_some();
        meta.cache_key = new_key;
    }
    meta.created_at_ms = layout::now_ms();
    layout::write_meta(dir, &meta)?;
    Ok(meta)
}

/// Discards the oldest spare of `spares` whose commit is not `keep` (and that nobody is
/// claiming). Returns the bytes it held, or `None` when there is none to discard.
fn evict_oldest_other(pool: &Path, spares: &[layout::Spare], keep: &str) -> Option<u64> {
    spares
        .iter()
        .filter(|s| s.meta.commit != keep)
        .find(|s| discard(pool, &s.path))
        .map(|s| s.meta.bytes)
}

/// Removes every spare of the pool of `base` that nobody is claiming, and the debris of dead
/// makers. Returns how many were removed.
pub fn clear(base: &Path) -> Result<usize> {
    let pool = layout::pool_dir(base);
    if !pool.is_dir() {
        return Ok(0);
    }
    let _fill = layout::lock(&pool.join(FILL_LOCK))?;
    let mut n = sweep_debris(&pool);
    for s in layout::spares(base) {
        if discard(&pool, &s.path) {
            n += 1;
        }
    }
    Ok(n)
}

/// The ref a fill follows: `from`, else the main worktree's branch (`None` when detached).
fn source(repo: &git2::Repository, from: Option<&str>) -> Result<Option<ResolvedFrom>> {
    let name = match from {
        Some(f) => f.to_string(),
        None => match repo.head() {
            Ok(h) if h.is_branch() => match h.name().ok() {
                Some(n) => n.to_string(),
                None => return Ok(None),
            },
            _ => return Ok(None),
        },
    };
    git::resolve_from(repo, &name).map(Some)
}

/// Deletes the spare `spare` unless someone holds its lock (a claim in progress): renamed to
/// `.discard-*` first (out of every claimer's reach), then removed. True when removed.
fn discard(pool: &Path, spare: &Path) -> bool {
    let Some(_lock) = layout::try_lock(&layout::spare_lock_path(spare), false) else {
        return false;
    };
    let aside = pool.join(format!("{DISCARD_PREFIX}{}", unique_suffix()));
    if std::fs::rename(spare, &aside).is_err() {
        return false;
    }
    std::fs::remove_dir_all(&aside).is_ok()
}

/// Removes what dead fills left in `pool`: `.making-<suffix>` folders whose `.lock` is free (its
/// maker died; a folder without that lock file is not ours and stays), lone free `.lock` files,
/// and `.discard-*` folders whose deleter (the pid in the name) is dead. Call it holding the fill
/// lock. Returns how many were removed.
fn sweep_debris(pool: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(pool) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if let Some(rest) = name.strip_prefix(MAKING_PREFIX) {
            if let Some(stem) = rest.strip_suffix(".lock") {
                let folder = pool.join(format!("{MAKING_PREFIX}{stem}"));
                if std::fs::symlink_metadata(&folder).is_err()
                    && layout::try_lock(&path, false).is_some()
                {
                    let _ = std::fs::remove_file(&path);
                }
            } else if is_dir {
                let lock = pool.join(format!("{name}.lock"));
                if std::fs::symlink_metadata(&lock).is_ok_and(|m| m.is_file())
                    && let Some(_held) = layout::try_lock(&lock, false)
                {
                    tracing::warn!("pool: removing {} (its maker died)", path.display());
                    if std::fs::remove_dir_all(&path).is_ok() {
                        n += 1;
                    }
                    let _ = std::fs::remove_file(&lock);
                }
            }
        } else if name.starts_with(DISCARD_PREFIX)
            && is_dir
            && left_by_dead_process(&name)
            && std::fs::remove_dir_all(&path).is_ok()
        {
            n += 1;
        }
    }
    n
}

/// Starts a fill of `from` as a background job of the manager, on a thread of its own at low
/// priority; its end is reported as a progress event (step `pool`).
pub(crate) fn spawn_refill(state: &Arc<ManagerState>, from: Option<String>) {
    let s = Arc::clone(state);
    state.jobs.spawn("pool-refill", async move {
        let s2 = Arc::clone(&s);
        let done = tokio::task::spawn_blocking(move || {
            std::thread::Builder::new()
                .name("vibetrees-pool".into())
                .spawn(move || {
                    crate::platform::lower_this_thread_priority();
                    fill(&s2, from.as_deref())
                })
                .map_err(|e| Error::Internal(format!("cannot start the pool thread: {e}")))?
                .join()
                .map_err(|_| Error::Internal("the pool thread panicked".into()))?
        })
        .await;
        let msg = match done {
            Ok(Ok(r)) if r.made > 0 => format!("✓ pool refilled ({} spare(s) made)", r.made),
            Ok(Ok(_)) => return,
            Ok(Err(e)) => format!("pool refill failed: {}", e.full_message()),
            Err(e) => format!("pool refill failed: {e}"),
        };
        s.emit("", "pool", msg);
    });
}
