//! What a run (or a dry run) tells: per-task outcomes, the critical path, DOT and JSON.

use super::graph::Graph;
use super::task::TaskError;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// It ran and returned a result.
    Ok,
    /// It ran and returned an error (or panicked).
    Failed,
    /// It never started: a dependency failed, the graph stopped, or the run was cancelled first.
    Skipped,
    /// It was running when the run was cancelled; it was stopped (async) or its result dropped
    /// (blocking).
    Cancelled,
}

impl TaskStatus {
    /// The lowercase name used in JSON, DOT and the bindings: `ok`, `failed`, `skipped`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Ok => "ok",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One task's outcome in a run. Times are milliseconds since the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutcome {
    /// The task's name.
    pub name: String,
    /// How it ended.
    pub status: TaskStatus,
    /// Whether it was marked optional.
    pub optional: bool,
    /// Its dependencies (deduplicated, in declaration order).
    pub dependencies: Vec<String>,
    /// When it started (ms since the run started); `None` if it never started.
    pub start_ms: Option<f64>,
    /// When it ended (ms since the run started); `None` if it never started.
    pub end_ms: Option<f64>,
    /// `end_ms - start_ms`, when it ran.
    pub duration_ms: Option<f64>,
    /// Its error, when it failed.
    pub error: Option<TaskError>,
    /// Why it did not run (skipped) or did not finish (cancelled).
    pub reason: Option<String>,
    /// Its profiler span id, when the optimizer had a profiler and the task finished (a cancelled
    /// task's span is ended as failed with `cancelled`, but its id is not reported here).
    pub span_id: Option<String>,
}

/// The serializable summary of a run: what [`GraphRun::to_json`] prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// True when every non-optional task succeeded and the run was not cancelled.
    pub success: bool,
    /// True when the run was cancelled.
    pub cancelled: bool,
    /// The first non-optional task that failed (in time), if any.
    pub failed_task: Option<String>,
    /// Wall time of the run in milliseconds.
    pub total_ms: f64,
    /// The chain of tasks that set the total time, first to last.
    pub critical_path: Vec<String>,
    /// Sum of the critical path's task durations, in milliseconds.
    pub critical_path_ms: f64,
    /// Every task's outcome, in input order.
    pub tasks: Vec<TaskOutcome>,
}

/// The result of [`super::PerformanceOptimizer::run_graph`] / `run_with_dependencies`:
/// every task's result and outcome, the critical path, DOT and JSON.
pub struct GraphRun<T> {
    pub(crate) outcomes: Vec<TaskOutcome>,
    pub(crate) results: Vec<Option<Arc<T>>>,
    pub(crate) index: super::graph::NameIndex,
    pub(crate) critical_path: Vec<usize>,
    pub(crate) total_ms: f64,
    pub(crate) cancelled: bool,
    pub(crate) first_failure: Option<usize>,
}

impl<T> std::fmt::Debug for GraphRun<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRun")
            .field("report", &self.report())
            .finish()
    }
}

impl<T> GraphRun<T> {
    /// The result of task `name`, if it ran and succeeded.
    pub fn result(&self, name: &str) -> Option<&Arc<T>> {
        self.index.get(name).and_then(|&i| self.results[i].as_ref())
    }

    /// The results of the tasks that succeeded, as `(name, result)` in input order.
    pub fn results(&self) -> impl Iterator<Item = (&str, &Arc<T>)> {
        self.outcomes
            .iter()
            .zip(&self.results)
            .filter_map(|(o, r)| r.as_ref().map(|r| (o.name.as_str(), r)))
    }

    /// The results of the tasks that succeeded, by name.
    pub fn into_results(self) -> HashMap<String, Arc<T>> {
        self.outcomes
            .into_iter()
            .zip(self.results)
            .filter_map(|(o, r)| r.map(|r| (o.name, r)))
            .collect()
    }

    /// The results and outcomes together, in input order.
    pub fn into_parts(self) -> Vec<(TaskOutcome, Option<Arc<T>>)> {
        self.outcomes.into_iter().zip(self.results).collect()
    }

    /// Every task's outcome, in input order.
    pub fn outcomes(&self) -> &[TaskOutcome] {
        &self.outcomes
    }

    /// The outcome of task `name`.
    pub fn outcome(&self, name: &str) -> Option<&TaskOutcome> {
        self.index.get(name).map(|&i| &self.outcomes[i])
    }

    /// The chain of task names that set the total time, first to last: it ends at the task that
    /// finished last and, at each step back, follows the dependency that finished last.
    pub fn critical_path(&self) -> Vec<&str> {
        self.critical_path
            .iter()
            .map(|&i| self.outcomes[i].name.as_str())
            .collect()
    }

