//! After "ready", until "settled": the work a creation leaves running in the manager's
//! background jobs: the cache populate after an install, `up -d` of the non-critical services,
//! the optional branch push (with its time limit). Each is a root profiler span; when the last
//! one ends, their timings are added to the creation's history and its Chrome trace is rewritten
//! to show them after an instant event `ready`. Must not change the worktree's files beyond
//! what these jobs are for.

use super::Creation;
use super::graph::{StepValue, output};
use super::steps::{
    Bootstrapped, CreationHooks, PortsAllocated, ProjectInputs, ServicesLoaded, ports_of,
};
use crate::optimizer::GraphRun;
use crate::profiler::OperationResult;
use crate::profiler::results_chrome_trace;
use crate::worktree::git;
use crate::worktree::history::StepRecord;
use crate::worktree::hooks::{Hook, HookRunner, run_hook};
use crate::worktree::include::{
    IncludeCopied, Selected, copy_selected, copy_workers, use_direct_io,
};
use crate::worktree::recovery::{STAGING_DIR, unique_suffix};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// The background steps of one creation, for its history and trace.
#[derive(Default)]
struct Spans {
    total: Option<OperationResult>,
    creation_id: Option<i64>,
    finished: Vec<OperationResult>,
    pending: usize,
    recorded: bool,
}

/// Where a creation's background steps report their spans.
pub struct BackgroundTrace {
    creation: Arc<Creation>,
    spans: Mutex<Spans>,
}

impl BackgroundTrace {
    /// A background step starts: its span (a root span: the creation's total has ended).
    fn started(&self, step: &str) -> Option<String> {
        self.spans.lock().pending += 1;
        self.creation.state.profiler.start(step, None).ok()
    }

    /// A background step ends (`error` when it failed); the last one to end records them all in
    /// the history with the creation's full trace.
    fn finished(&self, span: Option<String>, error: Option<&str>) {
        let profiler = &self.creation.state.profiler;
        let result = span.and_then(|s| match error {
            None => profiler.end(&s).ok(),
            Some(e) => profiler.end_failed(&s, e).ok(),
        });
        let mut t = self.spans.lock();
        t.pending -= 1;
        t.finished.extend(result);
        self.record(&mut t);
    }

    /// The creation is in the history (as `creation_id`): its background steps can be added
    /// when they end.
    pub fn recorded(&self, total: &OperationResult, creation_id: Option<i64>) {
        let mut t = self.spans.lock();
        t.total = Some(total.clone());
        t.creation_id = creation_id;
        self.record(&mut t);
    }

    fn record(&self, t: &mut Spans) {
        if t.pending > 0 || t.recorded || t.finished.is_empty() {
            return;
        }
        let (Some(id), Some(total), Some(h)) = (
            t.creation_id,
            t.total.as_ref(),
            self.creation.state.history.as_ref(),
        ) else {
            return;
        };
        t.recorded = true;
        let steps: Vec<StepRecord> = t
            .finished
            .iter()
            .map(|r| StepRecord {
                step: r.name.clone(),
                duration_ms: r.duration,
                critical: false,
            })
            .collect();
        let trace = results_chrome_trace(total, &t.finished);
        if let Err(e) = h.lock().record_background(id, &steps, &trace) {
            tracing::warn!("history: background steps of creation {id}: {e}");
        }
    }
}

/// The background work started after ready: the job names and their trace.
pub struct Started {
    /// Names of the background steps started (the result's `background`).
    pub names: Vec<String>,
    /// Where they report their spans.
    pub trace: Arc<BackgroundTrace>,
}

/// Starts the background steps a finished graph calls for.
pub fn start(c: &Arc<Creation>, run: &GraphRun<StepValue>, hooks: &CreationHooks) -> Started {
    let trace = Arc::new(BackgroundTrace {
        creation: Arc::clone(c),
        spans: Mutex::new(Spans::default()),
    });
    let mut names = Vec::new();
    let populate = output::<Bootstrapped>(run).is_some_and(|b| b.populate);
    if populate && let Some(inputs) = output::<ProjectInputs>(run) {
        populate_cache(c, &trace, &inputs, &mut names);
    }
    if let Some(services) = output::<ServicesLoaded>(run) {
        start_other_services(c, &trace, &services, &mut names);
    }
    if c.state.settings.push_branch {
        push_branch(c, &trace, &mut names);
    }
    if let Some(later) = output::<IncludeCopied>(run).and_then(|o| o.deferred.clone()) {
        copy_in_background(c, &trace, later, &mut names);
    }
    if !hooks.post_ready.is_empty() {
        let mut runner = hooks.runner.clone();
        if let Some(p) = output::<PortsAllocated>(run) {
            runner.env.ports = ports_of(&p);
        }
        post_ready_hooks(c, &trace, hooks.post_ready.clone(), runner, &mut names);
    }
    Started { names, trace }
}

