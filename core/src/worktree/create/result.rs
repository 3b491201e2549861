//! The result of a creation that reached "ready": [`CreatedWorktree`] built from the graph's run
//! (timings, critical path, each step's JSON from its typed output, the cache report from the
//! `cache-restore` and `npm-bootstrap` outputs), and its record in the history with its Chrome
//! trace. Must not change anything on disk but the history.

use super::Creation;
use super::background::Started;
use super::graph::{StepValue, output};
use super::steps::{Bootstrapped, CacheRestored, CreationHooks, PortsAllocated, WorktreeAdded};
use crate::optimizer::GraphRun;
use crate::profiler::results_chrome_trace;
use crate::profiler::{OperationResult, WORKTREE_TOTAL_OPERATION};
use crate::worktree::history::{CreationRecord, StepRecord};
use crate::worktree::outcome::HooksReport;
use crate::worktree::outcome::{CacheOutcome, CacheReport, CreatedWorktree, StepTiming};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the history's `started_at_ms`).
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The node_modules report of a creation: the restore's outcome, changed by what the bootstrap
/// did (an install run, its error, a near entry whose install failed, the populate to come).
pub fn cache_report(restored: Option<&CacheRestored>, boot: Option<&Bootstrapped>) -> CacheReport {
    let mut report = match restored {
        Some(r) => CacheReport {
            outcome: r.outcome,
            key: r.key.as_ref().map(|k| k.as_str().to_string()),
            method: r.method.clone(),
            files: r.files,
            ..Default::default()
        },
        None => CacheReport::default(),
    };
    if let Some(b) = boot {
        if b.near_failed {
            report.outcome = CacheOutcome::Miss;
            report.method = None;
            report.files = None;
        }
        report.install_command = b.install_command.clone();
        report.install_error = b.install_error.clone();
        report.populating = b.populate;
    }
    report
}

/// What the result says of the hooks.
fn hooks_report(h: &CreationHooks) -> HooksReport {
    let ran = !h.post_create.is_empty() || !h.post_ready.is_empty();
    HooksReport {
        log: ran.then(|| h.runner.log.clone()),
        post_create: h
            .post_create
            .iter()
            .map(super::steps::hook_task_name)
            .collect(),
        post_ready: h.post_ready.iter().map(|x| x.name.clone()).collect(),
        skipped: h.skipped.clone(),
    }
}

/// The result of a creation whose graph succeeded (`total` is its ended total span), recorded in
/// the history when the manager keeps one.
pub fn created(
    c: &Creation,
    run: &GraphRun<StepValue>,
    total: &OperationResult,
    started_at: i64,
    background: Started,
    hooks: &CreationHooks,
) -> CreatedWorktree {
    let timings: Vec<StepTiming> = run
        .outcomes()
        .iter()
        .map(|o| StepTiming {
            name: o.name.clone(),
            status: o.status,
            start_ms: o.start_ms,
            duration_ms: o.duration_ms,
            error: o.error.as_ref().map(|e| e.message.clone()),
        })
        .collect();
    let critical_path: Vec<String> = run.critical_path().iter().map(|s| s.to_string()).collect();
    let mut steps = serde_json::Map::new();
    for (name, value) in run.results() {
        let json = serde_json::to_value(&**value).unwrap_or_else(
            |e| serde_json::json!({ "error": format!("step output not serializable: {e}") }),
        );
        steps.insert(name.to_string(), json);
    }
    let cache = cache_report(
        output::<CacheRestored>(run).as_deref(),
        output::<Bootstrapped>(run).as_deref(),
    );
    let mut creation_id = None;
    if let Some(h) = &c.state.history {
        let rec = CreationRecord {
            id: 0,
            name: c.name.clone(),
            repo: c.state.root.display().to_string(),
            started_at_ms: started_at,
            ready_ms: total.duration,
            cache_outcome: cache.outcome.as_str().to_string(),
            critical_path: critical_path.clone(),
            steps: std::iter::once(StepRecord {
                step: WORKTREE_TOTAL_OPERATION.to_string(),
                duration_ms: total.duration,
                critical: false,
            })
            .chain(run.outcomes().iter().filter_map(|o| {
                o.duration_ms.map(|d| StepRecord {
                    step: o.name.clone(),
                    duration_ms: d,
                    critical: critical_path.contains(&o.name),
                })
            }))
            .collect(),
        };
        let trace = results_chrome_trace(total, &[]);
        creation_id = h.lock().record(&rec, Some(&trace)).ok();
    }
    background.trace.recorded(total, creation_id);
    let added = output::<WorktreeAdded>(run);
    CreatedWorktree {
        name: c.name.clone(),
        path: c.path.clone(),
        branch: c.name.clone(),
        from: c.from.ref_name.clone(),
        created_branch: added.as_ref().is_some_and(|a| a.created_branch),
        ports: output::<PortsAllocated>(run)
            .map(|p| p.0.to_map())
            .unwrap_or_default(),
        docker_status: Vec::new(),
        total_ms: total.duration,
        timings,
        critical_path,
        cache,
        steps,
        background: background.names,
        hooks: hooks_report(hooks),
        creation_id,
        pool: added.and_then(|a| a.pool).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worktree::create::steps::Bootstrap;

    fn restored(outcome: CacheOutcome, staged: bool) -> CacheRestored {
        CacheRestored {
            outcome,
            files: staged.then_some(12),
            method: staged.then(|| "hardlink".to_string()),
            entry: None,
            error: None,
            key: Some(crate::cache::CacheKey::parse(&"ab".repeat(32)).unwrap()),
            staged: staged.then(|| "/s/node_modules".into()),
        }
    }

    #[test]
    fn the_cache_report_follows_the_restore_then_the_bootstrap() {
        let hit = cache_report(Some(&restored(CacheOutcome::Hit, true)), None);
        assert_eq!(hit.outcome, CacheOutcome::Hit);
        assert_eq!(
            (hit.files, hit.method.as_deref()),
            (Some(12), Some("hardlink"))
        );
        let near_failed = Bootstrapped {
            outcome: Bootstrap::Installed {
                command: "npm ci".into(),
            },
            install_command: Some("npm ci".into()),
            install_error: None,
            populate: true,
            near_failed: true,
        };
        let r = cache_report(
            Some(&restored(CacheOutcome::Near, true)),
            Some(&near_failed),
        );
        assert_eq!(r.outcome, CacheOutcome::Miss);
        assert_eq!((r.files, r.method), (None, None));
        assert_eq!(r.install_command.as_deref(), Some("npm ci"));
        assert!(r.populating);
        assert!(r.key.is_some());
    }
}
