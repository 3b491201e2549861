//! `vibetrees graph`: profiles and runs a small built-in task graph modelled on worktree creation
//! (git, ports, install, env, mcp, containers, with short sleeps standing in for the work) and
//! prints the run report, the critical path and the profiler's report.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;
use vibetrees_core::optimizer::{
    FailurePolicy, OptimizerOptions, PerformanceOptimizer, Task, TaskError, TaskStatus,
};
use vibetrees_core::{Error, Profiler, Result};

/// Options of `vibetrees graph`.
#[derive(clap::Args)]
pub struct GraphArgs {
    /// Print the Chrome trace (Trace Event Format JSON, for Perfetto) instead of the report.
    #[arg(long)]
    pub trace: bool,
    /// Print the graph with its timings in Graphviz DOT instead of the report.
    #[arg(long)]
    pub dot: bool,
    /// Print the run report as JSON instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Only plan: validate the graph and print its order and levels; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Most tasks running at once (default: no limit).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Make this task fail, to see the failure policy at work (e.g. `--fail git-worktree-add`).
    #[arg(long, value_name = "TASK")]
    pub fail: Option<String>,
    /// What a failure does to the rest: `stop` (default) or `continue`.
    #[arg(long, default_value = "stop")]
    pub policy: String,
    /// Multiply every task's simulated duration by this factor.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

/// One built-in task: name, dependencies, simulated milliseconds, optional, runs on a blocking
/// thread.
struct Step {
    name: &'static str,
    deps: &'static [&'static str],
    ms: u64,
    optional: bool,
    blocking: bool,
}

/// The built-in graph: the steps of a worktree creation, named like the server's metrics.
const STEPS: &[Step] = &[
    Step {
        name: "git-worktree-add",
        deps: &[],
        ms: 40,
        optional: false,
        blocking: false,
    },
    Step {
        name: "allocate-ports",
        deps: &[],
        ms: 8,
        optional: false,
        blocking: false,
    },
    Step {
        name: "npm-bootstrap",
        deps: &["git-worktree-add"],
        ms: 60,
        optional: false,
        blocking: true,
    },
    Step {
        name: "write-env",
        deps: &["git-worktree-add", "allocate-ports"],
        ms: 2,
        optional: false,
        blocking: false,
    },
    Step {
        name: "mcp-discovery",
        deps: &["git-worktree-add", "allocate-ports"],
        ms: 12,
        optional: true,
        blocking: false,
    },
    Step {
        name: "docker-compose-up",
        deps: &["write-env"],
        ms: 35,
        optional: false,
        blocking: false,
    },
];

fn tasks(args: &GraphArgs) -> Vec<Task<String>> {
    STEPS
        .iter()
        .map(|step| {
            let delay = Duration::from_secs_f64(step.ms as f64 * args.scale.max(0.0) / 1000.0);
            let fail = args.fail.as_deref() == Some(step.name);
            let name = step.name;
            let outcome = move |inputs: Vec<String>| -> std::result::Result<String, TaskError> {
                if fail {
                    return Err(TaskError::with_code(
                        "DEMO",
                        format!("{name} failed (--fail)"),
                    ));
                }
                Ok(if inputs.is_empty() {
                    format!("{name} done")
                } else {
                    format!("{name} done after {}", inputs.join(", "))
                })
            };
            let task = if step.blocking {
                Task::blocking(step.name, step.deps, move |inputs| {
                    std::thread::sleep(delay);
                    outcome(inputs.iter().map(|(n, _)| n.to_string()).collect())
                })
            } else {
                Task::new(step.name, step.deps, move |inputs| {
                    let names: Vec<String> = inputs.iter().map(|(n, _)| n.to_string()).collect();
                    async move {
                        tokio::time::sleep(delay).await;
                        outcome(names)
                    }
                })
            };
            task.with_optional(step.optional)
        })
        .collect()
}

