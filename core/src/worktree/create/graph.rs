//! The typed creation graph: how steps written as plain functions from typed inputs to a typed
//! output become optimizer tasks, with their values travelling through the graph.
//!
//! - Every built-in step's output is a type implementing [`StepOutput`], which names the step
//!   that makes it ([`StepOutput::STEP`]) and whether that step may fail without failing the
//!   creation ([`StepOutput::OPTIONAL`]). The [`outputs!`] table at the bottom lists them.
//! - A step's inputs are a tuple of its dependencies' outputs ([`StepInputs`]): `Arc<T>` for a
//!   dependency that must have succeeded, `Option<Arc<T>>` for an optional one. The step's
//!   dependency list is derived from that type, so a step cannot read a value it did not declare
//!   (it is not in its arguments) and cannot declare a dependency it does not receive.
//! - [`GraphBuilder::build`] checks the graph before anything runs: every input's step is in the
//!   graph, no required input comes from an optional step, no output is made twice
//!   ([`crate::Error::InvalidGraph`]); the optimizer then checks names and cycles.
//! - Every task yields a [`StepValue`]; its JSON (serde of the typed output) is the result's
//!   `steps` entry and what host steps receive.
//!
//! Owns only this plumbing; must not know what any step does (that is `steps/`).

use super::Creation;
use super::steps::{
    Bootstrapped, CacheRestored, CriticalStarted, EnvWritten, ImagesPulled, McpConfigured,
    PortsAllocated, ProjectInputs, ServicesLoaded, WorktreeAdded,
};
use crate::optimizer::{GraphRun, Task, TaskError, TaskInputs};
use crate::worktree::include::IncludeCopied;
use crate::worktree::options::{HostStep, HostStepInput};
use crate::{Error, Result};
use serde::{Serialize, Serializer};
use std::future::Future;
use std::sync::Arc;

/// The output of a built-in step: serializable (its JSON is the result's `steps` entry) and tied
/// to the one step that makes it.
pub trait StepOutput: Serialize + Send + Sync + Sized + 'static {
    /// The step (task and profiler span name) that makes this output.
    const STEP: &'static str;
    /// Whether that step's failure leaves the creation going (its dependents get `None`).
    const OPTIONAL: bool;
    /// This output as a graph value.
    fn into_value(out: Arc<Self>) -> StepValue;
    /// The output in a graph value, when it is this step's.
    fn from_value(value: &StepValue) -> Option<&Arc<Self>>;
}

/// One dependency of a step, derived from its input type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dependency {
    /// The step it comes from.
    pub step: &'static str,
    /// False for `Option<Arc<T>>`: the step runs without it when that step failed.
    pub required: bool,
}

/// What a step receives: its dependencies' outputs. Implemented for `Arc<T>`, `Option<Arc<T>>`,
/// `()` and tuples of up to four of them; the tuple's order is the dependency order.
pub trait StepInputs: Sized + Send + 'static {
    /// The dependencies these inputs come from, in order.
    fn dependencies(out: &mut Vec<Dependency>);
    /// Takes them from the task's inputs (they are there: the graph was built from
    /// [`StepInputs::dependencies`] and checked).
    fn take(inputs: &TaskInputs<StepValue>) -> std::result::Result<Self, TaskError>;
}

impl StepInputs for () {
    fn dependencies(_: &mut Vec<Dependency>) {}
    fn take(_: &TaskInputs<StepValue>) -> std::result::Result<Self, TaskError> {
        Ok(())
    }
}

impl<T: StepOutput> StepInputs for Arc<T> {
    fn dependencies(out: &mut Vec<Dependency>) {
        out.push(Dependency {
            step: T::STEP,
            required: true,
        });
    }
    fn take(inputs: &TaskInputs<StepValue>) -> std::result::Result<Self, TaskError> {
        <Option<Arc<T>> as StepInputs>::take(inputs)?.ok_or_else(|| {
            TaskError::with_code(
                "INTERNAL",
                format!("the output of step '{}' is missing", T::STEP),
            )
        })
    }
}

impl<T: StepOutput> StepInputs for Option<Arc<T>> {
    fn dependencies(out: &mut Vec<Dependency>) {
        out.push(Dependency {
            step: T::STEP,
            required: false,
        });
    }
    fn take(inputs: &TaskInputs<StepValue>) -> std::result::Result<Self, TaskError> {
        Ok(inputs.get(T::STEP).and_then(|v| T::from_value(v)).cloned())
    }
}

macro_rules! tuple_inputs {
    ($($name:ident),+) => {
        impl<$($name: StepInputs),+> StepInputs for ($($name,)+) {
            fn dependencies(out: &mut Vec<Dependency>) {
                $($name::dependencies(out);)+
            }
            fn take(inputs: &TaskInputs<StepValue>) -> std::result::Result<Self, TaskError> {
                Ok(($($name::take(inputs)?,)+))
            }
        }
    };
}
tuple_inputs!(A);
tuple_inputs!(A, B);
tuple_inputs!(A, B, C);
tuple_inputs!(A, B, C, D);

