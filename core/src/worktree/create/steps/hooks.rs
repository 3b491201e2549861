//! The hooks of one creation (`worktree/hooks/`): which run ([`plan_hooks`]: the host's, and
//! the repository's that are approved or trusted; the others skipped with a progress message
//! saying how to approve them), and the graph tasks of the `post-create` ones
//! ([`add_post_create`]: one task `hook:<name>` each, after the checkout, node_modules, `.env`
//! and the copied files unless the hook names its own steps; independent hooks run in
//! parallel). The `post-ready` ones run in `create/background.rs`. Must not run a repository
//! hook that is neither approved nor trusted.

use super::ports_env_mcp::PortsAllocated;
use crate::Result;
use crate::optimizer::{TaskError, TaskInputs};
use crate::worktree::create::Creation;
use crate::worktree::create::graph::{GraphBuilder, StepOutput, StepValue};
use crate::worktree::git;
use crate::worktree::hooks::{self, Approvals, Hook, HookEnv, HookPhase, HookRunner};
use crate::worktree::outcome::SkippedHook;
use std::sync::Arc;

/// The steps a post-create hook runs after when it names none.
pub const DEFAULT_AFTER: &[&str] = &[
    "git-worktree-add",
    "npm-bootstrap",
    "write-env",
    "copy-ignored",
];

/// The hooks a creation runs, and where they write.
pub struct CreationHooks {
    /// Run as graph tasks.
    pub post_create: Vec<Hook>,
    /// Run in the background after ready.
    pub post_ready: Vec<Hook>,
    /// Repository hooks not approved.
    pub skipped: Vec<SkippedHook>,
    /// Their environment (ports filled in when known) and log.
    pub runner: HookRunner,
}

/// The task name of a hook.
pub fn task_name(hook: &Hook) -> String {
    format!("hook:{}", hook.name)
}

/// Reads the hooks (the host's, the `from` tree's) and keeps those allowed to run (blocking).
pub fn plan_hooks(c: &Creation, started_at_ms: i64) -> Result<CreationHooks> {
    let settings = &c.state.settings;
    let mut all = hooks::host_hooks(&settings.hooks)?;
    let repo = git::open(&c.state.root)?;
    let from_repo = hooks::repository_hooks_in_tree(&repo, c.from.tree)?;
    let mut skipped = Vec::new();
    if !from_repo.is_empty() {
        let approvals = if settings.trust_project_hooks {
            None
        } else {
            Some(Approvals::load_default()?)
        };
        for h in from_repo {
            if approvals
                .as_ref()
                .is_none_or(|a| a.is_approved(&c.state.root, &h))
            {
                all.push(h);
            } else {
                c.emit(
                    "hooks",
                    format!(
                        "Skipped hook {} from {} (not approved): `{}`. To run it, approve it \
                         with `vibetrees hooks approve --repo {}` (or pass trustProjectHooks)",
                        h.name,
                        h.source.as_str(),
                        h.command,
                        c.state.root.display()
                    ),
                );
                skipped.push(SkippedHook {
                    name: h.name.clone(),
                    source: h.source.as_str().to_string(),
                    command: h.command.clone(),
                });
            }
        }
    }
    let (post_create, post_ready) = all
        .into_iter()
        .partition(|h| h.phase == HookPhase::PostCreate);
    Ok(CreationHooks {
        post_create,
        post_ready,
        skipped,
        runner: HookRunner {
            name: c.name.clone(),
            env: HookEnv {
                worktree: c.path.clone(),
                branch: c.name.clone(),
                root: c.state.root.clone(),
                ports: Vec::new(),
            },
            progress: c.state.on_progress.clone(),
            log: hooks::log_path(&c.state.root, &c.name, started_at_ms),
        },
    })
}

/// The ports of a finished `allocate-ports`, as `(service, port)`.
pub fn ports_of(p: &PortsAllocated) -> Vec<(String, u16)> {
    p.0.to_map().into_iter().collect()
}

/// Adds one task per post-create hook.
pub fn add_post_create(g: &mut GraphBuilder, hooks: &CreationHooks) {
    for hook in &hooks.post_create {
        let mut deps: Vec<String> = match &hook.after {
            None => DEFAULT_AFTER.iter().map(|s| s.to_string()).collect(),
            Some(after) => {
                let mut d = vec!["git-worktree-add".to_string()];
                d.extend(after.iter().filter(|s| *s != "git-worktree-add").cloned());
                d
            }
        };
        if !deps.iter().any(|d| d == "allocate-ports") {
            deps.push("allocate-ports".to_string());
        }
        let (hook2, runner) = (Arc::new(hook.clone()), hooks.runner.clone());
        g.untyped(
            task_name(hook),
            &deps,
            hook.optional,
            move |c: Arc<Creation>, inputs: TaskInputs<StepValue>| {
                let (hook, mut runner) = (Arc::clone(&hook2), runner.clone());
                async move {
                    if let Some(p) = inputs
                        .get(PortsAllocated::STEP)
                        .and_then(|v| PortsAllocated::from_value(v))
                    {
                        runner.env.ports = ports_of(p);
                    }
                    let ran = c.until_cancelled(hooks::run_hook(&hook, &runner)).await??;
                    match &ran.error {
                        Some(e) => Err(TaskError::with_code(
                            if ran.timed_out { "TIMEOUT" } else { "PROCESS" },
                            e.clone(),
                        )),
                        None => Ok(serde_json::to_value(&ran)?),
                    }
                }
            },
        );
    }
}
