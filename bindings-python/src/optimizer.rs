//! `vibetrees.PerformanceOptimizer`: the core's task-graph scheduler running Python tasks.
//!
//! A task is a dict `{"name": str, "fn": callable, "dependencies": [str], "optional": bool}`.
//! The scheduling is the core's: this module only supplies a [`TaskBody`] for Python callables.
//! - A plain callable runs on a worker thread of the core's blocking pool (attached to the
//!   interpreter only while Python code runs), so tasks waiting on I/O or subprocesses overlap.
//! - An `async def` function (in the `*_async` methods) is called on a worker thread to make its
//!   coroutine, which is then awaited on the caller's event loop.
//!
//! A task that raises fails with `TaskFailedError` naming it; its own exception is `__cause__`.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyMapping};
use vibetrees_core::Error;
use vibetrees_core::optimizer::{
    FailurePolicy, GraphRun, OptimizerOptions, PerformanceOptimizer, Task, TaskBody, TaskError,
    TaskFuture, TaskInputs, blocking_future,
};

use crate::bridge;
use crate::convert::to_py;
use crate::errors::{IntoPyResult, invalid_argument, to_py_err_with_cause};
use crate::profiler::PyProfiler;

/// A task result: a Python object, kept alive by the core while dependents need it.
type PyValue = Py<PyAny>;

/// The Python exceptions raised by the tasks of one run, by task name, to chain as causes.
#[derive(Default, Clone)]
struct Failures(Arc<Mutex<HashMap<String, PyErr>>>);

impl Failures {
    /// Records `err` for `task` and returns the core's view of it (`"ValueError: bad input"`).
    fn record(&self, py: Python<'_>, task: &str, err: PyErr) -> TaskError {
        let text = describe(py, &err);
        self.0.lock().insert(task.to_string(), err);
        TaskError::with_code("PYTHON", text)
    }

    /// The core error as a Python exception, chained to the failed task's own exception.
    fn to_py_err(&self, py: Python<'_>, err: Error) -> PyErr {
        let cause = match &err {
            Error::TaskFailed { task, .. } => self.0.lock().remove(task),
            _ => None,
        };
        to_py_err_with_cause(py, err, cause)
    }
}

/// `ExceptionType: message` (or just the type when there is no message).
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let kind = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    match err.value(py).str() {
        Ok(s) if !s.to_string().is_empty() => format!("{kind}: {s}"),
        _ => kind,
    }
}

/// How a task's callable is called.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallStyle {
    /// `fn()`: `run_parallel`.
    NoArgs,
    /// `fn(deps)`: the dependency graph methods.
    WithInputs,
}

/// A Python callable as a task body.
struct PyTaskBody {
    name: String,
    func: Arc<PyValue>,
    style: CallStyle,
    /// The caller's event loop for coroutines (`*_async` methods); `None` for blocking calls.
    event_loop: Option<Arc<PyValue>>,
    failures: Failures,
}

/// What calling a task's callable gave.
enum Called {
    Value(PyValue),
    Coroutine(PyValue),
}

impl TaskBody<PyValue> for PyTaskBody {
    fn run(&self, inputs: TaskInputs<PyValue>) -> TaskFuture<PyValue> {
        let name = self.name.clone();
        let func = Arc::clone(&self.func);
        let style = self.style;
        let event_loop = self.event_loop.clone();
        let failures = self.failures.clone();
        let call_failures = failures.clone();
        let call_name = name.clone();
        let wants_coroutines = event_loop.is_some();
        let called = blocking_future(move || {
            Python::attach(|py| {
                call_task(py, &call_name, &func, style, &inputs, wants_coroutines)
                    .map_err(|e| call_failures.record(py, &call_name, e))
            })
        });
        Box::pin(async move {
            match called.await? {
                Called::Value(v) => Ok(v),
                Called::Coroutine(coro) => {
                    let Some(event_loop) = event_loop else {
                        return Err(TaskError::new("internal: coroutine without an event loop"));
                    };
                    let awaited = Python::attach(|py| {
                        bridge::await_coroutine(py, &event_loop, coro.into_bound(py))
                    });
                    let outcome = match awaited {
                        Ok(fut) => fut.await,
                        Err(e) => Err(e),
                    };
                    outcome.map_err(|e| Python::attach(|py| failures.record(py, &name, e)))
                }
            }
        })
    }
}

/// Calls the task's callable (attached, on a worker thread).
fn call_task(
    py: Python<'_>,
    name: &str,
    func: &PyValue,
    style: CallStyle,
    inputs: &TaskInputs<PyValue>,
    wants_coroutines: bool,
) -> PyResult<Called> {
    let func = func.bind(py);
    let out = match style {
        CallStyle::NoArgs => func.call0()?,
        CallStyle::WithInputs => {
            let deps = PyDict::new(py);
            for (dep, value) in inputs.iter() {
                deps.set_item(dep, value.bind(py))?;
            }
            func.call1((deps,))?
        }
    };
    let inspect = py.import("inspect")?;
    if inspect.call_method1("iscoroutine", (&out,))?.is_truthy()? {
        if wants_coroutines {
            return Ok(Called::Coroutine(out.unbind()));
        }
        let _ = out.call_method0("close");
        return Err(invalid_argument(format!(
            "task '{name}' returned a coroutine (an async def function): await \
             run_with_dependencies_async / run_parallel_async instead"
        )));
    }
    Ok(Called::Value(out.unbind()))
}