/// Collects the tasks of one creation's graph.
pub struct GraphBuilder {
    creation: Arc<Creation>,
    tasks: Vec<Task<StepValue>>,
    /// Per built-in task: (step, optional, dependencies).
    typed: Vec<(&'static str, bool, Vec<Dependency>)>,
}

impl GraphBuilder {
    /// An empty graph for `creation`.
    pub fn new(creation: Arc<Creation>) -> Self {
        Self {
            creation,
            tasks: Vec::new(),
            typed: Vec::new(),
        }
    }

    fn declare<I: StepInputs, O: StepOutput>(&mut self) -> Vec<String> {
        let mut deps = Vec::new();
        I::dependencies(&mut deps);
        let names = deps.iter().map(|d| d.step.to_string()).collect();
        self.typed.push((O::STEP, O::OPTIONAL, deps));
        names
    }

    /// Adds a blocking step (run on tokio's blocking threads): `f(creation, inputs)`.
    pub fn blocking<I, O>(&mut self, f: fn(&Creation, I) -> std::result::Result<O, TaskError>)
    where
        I: StepInputs,
        O: StepOutput,
    {
        let deps = self.declare::<I, O>();
        let c = Arc::clone(&self.creation);
        let task = Task::from_body(
            O::STEP,
            deps,
            Arc::new(BlockingStep::<I, O> { creation: c, f }),
        );
        self.tasks.push(task.with_optional(O::OPTIONAL));
    }