    /// Wall time of the run in milliseconds.
    pub fn total_ms(&self) -> f64 {
        self.total_ms
    }

    /// True when the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// True when every non-optional task succeeded and the run was not cancelled.
    pub fn is_success(&self) -> bool {
        self.first_failure.is_none() && !self.cancelled
    }

    /// The error the run stands for, if it did not succeed: [`Error::TaskFailed`] naming the first
    /// non-optional task that failed (with its own message), else [`Error::Cancelled`].
    pub fn error(&self) -> Option<Error> {
        if let Some(i) = self.first_failure {
            let o = &self.outcomes[i];
            return Some(Error::TaskFailed {
                task: o.name.clone(),
                message: o
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default(),
            });
        }
        if self.cancelled {
            let unfinished = self
                .outcomes
                .iter()
                .filter(|o| matches!(o.status, TaskStatus::Skipped | TaskStatus::Cancelled))
                .count();
            return Some(Error::Cancelled(format!(
                "task graph cancelled; {unfinished} task(s) did not finish"
            )));
        }
        None
    }

    /// `Ok(self)` when the run succeeded, else the error of [`GraphRun::error`].
    pub fn into_result(self) -> Result<Self> {
        match self.error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// The serializable summary: outcomes, critical path, totals.
    pub fn report(&self) -> RunReport {
        let critical_path_ms = self
            .critical_path
            .iter()
            .filter_map(|&i| self.outcomes[i].duration_ms)
            .sum();
        RunReport {
            success: self.is_success(),
            cancelled: self.cancelled,
            failed_task: self.first_failure.map(|i| self.outcomes[i].name.clone()),
            total_ms: self.total_ms,
            critical_path: self.critical_path().iter().map(|s| s.to_string()).collect(),
            critical_path_ms,
            tasks: self.outcomes.clone(),
        }
    }

    /// The report as pretty JSON (camelCase keys).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.report()).expect("a run report always serializes")
    }

    /// The graph in Graphviz DOT: edges go from a dependency to its dependent; each node shows
    /// its status and duration; the critical path is drawn bold.
    pub fn to_dot(&self) -> String {
        let on_path: Vec<bool> = {
            let mut v = vec![false; self.outcomes.len()];
            for &i in &self.critical_path {
                v[i] = true;
            }
            v
        };
        let mut out = String::from(
            "digraph tasks {\n  rankdir=LR;\n  node [shape=box, style=filled, fontname=\"Helvetica\"];\n",
        );
        for (i, o) in self.outcomes.iter().enumerate() {
            let fill = match o.status {
                TaskStatus::Ok => "palegreen",
                TaskStatus::Failed if o.optional => "khaki",
                TaskStatus::Failed => "salmon",
                TaskStatus::Skipped => "lightgrey",
                TaskStatus::Cancelled => "orange",
            };
            let mut label = format!("{}\\n{}", dot_escape(&o.name), o.status.as_str());
            if let Some(d) = o.duration_ms {
                let _ = write!(label, " {d:.1} ms");
            }
            if o.optional {
                label.push_str(" (optional)");
            }
            let bold = if on_path[i] { ", penwidth=3" } else { "" };
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\", fillcolor={fill}{bold}];",
                dot_escape(&o.name),
                label
            );
        }
        for (i, o) in self.outcomes.iter().enumerate() {
            for dep in &o.dependencies {
                let d = self.index[dep.as_str()];
                let bold = if on_path[i] && on_path[d] && self.critical_edge(d, i) {
                    " [penwidth=3]"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\"{bold};",
                    dot_escape(dep),
                    dot_escape(&o.name)
                );
            }
        }
        out.push_str("}\n");
        out
    }

    fn critical_edge(&self, from: usize, to: usize) -> bool {
        self.critical_path
            .windows(2)
            .any(|w| w[0] == from && w[1] == to)
    }
}

/// The critical path: from the task that finished last, back through the dependency that finished
/// last at each step. Tasks that never ran are ignored. Ties go to the earlier task in input order
/// (for the last task) and to the dependency declared first (at each step back).
pub(crate) fn critical_path(graph: &Graph, end_ms: &[Option<f64>]) -> Vec<usize> {
    let latest = |candidates: &mut dyn Iterator<Item = usize>| -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for i in candidates {
            if let Some(e) = end_ms[i]
                && best.is_none_or(|(_, b)| e > b)
            {
                best = Some((i, e));
            }
        }
        best.map(|(i, _)| i)
    };
    let mut path = Vec::new();
    let mut current = latest(&mut (0..graph.len()));
    while let Some(i) = current {
        path.push(i);
        current = latest(&mut graph.deps[i].iter().copied());
    }
    path.reverse();
    path
}