/// Runs `vibetrees graph`.
pub fn run(args: GraphArgs) -> Result<()> {
    if !(args.scale.is_finite() && args.scale >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "--scale must be a finite number >= 0, got {}",
            args.scale
        )));
    }
    if let Some(f) = &args.fail
        && !STEPS.iter().any(|s| s.name == f)
    {
        let names: Vec<&str> = STEPS.iter().map(|s| s.name).collect();
        return Err(Error::InvalidArgument(format!(
            "--fail: no task named '{f}' (tasks: {})",
            names.join(", ")
        )));
    }
    let profiler = Arc::new(Profiler::new());
    let base = PerformanceOptimizer::new(OptimizerOptions {
        profiler: Some(profiler.clone()),
        concurrency: args.concurrency,
        failure_policy: args.policy.parse::<FailurePolicy>()?,
        ..Default::default()
    })?;
    let tasks = tasks(&args);
    let mut out = String::new();

    if args.dry_run {
        let plan = base.dry_run(&tasks)?;
        if args.dot {
            let _ = write!(out, "{}", plan.to_dot());
        } else if args.json {
            let _ = writeln!(out, "{}", plan.to_json());
        } else {
            let _ = writeln!(out, "Plan ({} tasks, nothing run)", plan.tasks.len());
            let _ = writeln!(out, "  order: {}", plan.order.join(", "));
            for (level, names) in plan.levels.iter().enumerate() {
                let _ = writeln!(out, "  level {level}: {}", names.join(", "));
            }
            let _ = writeln!(out, "  longest chain: {}", plan.longest_chain.join(" -> "));
        }
        emit(&out);
        return Ok(());
    }

    let total = profiler.start("create-worktree-total", None)?;
    let run = base
        .with_parent_span(total.clone())
        .run_graph_blocking(tasks);
    match &run {
        Ok(r) if r.is_success() => profiler.end(&total)?,
        Ok(_) => profiler.end_failed(&total, "a task failed")?,
        Err(e) => profiler.end_failed(&total, &e.to_string())?,
    };
    let run = run?;

    if args.trace {
        let _ = writeln!(out, "{}", profiler.to_chrome_trace());
    } else if args.dot {
        let _ = write!(out, "{}", run.to_dot());
    } else if args.json {
        let _ = writeln!(out, "{}", run.to_json());
    } else {
        let report = run.report();
        let _ = writeln!(
            out,
            "Task graph: {} tasks in {:.1} ms ({})",
            report.tasks.len(),
            report.total_ms,
            if report.success { "success" } else { "failed" }
        );
        let _ = writeln!(
            out,
            "Critical path: {} ({:.1} ms of task time)",
            report.critical_path.join(" -> "),
            report.critical_path_ms
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<20} {:<9} {:>9} {:>9} {:>9}  note",
            "task", "status", "start ms", "end ms", "ms"
        );
        let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        for o in &report.tasks {
            let note = match (&o.error, &o.reason) {
                (Some(e), _) => e.message.clone(),
                (None, Some(r)) => r.clone(),
                _ => String::new(),
            };
            let status = if o.optional && o.status == TaskStatus::Failed {
                "failed*".to_string()
            } else {
                o.status.as_str().to_string()
            };
            let _ = writeln!(
                out,
                "{:<20} {:<9} {:>9} {:>9} {:>9}  {}",
                o.name,
                status,
                fmt(o.start_ms),
                fmt(o.end_ms),
                fmt(o.duration_ms),
                note
            );
        }
        let _ = writeln!(out);
        let profile = profiler.generate_report();
        let _ = writeln!(
            out,
            "Profiler report (total {:.1} ms):",
            profile.total_duration
        );
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>9} {:>9} {:>9}",
            "operation", "count", "avg ms", "p95 ms", "total ms"
        );
        for op in &profile.operations {
            let _ = writeln!(
                out,
                "{:<22} {:>5} {:>9.1} {:>9.1} {:>9.1}",
                op.name, op.count, op.avg, op.p95, op.total
            );
        }
    }
    emit(&out);
    match run.error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Writes the output; a closed pipe (`vibetrees graph | head`) is not an error.
fn emit(out: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
}