/// The cache populate from the worktree's freshly installed node_modules.
fn populate_cache(
    c: &Arc<Creation>,
    trace: &Arc<BackgroundTrace>,
    inputs: &ProjectInputs,
    names: &mut Vec<String>,
) {
    let (Some(cache), Some(key)) = (c.state.cache.clone(), inputs.cache_key.clone()) else {
        return;
    };
    let src = c.path.join("node_modules");
    let popts = crate::cache::PopulateOptions {
        inputs: inputs.key_inputs.clone(),
        ..Default::default()
    };
    names.push("cache-populate".to_string());
    let span = trace.started("cache-populate");
    let (c2, trace) = (Arc::clone(c), Arc::clone(trace));
    c.state.jobs.spawn("cache-populate", async move {
        let r = tokio::task::spawn_blocking(move || cache.populate_with(&key, &src, &popts)).await;
        let error = match &r {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        trace.finished(span, error.as_deref());
        let message = match r {
            Ok(Ok(rep)) => format!(
                "✓ node_modules cached ({} files, {:.0} ms)",
                rep.files, rep.duration_ms
            ),
            Ok(Err(e)) => format!("cache populate failed: {}", e.full_message()),
            Err(e) => format!("cache populate failed: {e}"),
        };
        c2.emit("cache", message);
    });
}

/// `up -d` of the services that are not critical.
fn start_other_services(
    c: &Arc<Creation>,
    trace: &Arc<BackgroundTrace>,
    services: &Arc<ServicesLoaded>,
    names: &mut Vec<String>,
) {
    let Some(engine) = services.engine.clone() else {
        return;
    };
    let (_, rest) = services.split_critical();
    if rest.is_empty() {
        return;
    }
    let Some(project) = services.confined_project(c, "docker-compose-up-rest") else {
        return;
    };
    names.push("docker-compose-up-rest".to_string());
    let span = trace.started("docker-compose-up-rest");
    let (c2, trace) = (Arc::clone(c), Arc::clone(trace));
    c.state.jobs.spawn("docker-compose-up-rest", async move {
        c2.emit(
            "containers",
            format!("Starting services: {}", rest.join(", ")),
        );
        let out = engine
            .up(&project, &rest, None, Duration::from_secs(600))
            .await;
        c2.emit("containers", out.message.clone());
        trace.finished(span, (!out.ok).then_some(out.message.as_str()));
    });
}

/// `git push --set-upstream origin -- <branch>`, within the push time limit.
fn push_branch(c: &Arc<Creation>, trace: &Arc<BackgroundTrace>, names: &mut Vec<String>) {
    names.push("git-push".to_string());
    let span = trace.started("git-push");
    let (c2, trace) = (Arc::clone(c), Arc::clone(trace));
    c.state.jobs.spawn("git-push", async move {
        let settings = &c2.state.settings;
        let mut cmd = crate::worktree::git_env::git_command_async(&settings.git_program);
        cmd.current_dir(&c2.path)
            .args(["push", "--set-upstream", "origin", "--"])
            .arg(&c2.name)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let r = tokio::time::timeout(settings.push_timeout, git::run_git(cmd, "push")).await;
        let error = match r {
            Ok(Ok(())) => {
                c2.emit("git", format!("✓ Branch {} pushed", c2.name));
                None
            }
            Ok(Err(e)) => {
                let m = format!("push failed: {}", e.full_message());
                c2.emit("git", m.clone());
                Some(m)
            }
            Err(_) => {
                c2.emit("git", "push timed out");
                Some("push timed out".to_string())
            }
        };
        trace.finished(span, error.as_deref());
    });
}

/// The post-ready hooks, all at once; their failures are reported, never fatal.
fn post_ready_hooks(
    c: &Arc<Creation>,
    trace: &Arc<BackgroundTrace>,
    hooks: Vec<Hook>,
    runner: HookRunner,
    names: &mut Vec<String>,
) {
    names.push("hooks-post-ready".to_string());
    let span = trace.started("hooks-post-ready");
    let (c2, trace) = (Arc::clone(c), Arc::clone(trace));
    c.state.jobs.spawn("hooks-post-ready", async move {
        let runs = futures::future::join_all(hooks.iter().map(|h| run_hook(h, &runner))).await;
        let mut failed = Vec::new();
        for (h, r) in hooks.iter().zip(runs) {
            match r {
                Ok(ran) if ran.ok => {}
                Ok(ran) => failed.push(ran.error.unwrap_or_else(|| h.name.clone())),
                Err(e) => failed.push(e.full_message()),
            }
        }
        let error = (!failed.is_empty()).then(|| failed.join("; "));
        match &error {
            None => c2.emit(
                "hooks",
                format!("✓ Post-ready hooks done ({})", hooks.len()),
            ),
            Some(e) => c2.emit("hooks", format!("Post-ready hooks failed: {e}")),
        }
        trace.finished(span, error.as_deref());
    });
}

/// The ignored files marked for the background, copied after ready (staged in a folder of its
/// own under `.staging`, which `recovery.rs` clears if we die).
fn copy_in_background(
    c: &Arc<Creation>,
    trace: &Arc<BackgroundTrace>,
    later: Arc<Selected>,
    names: &mut Vec<String>,
) {
    names.push("copy-ignored-background".to_string());
    let span = trace.started("copy-ignored-background");
    let (c2, trace) = (Arc::clone(c), Arc::clone(trace));
    let direct_io = use_direct_io(c.state.settings.include_direct_io, &c.path);
    let staging = c
        .state
        .base
        .join(STAGING_DIR)
        .join(format!("{}.{}", c.name, unique_suffix()));
    c.state.jobs.spawn("copy-ignored-background", async move {
        let (root, path, st) = (c2.state.root.clone(), c2.path.clone(), staging.clone());
        let r = tokio::task::spawn_blocking(move || {
            copy_selected(
                &root,
                &path,
                &st.join("include"),
                &later,
                copy_workers(direct_io),
                direct_io,
            )
        })
        .await;
        let _ = std::fs::remove_dir_all(&staging);
        let (message, error) = match r {
            Ok(Ok(out)) => (
                format!(
                    "✓ Copied {} ignored files ({:.1} MB, {}) in the background in {:.0} ms",
                    out.files,
                    out.bytes as f64 / 1e6,
                    out.method,
                    out.ms
                ),
                None,
            ),
            Ok(Err(e)) => {
                let m = format!("background copy failed: {}", e.full_message());
                (m.clone(), Some(m))
            }
            Err(e) => (format!("background copy failed: {e}"), Some(e.to_string())),
        };
        c2.emit("include", message);
        trace.finished(span, error.as_deref());
    });
}