/// Reads the task dicts of a call into core tasks.
fn parse_tasks(
    py: Python<'_>,
    tasks: &Bound<'_, PyAny>,
    style: CallStyle,
    event_loop: Option<Arc<PyValue>>,
    failures: &Failures,
) -> PyResult<Vec<Task<PyValue>>> {
    let mut out = Vec::new();
    for (index, item) in tasks.try_iter()?.enumerate() {
        let item = item?;
        let task = item.cast::<PyMapping>().map_err(|_| {
            invalid_argument(format!(
                "task #{index} must be a dict like {{'name': str, 'fn': callable}}, got {}",
                type_name(&item)
            ))
        })?;
        let name: String = match task.get_item("name") {
            Ok(n) => n
                .extract()
                .map_err(|_| invalid_argument(format!("task #{index}: 'name' must be a string")))?,
            Err(_) => return Err(invalid_argument(format!("task #{index} has no 'name'"))),
        };
        let func = task
            .get_item("fn")
            .map_err(|_| invalid_argument(format!("task '{name}' has no 'fn'")))?;
        if !func.is_callable() {
            return Err(invalid_argument(format!(
                "task '{name}': 'fn' must be callable, got {}",
                type_name(&func)
            )));
        }
        let dependencies: Vec<String> = match task.get_item("dependencies") {
            Ok(d) if !d.is_none() => {
                if d.is_instance_of::<pyo3::types::PyString>() {
                    return Err(invalid_argument(format!(
                        "task '{name}': 'dependencies' must be a list of task names, not a string"
                    )));
                }
                d.extract().map_err(|_| {
                    invalid_argument(format!(
                        "task '{name}': 'dependencies' must be a list of task names"
                    ))
                })?
            }
            _ => Vec::new(),
        };
        if style == CallStyle::NoArgs && !dependencies.is_empty() {
            return Err(invalid_argument(format!(
                "task '{name}' has dependencies; run_parallel runs independent tasks \
                 (use run_with_dependencies)"
            )));
        }
        let optional = match task.get_item("optional") {
            Ok(o) => o.is_truthy()?,
            Err(_) => false,
        };
        if event_loop.is_none()
            && py
                .import("inspect")?
                .call_method1("iscoroutinefunction", (&func,))?
                .is_truthy()?
        {
            return Err(invalid_argument(format!(
                "task '{name}' is an async def function: await run_with_dependencies_async / \
                 run_parallel_async instead"
            )));
        }
        let body = PyTaskBody {
            name: name.clone(),
            func: Arc::new(func.unbind()),
            style,
            event_loop: event_loop.clone(),
            failures: failures.clone(),
        };
        out.push(Task::from_body(name, dependencies, Arc::new(body)).with_optional(optional));
    }
    Ok(out)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The results of a run as a dict `name -> result` (tasks that produced one).
fn results_dict<'py>(py: Python<'py>, run: &GraphRun<PyValue>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in run.results() {
        dict.set_item(name, value.bind(py))?;
    }
    Ok(dict)
}

/// Runs graphs of Python tasks; each task starts as soon as its dependencies are done.
#[pyclass(name = "PerformanceOptimizer", module = "vibetrees", frozen)]
pub struct PyOptimizer {
    inner: PerformanceOptimizer,
    profiler: Option<Py<PyProfiler>>,
}

impl PyOptimizer {
    fn run_future_blocking<'py, F, R>(
        &self,
        py: Python<'py>,
        what: &str,
        failures: &Failures,
        fut: F,
    ) -> PyResult<R>
    where
        F: Future<Output = vibetrees_core::Result<R>> + Send + 'static,
        R: Send + 'static,
    {
        match bridge::wait(py, what, fut)? {
            Ok(r) => Ok(r),
            Err(e) => Err(failures.to_py_err(py, e)),
        }
    }
}

#[pymethods]
impl PyOptimizer {
    /// An optimizer recording each task as a span of `profiler` (if given), running at most
    /// `concurrency` tasks at once (no limit by default). `failure_policy`: `"stop"` (nothing new
    /// starts after a failure) or `"continue"` (independent tasks still run).
    #[new]
    #[pyo3(signature = (profiler=None, concurrency=None, *, failure_policy="stop"))]
    fn new(
        profiler: Option<Py<PyProfiler>>,
        concurrency: Option<usize>,
        failure_policy: &str,
    ) -> PyResult<Self> {
        let options = OptimizerOptions {
            profiler: profiler.as_ref().map(|p| Arc::clone(&p.get().inner)),
            concurrency,
            failure_policy: failure_policy.parse::<FailurePolicy>().py()?,
            ..OptimizerOptions::default()
        };
        Ok(Self {
            inner: PerformanceOptimizer::new(options).py()?,
            profiler,
        })
    }

