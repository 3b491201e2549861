//! `cache-restore`: node_modules restored from the cache (an exact entry, else a near one: the
//! same project's newest entry with other dependencies) into `.worktrees/.staging/<slug>.<id>/`
//! while the checkout runs; `npm-bootstrap` renames it into place. An unusable entry is a miss,
//! never a failed creation. Must not write into the worktree's folder (the checkout owns it until
//! both are done).
//!
//! How many restore workers run beside the checkout depends on the machine: see
//! [`restore_workers_beside_checkout`].
//!
//! A claimed pool spare (`Creation::claim`) that holds the node_modules of the project's key
//! is a hit in place (method `pool`): nothing is restored. One with another key's node_modules
//! has them moved aside into the staging folder (deleted with it) and the restore runs as usual.

use super::inputs::ProjectInputs;
use crate::Error;
use crate::cache::{CacheKey, KeyInputs, NodeModulesCache, RestoreOptions};
use crate::optimizer::TaskError;
use crate::worktree::checkout::CheckoutMethod;
use crate::worktree::create::Creation;
use crate::worktree::install;
use crate::worktree::outcome::CacheOutcome;
use crate::worktree::settings::machine_cores;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the restore did. JSON: `{ outcome }` (`none`, `disabled`, `miss`), `{ outcome: "miss",
/// error }` (an unusable entry), or `{ outcome: "hit" | "near", files, method, entry }`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheRestored {
    /// `hit`, `near`, `miss`, `none` (no package.json) or `disabled`.
    pub outcome: CacheOutcome,
    /// Files restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// How they were restored (`hardlink`, `reflink`, `copy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The entry restored (the project's key on a hit, another on a near hit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<CacheKey>,
    /// Why the entry was unusable (then the outcome is `miss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The project's key (the result's `cache.key`).
    #[serde(skip)]
    pub key: Option<CacheKey>,
    /// The restored node_modules, in the staging folder.
    #[serde(skip)]
    pub staged: Option<PathBuf>,
}

impl CacheRestored {
    fn nothing(outcome: CacheOutcome, key: Option<CacheKey>) -> Self {
        Self {
            outcome,
            files: None,
            method: None,
            entry: None,
            error: None,
            key,
            staged: None,
        }
    }
}

/// Restores node_modules into the staging folder when the cache has an entry for the project.
pub fn restore(c: &Creation, inputs: Arc<ProjectInputs>) -> Result<CacheRestored, TaskError> {
    if let Some(in_place) = spare_node_modules(c, inputs.cache_key.as_ref())? {
        return Ok(in_place);
    }
    let Some(key) = inputs.cache_key.clone() else {
        return Ok(CacheRestored::nothing(CacheOutcome::None, None));
    };
    let Some(cache) = c.state.cache.clone() else {
        return Ok(CacheRestored::nothing(CacheOutcome::Disabled, Some(key)));
    };
    let mut outcome = CacheOutcome::Hit;
    let mut restore_key = key.clone();
    if !cache.contains(&key) {
        let near = install::incremental_install(&inputs.lockfiles)
            .and(inputs.key_inputs.as_ref())
            .and_then(|ki| near_entry(&cache, &c.state.root, ki));
        match near {
            Some(k) => {
                outcome = CacheOutcome::Near;
                restore_key = k;
            }
            None => return Ok(CacheRestored::nothing(CacheOutcome::Miss, Some(key))),
        }
    }
    c.emit(
        "install",
        if outcome == CacheOutcome::Hit {
            "Restoring node_modules from cache".to_string()
        } else {
            format!(
                "Restoring node_modules from a near cache entry ({})",
                &restore_key.as_str()[..12]
            )
        },
    );
    std::fs::create_dir_all(&c.staging)
        .map_err(|e| Error::io_path("create directory", &c.staging, e))?;
    let target = c.staging.join("node_modules");
    let workers = c.state.settings.restore_workers.or_else(|| {
        let entry_files = cache
            .lookup(&restore_key)
            .ok()
            .flatten()
            .map(|e| e.manifest.files)
            .unwrap_or(u64::MAX / 1024);
        let settings = &c.state.settings;
        restore_workers_beside_checkout(
            machine_cores(),
            settings.checkout.method(),
            settings.checkout_threads(),
            c.tracked_files,
            entry_files,
        )
    });
    let opts = RestoreOptions {
        method: c.state.settings.cache_method,
        workers,
        ..Default::default()
    };
    match cache.restore(&restore_key, &target, &opts) {
        Ok(stats) => Ok(CacheRestored {
            outcome,
            files: Some(stats.files),
            method: Some(stats.method_used),
            entry: Some(restore_key),
            error: None,
            key: Some(key),
            staged: Some(target),
        }),
        Err(e) => {
            // an unusable entry is a miss, never a failed creation; it is evicted, so that the
            // populate after the install fills it again (kept, it would be a miss for ever)
            let _ = std::fs::remove_dir_all(&c.staging);
            let error = e.full_message();
            let fate = match cache.evict(&restore_key) {
                Ok(true) => "evicted, refilled after the install",
                Ok(false) => "in use by another restore, kept",
                Err(_) => "could not be evicted",
            };
            c.emit(
                "install",
                format!("⚠ cache entry unusable ({fate}), installing instead: {error}"),
            );
            Ok(CacheRestored {
                error: Some(error),
                ..CacheRestored::nothing(CacheOutcome::Miss, Some(key))
            })
        }
    }
}