/// One task of a [`GraphPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedTask {
    /// The task's name.
    pub name: String,
    /// Its dependencies (deduplicated, in declaration order).
    pub dependencies: Vec<String>,
    /// Whether it is optional.
    pub optional: bool,
    /// 0 without dependencies, else 1 + the highest level among its dependencies.
    pub level: usize,
}

/// What a run would do, computed without running anything ([`super::PerformanceOptimizer::dry_run`]).
///
/// The levels are for reading: the scheduler does not run in waves, it starts each task as soon as
/// its own dependencies are done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphPlan {
    /// Every task in input order, with its level.
    pub tasks: Vec<PlannedTask>,
    /// A topological order (dependencies first; ties in input order).
    pub order: Vec<String>,
    /// Tasks grouped by level.
    pub levels: Vec<Vec<String>>,
    /// The longest chain of dependencies (by task count), first to last: the critical path if
    /// every task took the same time.
    pub longest_chain: Vec<String>,
}

impl GraphPlan {
    pub(crate) fn from_graph(graph: &Graph) -> Self {
        let order = graph.topological_order();
        let level = graph.levels(&order);
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut levels: Vec<Vec<String>> = vec![Vec::new(); depth];
        for &i in &order {
            levels[level[i]].push(graph.names[i].to_string());
        }
        let tasks = (0..graph.len())
            .map(|i| PlannedTask {
                name: graph.names[i].to_string(),
                dependencies: graph.deps[i]
                    .iter()
                    .map(|&d| graph.names[d].to_string())
                    .collect(),
                optional: graph.optional[i],
                level: level[i],
            })
            .collect();
        // Longest chain: treat each task's level as its "end time".
        let as_end: Vec<Option<f64>> = level.iter().map(|&l| Some(l as f64)).collect();
        let longest_chain = critical_path(graph, &as_end)
            .into_iter()
            .map(|i| graph.names[i].to_string())
            .collect();
        GraphPlan {
            tasks,
            order: order.iter().map(|&i| graph.names[i].to_string()).collect(),
            levels,
            longest_chain,
        }
    }

    /// The plan as pretty JSON (camelCase keys).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serializes")
    }

    /// The graph in Graphviz DOT, edges from a dependency to its dependent, one rank per level.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph tasks {\n  rankdir=LR;\n  node [shape=box];\n");
        for t in &self.tasks {
            let style = if t.optional { ", style=dashed" } else { "" };
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\\nlevel {}\"{style}];",
                dot_escape(&t.name),
                dot_escape(&t.name),
                t.level
            );
        }
        for t in &self.tasks {
            for dep in &t.dependencies {
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\";",
                    dot_escape(dep),
                    dot_escape(&t.name)
                );
            }
        }
        for level in &self.levels {
            let names: Vec<String> = level
                .iter()
                .map(|n| format!("\"{}\"", dot_escape(n)))
                .collect();
            let _ = writeln!(out, "  {{ rank=same; {} }}", names.join("; "));
        }
        out.push_str("}\n");
        out
    }
}

/// Escapes a string for a double-quoted DOT id or label.
fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::graph::TaskSpec;

    #[test]
    fn critical_path_ends_at_the_last_task_and_follows_the_latest_dependency() {
        let names = ["a", "b", "c", "d", "e"];
        let deps: Vec<Vec<String>> = vec![
            vec![],
            vec![],
            vec!["a".into(), "b".into()],
            vec!["c".into()],
            vec!["a".into()],
        ];
        let specs: Vec<TaskSpec<'_>> = names
            .iter()
            .zip(&deps)
            .map(|(n, d)| TaskSpec {
                name: n,
                dependencies: d,
                optional: false,
            })
            .collect();
        let graph = Graph::build(&specs).unwrap();
        // b ends after a, so c's path goes through b; e never ran; d ends last.
        let end = [Some(10.0), Some(30.0), Some(40.0), Some(45.0), None];
        assert_eq!(critical_path(&graph, &end), [1, 2, 3]);
        // Now e ends last: its only dependency is a.
        let end = [Some(10.0), Some(30.0), Some(40.0), Some(45.0), Some(50.0)];
        assert_eq!(critical_path(&graph, &end), [0, 4]);
        // Nothing ran: no path.
        assert!(critical_path(&graph, &[None; 5]).is_empty());
    }

    #[test]
    fn dot_escapes_quotes_and_backslashes() {
        assert_eq!(dot_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