    /// Adds an async step: `f(creation, inputs).await`.
    pub fn spawn<I, O, F, Fut>(&mut self, f: F)
    where
        I: StepInputs,
        O: StepOutput,
        F: Fn(Arc<Creation>, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<O, TaskError>> + Send + 'static,
    {
        let deps = self.declare::<I, O>();
        let c = Arc::clone(&self.creation);
        let f = Arc::new(f);
        let deps_ref: Vec<&str> = deps.iter().map(String::as_str).collect();
        let task = Task::new(O::STEP, &deps_ref, move |inputs: TaskInputs<StepValue>| {
            let (c, f) = (Arc::clone(&c), Arc::clone(&f));
            async move {
                c.check_cancelled()?;
                let inputs = I::take(&inputs)?;
                let out = f(c, inputs).await?;
                Ok(O::into_value(Arc::new(out)))
            }
        });
        self.tasks.push(task.with_optional(O::OPTIONAL));
    }

    /// Adds a task that is not a typed built-in step (a hook: `steps/hooks.rs`): `f(creation,
    /// inputs)` gets its dependencies' values and returns JSON.
    pub fn untyped<F, Fut>(&mut self, name: String, dependencies: &[String], optional: bool, f: F)
    where
        F: Fn(Arc<Creation>, TaskInputs<StepValue>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<serde_json::Value, TaskError>> + Send + 'static,
    {
        let c = Arc::clone(&self.creation);
        let f = Arc::new(f);
        let deps: Vec<&str> = dependencies.iter().map(String::as_str).collect();
        let task = Task::new(name, &deps, move |inputs: TaskInputs<StepValue>| {
            let (c, f) = (Arc::clone(&c), Arc::clone(&f));
            async move {
                c.check_cancelled()?;
                Ok(StepValue::Host(f(c, inputs).await?))
            }
        });
        self.tasks.push(task.with_optional(optional));
    }

    /// Adds a host step: it receives its dependencies' outputs as JSON. An optional one that fails
    /// is reported as a progress event of its own name (`✗ <name> failed ...`).
    pub fn host(&mut self, step: &HostStep) {
        let c = Arc::clone(&self.creation);
        let body = step.body.clone();
        let deps: Vec<&str> = step.dependencies.iter().map(String::as_str).collect();
        let (name, optional) = (step.name.clone(), step.optional);
        let task = Task::new(
            step.name.clone(),
            &deps,
            move |inputs: TaskInputs<StepValue>| {
                let c = Arc::clone(&c);
                let body = body.clone();
                let name = name.clone();
                async move {
                    c.check_cancelled()?;
                    let mut dependencies = serde_json::Map::new();
                    for (name, value) in inputs.iter() {
                        dependencies.insert(name.to_string(), serde_json::to_value(&**value)?);
                    }
                    let input = HostStepInput {
                        name: c.name.clone(),
                        path: c.path.clone(),
                        branch: c.name.clone(),
                        dependencies,
                    };
                    match body(input).await {
                        Ok(value) => Ok(StepValue::Host(value)),
                        Err(e) => {
                            // an optional step's failure does not fail the creation: say it here
                            if optional {
                                c.emit(
                                    &name,
                                    format!("✗ {name} failed (the creation goes on): {e}"),
                                );
                            }
                            Err(e)
                        }
                    }
                }
            },
        );
        self.tasks.push(task.with_optional(step.optional));
    }

    /// The built-in steps added so far: (step, optional, dependencies), in order.
    #[cfg(test)]
    pub fn typed(&self) -> &[(&'static str, bool, Vec<Dependency>)] {
        &self.typed
    }

    /// The tasks, after checking the typed part of the graph: every input's step is there, no
    /// required input comes from an optional step, no step is added twice.
    pub fn build(self) -> Result<Vec<Task<StepValue>>> {
        check(&self.typed)?;
        Ok(self.tasks)
    }
}

/// The checks of [`GraphBuilder::build`] on (step, optional, dependencies) triples.
pub(super) fn check(typed: &[(&'static str, bool, Vec<Dependency>)]) -> Result<()> {
    {
        for (i, (step, _, deps)) in typed.iter().enumerate() {
            if typed[..i].iter().any(|(s, _, _)| s == step) {
                return Err(Error::InvalidGraph(format!("step '{step}' is added twice")));
            }
            for d in deps {
                let Some((_, optional, _)) = typed.iter().find(|(s, _, _)| *s == d.step) else {
                    return Err(Error::InvalidGraph(format!(
                        "step '{step}' needs the output of step '{}', which is not in the graph",
                        d.step
                    )));
                };
                if d.required && *optional {
                    return Err(Error::InvalidGraph(format!(
                        "step '{step}' requires the output of optional step '{}': take it as \
                         an Option",
                        d.step
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The body of a blocking step.
struct BlockingStep<I, O> {
    creation: Arc<Creation>,
    f: fn(&Creation, I) -> std::result::Result<O, TaskError>,
}

impl<I: StepInputs, O: StepOutput> crate::optimizer::TaskBody<StepValue> for BlockingStep<I, O> {
    fn run(&self, inputs: TaskInputs<StepValue>) -> crate::optimizer::TaskFuture<StepValue> {
        let (c, f) = (Arc::clone(&self.creation), self.f);
        crate::optimizer::blocking_future(move || {
            c.check_cancelled()?;
            let out = f(&c, I::take(&inputs)?)?;
            Ok(O::into_value(Arc::new(out)))
        })
    }
}

/// The typed output of step `O` in a finished run, if it succeeded.
pub fn output<O: StepOutput>(run: &GraphRun<StepValue>) -> Option<Arc<O>> {
    run.result(O::STEP).and_then(|v| O::from_value(v)).cloned()
}

macro_rules! outputs {
    ($($variant:ident($ty:ty) = $step:literal, optional: $optional:literal;)+) => {
        /// The value of one task of a creation's graph: a built-in step's typed output, or a
        /// host step's JSON.
        pub enum StepValue {
            $(
                #[doc = concat!("The output of `", $step, "`.")]
                $variant(Arc<$ty>),
            )+
            /// A host step's result.
            Host(serde_json::Value),
        }

        $(
            impl StepOutput for $ty {
                const STEP: &'static str = $step;
                const OPTIONAL: bool = $optional;
                fn into_value(out: Arc<Self>) -> StepValue {
                    StepValue::$variant(out)
                }
                fn from_value(value: &StepValue) -> Option<&Arc<Self>> {
                    match value {
                        StepValue::$variant(out) => Some(out),
                        _ => None,
                    }
                }
            }
        )+

        impl Serialize for StepValue {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                match self {
                    $(StepValue::$variant(out) => out.serialize(s),)+
                    StepValue::Host(v) => v.serialize(s),
                }
            }
        }

        /// The built-in steps, in the order the graph adds them.
        pub const BUILT_IN_STEPS: &[&str] = &[$($step),+];
    };
}

outputs! {
    ReadInputs(ProjectInputs) = "read-inputs", optional: false;
    GitWorktreeAdd(WorktreeAdded) = "git-worktree-add", optional: false;
    CacheRestore(CacheRestored) = "cache-restore", optional: false;
    CopyIgnored(IncludeCopied) = "copy-ignored", optional: false;
    ComposeServices(ServicesLoaded) = "compose-services", optional: false;
    AllocatePorts(PortsAllocated) = "allocate-ports", optional: false;
    PullImages(ImagesPulled) = "pull-images", optional: true;
    WriteEnv(EnvWritten) = "write-env", optional: false;
    McpDiscovery(McpConfigured) = "mcp-discovery", optional: false;
    NpmBootstrap(Bootstrapped) = "npm-bootstrap", optional: false;
    DockerComposeUp(CriticalStarted) = "docker-compose-up", optional: true;
}