/// The claimed spare's node_modules when they are the project's (`key`): a hit in place. Ones
/// of another key are moved aside into the staging folder (`None`: restore as usual).
fn spare_node_modules(
    c: &Creation,
    key: Option<&CacheKey>,
) -> crate::Result<Option<CacheRestored>> {
    let Some(claim) = c.claim.as_ref().filter(|cl| cl.meta.node_modules) else {
        return Ok(None);
    };
    let target = c.path.join("node_modules");
    if key.is_some_and(|k| claim.meta.cache_key.as_deref() == Some(k.as_str())) {
        c.emit("install", "node_modules already in the claimed spare");
        return Ok(Some(CacheRestored {
            outcome: CacheOutcome::Hit,
            files: claim.meta.node_modules_files,
            method: Some("pool".into()),
            entry: key.cloned(),
            error: None,
            key: key.cloned(),
            staged: Some(target),
        }));
    }
    std::fs::create_dir_all(&c.staging)
        .map_err(|e| Error::io_path("create directory", &c.staging, e))?;
    let aside = c.staging.join("node_modules.spare");
    std::fs::rename(&target, &aside)
        .map_err(|e| Error::io_path("move the spare's node_modules aside", &target, e))?;
    Ok(None)
}

/// The newest cache entry of the same project (populated from a folder under `root`) for the
/// same Node ABI, platform, architecture and lockfile names, with other dependencies.
fn near_entry(cache: &NodeModulesCache, root: &Path, inputs: &KeyInputs) -> Option<CacheKey> {
    let root = root.to_string_lossy();
    cache
        .entries()
        .ok()?
        .into_iter()
        .filter(|e| e.manifest.source.starts_with(root.as_ref()))
        .filter(|e| {
            e.manifest.inputs.as_ref().is_some_and(|i| {
                i.node_abi == inputs.node_abi
                    && i.platform == inputs.platform
                    && i.arch == inputs.arch
                    && i.lockfiles
                        .iter()
                        .map(|l| &l.name)
                        .eq(inputs.lockfiles.iter().map(|l| &l.name))
            })
        })
        .max_by_key(|e| e.manifest.created_ms)
        .map(|e| e.manifest.key)
}