    /// The profiler tasks are recorded in, if any.
    #[getter]
    fn profiler(&self, py: Python<'_>) -> Option<Py<PyProfiler>> {
        self.profiler.as_ref().map(|p| p.clone_ref(py))
    }

    /// The concurrency limit, or None for no limit.
    #[getter]
    fn concurrency(&self) -> Option<usize> {
        self.inner.options().concurrency
    }

    /// Runs independent tasks `[{"name", "fn"}]`, each `fn()` on a worker thread; returns their
    /// results in input order. The first task to fail raises `TaskFailedError`.
    fn run_parallel<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let failures = Failures::default();
        let tasks = parse_tasks(py, tasks, CallStyle::NoArgs, None, &failures)?;
        let optimizer = self.inner.clone();
        let results = self.run_future_blocking(py, "run_parallel", &failures, async move {
            optimizer.run_parallel(tasks).await
        })?;
        PyList::new(py, results.iter().map(|r| r.bind(py)))
    }

    /// Runs a graph `[{"name", "fn", "dependencies": [...], "optional": False}]`: each task starts
    /// as soon as its dependencies are done, `fn(deps)` getting a dict of their results. Returns
    /// `{name: result}`. Unknown dependency, duplicate name or cycle: raised before anything runs.
    fn run_with_dependencies<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let failures = Failures::default();
        let tasks = parse_tasks(py, tasks, CallStyle::WithInputs, None, &failures)?;
        let optimizer = self.inner.clone();
        let run = self.run_future_blocking(py, "run_with_dependencies", &failures, async move {
            optimizer.run_with_dependencies(tasks).await
        })?;
        results_dict(py, &run)
    }

    /// Like `run_with_dependencies`, but never raises for failed tasks: returns
    /// `{"results": {name: result}, "report": {...}, "dot": str}` where the report has every
    /// task's status (`ok`, `failed`, `skipped`, `cancelled`), times and the critical path.
    fn run_graph<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let failures = Failures::default();
        let tasks = parse_tasks(py, tasks, CallStyle::WithInputs, None, &failures)?;
        let optimizer = self.inner.clone();
        let run = self.run_future_blocking(py, "run_graph", &failures, async move {
            optimizer.run_graph(tasks).await
        })?;
        let out = PyDict::new(py);
        out.set_item("results", results_dict(py, &run)?)?;
        out.set_item("report", to_py(py, &run.report())?)?;
        out.set_item("dot", run.to_dot())?;
        Ok(out)
    }

    /// Checks the graph and returns its plan `{tasks, order, levels, longestChain}` without
    /// running anything.
    fn dry_run<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let failures = Failures::default();
        let tasks = parse_tasks(py, tasks, CallStyle::WithInputs, None, &failures)?;
        let plan = self.inner.dry_run(&tasks).py()?;
        to_py(py, &plan)
    }

    /// Awaitable `run_parallel`: `async def` tasks are awaited on the running event loop, plain
    /// callables run on worker threads. Cancelling the awaiting task cancels the run.
    fn run_parallel_async<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let event_loop = bridge::running_loop(py)?;
        let failures = Failures::default();
        let tasks = parse_tasks(
            py,
            tasks,
            CallStyle::NoArgs,
            Some(Arc::new(event_loop.clone_ref(py))),
            &failures,
        )?;
        let optimizer = self.inner.clone();
        bridge::to_asyncio_future(py, event_loop, async move {
            let out = optimizer.run_parallel(tasks).await;
            Python::attach(|py| match out {
                Ok(results) => Ok(PyList::new(py, results.iter().map(|r| r.bind(py)))?
                    .into_any()
                    .unbind()),
                Err(e) => Err(failures.to_py_err(py, e)),
            })
        })
    }

    /// Awaitable `run_with_dependencies`: `async def` tasks are awaited on the running event loop
    /// (`await fn(deps)`), plain callables run on worker threads. Returns `{name: result}`.
    fn run_with_dependencies_async<'py>(
        &self,
        py: Python<'py>,
        tasks: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let event_loop = bridge::running_loop(py)?;
        let failures = Failures::default();
        let tasks = parse_tasks(
            py,
            tasks,
            CallStyle::WithInputs,
            Some(Arc::new(event_loop.clone_ref(py))),
            &failures,
        )?;
        let optimizer = self.inner.clone();
        bridge::to_asyncio_future(py, event_loop, async move {
            let out = optimizer.run_with_dependencies(tasks).await;
            Python::attach(|py| match out {
                Ok(run) => Ok(results_dict(py, &run)?.into_any().unbind()),
                Err(e) => Err(failures.to_py_err(py, e)),
            })
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "PerformanceOptimizer(concurrency={}, profiler={})",
            self.inner
                .options()
                .concurrency
                .map_or("None".to_string(), |c| c.to_string()),
            if self.profiler.is_some() {
                "Profiler"
            } else {
                "None"
            }
        )
    }
}
