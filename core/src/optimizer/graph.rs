//! The validated shape of a task graph: names, edges by index, topological order and levels.
//!
//! Validation runs before any task starts and is deterministic (input order, then declaration
//! order): empty names, duplicate names, self-dependencies, unknown dependencies, then cycles.

use crate::{Error, Result};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// A task graph with dependencies resolved to indices (the index is the task's input position).
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    /// Task names in input order.
    pub names: Vec<Arc<str>>,
    /// For each task, its dependencies (deduplicated, in declaration order).
    pub deps: Vec<Vec<usize>>,
    /// For each task, the tasks that depend on it (in input order).
    pub dependents: Vec<Vec<usize>>,
    /// For each task, whether it is optional.
    pub optional: Vec<bool>,
    /// Task index by name (with duplicates, as in `run_parallel`, the last one).
    pub index: NameIndex,
}

/// Task index by name, with a fast non-cryptographic hash.
pub(crate) type NameIndex = HashMap<Arc<str>, usize, foldhash::fast::RandomState>;

/// One task as the graph builder sees it.
pub(crate) struct TaskSpec<'a> {
    pub name: &'a str,
    pub dependencies: &'a [String],
    pub optional: bool,
}

impl Graph {
    /// Builds and validates a graph (names unique, dependencies known, no self-edge, no cycle).
    pub fn build(specs: &[TaskSpec<'_>]) -> Result<Graph> {
        let graph = Self::build_unchecked_cycles(specs, true)?;
        if let Some(cycle) = graph.find_cycle() {
            let path = cycle
                .iter()
                .map(|&i| &*graph.names[i])
                .collect::<Vec<_>>()
                .join(" -> ");
            return Err(Error::Cycle { path });
        }
        Ok(graph)
    }

    /// A graph of independent tasks (for `run_parallel`); duplicate names are allowed there.
    pub fn independent(specs: &[TaskSpec<'_>]) -> Result<Graph> {
        for spec in specs {
            if !spec.dependencies.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "run_parallel: task '{}' has dependencies; use run_with_dependencies",
                    spec.name
                )));
            }
        }
        Self::build_unchecked_cycles(specs, false)
    }

    fn build_unchecked_cycles(specs: &[TaskSpec<'_>], unique_names: bool) -> Result<Graph> {
        let names: Vec<Arc<str>> = specs.iter().map(|s| Arc::from(s.name)).collect();
        let mut index: NameIndex =
            HashMap::with_capacity_and_hasher(specs.len(), Default::default());
        for (i, spec) in specs.iter().enumerate() {
            if spec.name.is_empty() {
                return Err(Error::InvalidGraph(format!(
                    "task #{} has an empty name",
                    i + 1
                )));
            }
            if index.insert(Arc::clone(&names[i]), i).is_some() && unique_names {
                return Err(Error::InvalidGraph(format!(
                    "duplicate task name '{}'",
                    spec.name
                )));
            }
        }
        let mut deps: Vec<Vec<usize>> = Vec::with_capacity(specs.len());
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); specs.len()];
        for (i, spec) in specs.iter().enumerate() {
            let mut mine: Vec<usize> = Vec::with_capacity(spec.dependencies.len());
            for dep in spec.dependencies {
                if dep == spec.name {
                    return Err(Error::InvalidGraph(format!(
                        "task '{}' depends on itself",
                        spec.name
                    )));
                }
                let Some(&d) = index.get(dep.as_str()) else {
                    return Err(Error::InvalidGraph(format!(
                        "task '{}' depends on unknown task '{}'",
                        spec.name, dep
                    )));
                };
                if !mine.contains(&d) {
                    mine.push(d);
                    dependents[d].push(i);
                }
            }
            deps.push(mine);
        }
        Ok(Graph {
            names,
            deps,
            dependents,
            optional: specs.iter().map(|s| s.optional).collect(),
            index,
        })
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The first cycle found by a depth-first walk from each task in input order, following
    /// dependencies in declaration order; returned closed (`[a, b, c, a]`).
    fn find_cycle(&self) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnStack,
            Done,
        }
        let mut mark = vec![Mark::New; self.len()];
        // Iterative DFS: (node, next dependency position); `path` mirrors the stack's nodes.
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in 0..self.len() {
            if mark[root] != Mark::New {
                continue;
            }
            mark[root] = Mark::OnStack;
            stack.push((root, 0));
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&dep) = self.deps[node].get(*next) {
                    *next += 1;
                    match mark[dep] {
                        Mark::New => {
                            mark[dep] = Mark::OnStack;
                            stack.push((dep, 0));
                        }
                        Mark::OnStack => {
                            let from = stack.iter().position(|&(n, _)| n == dep)?;
                            let mut cycle: Vec<usize> =
                                stack[from..].iter().map(|&(n, _)| n).collect();
                            cycle.push(dep);
                            return Some(cycle);
                        }
                        Mark::Done => {}
                    }
                } else {
                    mark[node] = Mark::Done;
                    stack.pop();
                }
            }
        }
        None
    }

    /// A topological order (dependencies first); among ready tasks, the earliest in input order
    /// goes first, so the order is deterministic. Requires an acyclic graph.
    pub fn topological_order(&self) -> Vec<usize> {
        let mut remaining: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut ready: BinaryHeap<Reverse<usize>> = remaining
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n == 0)
            .map(|(i, _)| Reverse(i))
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for &j in &self.dependents[i] {
                remaining[j] -= 1;
                if remaining[j] == 0 {
                    ready.push(Reverse(j));
                }
            }
        }
        order
    }

    /// Each task's height: the number of tasks on the longest chain that starts at it and follows
    /// dependents (1 for a task nothing depends on). Requires an acyclic graph.
    pub fn heights(&self) -> Vec<u32> {
        let mut height = vec![1u32; self.len()];
        for &i in self.topological_order().iter().rev() {
            height[i] = 1 + self.dependents[i]
                .iter()
                .map(|&j| height[j])
                .max()
                .unwrap_or(0);
        }
        height
    }

    /// Each task's level: 0 without dependencies, else 1 + the highest level of its dependencies.
    pub fn levels(&self, order: &[usize]) -> Vec<usize> {
        let mut level = vec![0usize; self.len()];
        for &i in order {
            level[i] = self.deps[i]
                .iter()
                .map(|&d| level[d] + 1)
                .max()
                .unwrap_or(0);
        }
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(list: &[(&'static str, Vec<String>)]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect()
    }

    fn build(list: &[(&'static str, &[&str])]) -> Result<Graph> {
        let owned = specs(
            &list
                .iter()
                .map(|(n, d)| (*n, d.iter().map(|s| s.to_string()).collect()))
                .collect::<Vec<_>>(),
        );
        let s: Vec<TaskSpec<'_>> = owned
            .iter()
            .map(|(n, d)| TaskSpec {
                name: n,
                dependencies: d,
                optional: false,
            })
            .collect();
        Graph::build(&s)
    }

    #[test]
    fn cycle_path_is_deterministic_and_closed() {
        let err = build(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> c -> a");
        let err = build(&[("x", &[]), ("a", &["x", "b"]), ("b", &["a"])]).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: a -> b -> a");
    }

    #[test]
    fn topological_order_and_levels() {
        let g = build(&[("c", &["a", "b"]), ("a", &[]), ("b", &["a"]), ("d", &[])]).unwrap();
        let order = g.topological_order();
        let names: Vec<&str> = order.iter().map(|&i| &*g.names[i]).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(g.levels(&order), [2, 0, 1, 0]);
        assert_eq!(g.heights(), [1, 3, 2, 1]);
    }

    #[test]
    fn long_chain_has_no_stack_overflow() {
        let names: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
        let deps: Vec<Vec<String>> = (0..100_000)
            .map(|i| {
                if i == 0 {
                    vec![]
                } else {
                    vec![names[i - 1].clone()]
                }
            })
            .collect();
        let s: Vec<TaskSpec<'_>> = names
            .iter()
            .zip(&deps)
            .map(|(n, d)| TaskSpec {
                name: n,
                dependencies: d,
                optional: false,
            })
            .collect();
        let g = Graph::build(&s).unwrap();
        assert_eq!(g.topological_order().len(), 100_000);
    }
}