/// CPU time of a checkout per tracked file, µs, one thread: the git CLI's (measured: 4,003 files
/// in ~270 ms) and ours (168 ms of CPU for 4,003 files with 2 threads). Absolute values are this
/// development machine's; only their ratio to [`RESTORE_CPU_US_PER_FILE`] matters below, and
/// both are dominated by the same kernel work (creating files, folders, links), so the ratio
/// holds better across machines than either number.
fn checkout_cpu_us_per_file(method: CheckoutMethod) -> f64 {
    match method {
        CheckoutMethod::GitCli => 65.0,
        CheckoutMethod::Git2Parallel => 42.0,
    }
}

/// How much of a core each of our checkout's threads gets done (2 threads used 1.6 cores,
/// measured).
const CHECKOUT_THREAD_EFFICIENCY: f64 = 0.8;

/// Time of a restore per node_modules file with one worker, µs (measured: 12,969 files in ~95 ms
/// with two workers).
const RESTORE_CPU_US_PER_FILE: f64 = 15.0;

/// Workers of a restore that runs beside a checkout on a machine with `cores` cores: the cores
/// the checkout's threads leave free (at least one), when that many finish before the checkout,
/// so the checkout keeps its cores; else `None`, the cache's default (the restore is the long
/// pole: give it every worker). On the 2-core machine it was measured on: one worker beside the
/// single-threaded git CLI, one beside ours on a big repository with a small node_modules, all
/// of them when the restore is the longer one. With more cores than the checkout's threads, the
/// free cores all go to the restore.
pub fn restore_workers_beside_checkout(
    cores: usize,
    method: CheckoutMethod,
    checkout_threads: usize,
    tracked_files: usize,
    entry_files: u64,
) -> Option<usize> {
    let threads = match method {
        CheckoutMethod::GitCli => 1,
        CheckoutMethod::Git2Parallel => checkout_threads.max(1),
    };
    let speedup = if threads == 1 {
        1.0
    } else {
        threads as f64 * CHECKOUT_THREAD_EFFICIENCY
    };
    let checkout_us = tracked_files as f64 * checkout_cpu_us_per_file(method) / speedup;
    let spare = cores.saturating_sub(threads).max(1);
    let restore_us = entry_files as f64 * RESTORE_CPU_US_PER_FILE / spare as f64;
    (restore_us < checkout_us).then_some(spare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckoutMethod::{Git2Parallel, GitCli};

    /// On the 2-core machine these numbers were measured on (ours with 2 threads).
    fn on_two_cores(method: CheckoutMethod, tracked: usize, entry: u64) -> Option<usize> {
        restore_workers_beside_checkout(2, method, 2, tracked, entry)
    }

    #[test]
    fn restore_beside_a_long_checkout_leaves_the_checkout_a_core() {
        // 4k tracked files by the git CLI, 13k-file node_modules: one worker finishes first
        assert_eq!(on_two_cores(GitCli, 4_003, 12_969), Some(1));
        // our checkout of the same is faster than one restore worker: use every worker
        assert_eq!(on_two_cores(Git2Parallel, 4_003, 12_969), None);
        // but a big repo with a small node_modules still leaves the checkout a core
        assert_eq!(on_two_cores(Git2Parallel, 20_000, 9_800), Some(1));
        // a small repo with a huge node_modules: the restore is the long pole, use every worker
        assert_eq!(on_two_cores(GitCli, 85, 98_000), None);
    }

    #[test]
    fn more_cores_than_checkout_threads_go_to_the_restore() {
        // 16 cores, ours on 8 threads: 8 free cores restore a big node_modules beside it
        assert_eq!(
            restore_workers_beside_checkout(16, Git2Parallel, 8, 20_000, 9_800),
            Some(8)
        );
        // the git CLI uses one core: the other 3 of 4 go to the restore
        assert_eq!(
            restore_workers_beside_checkout(4, GitCli, 4, 4_003, 12_969),
            Some(3)
        );
    }
}
