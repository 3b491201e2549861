//! `vibetrees.Profiler`: nested timed operations, per-name statistics, metrics, Chrome trace.
//!
//! Results are dicts with the contract's keys (`startTime`, `endTime`, `children`, ...); times are
//! milliseconds (float) since the profiler was made.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyType;
use vibetrees_core::profiler::{Profiler, ProfilerConfig};

use crate::convert::to_py;
use crate::errors::{IntoPyResult, invalid_argument};

/// Records nested operations and their statistics. Thread-safe: share one across threads.
#[pyclass(name = "Profiler", module = "vibetrees", frozen)]
pub struct PyProfiler {
    pub(crate) inner: Arc<Profiler>,
}

impl PyProfiler {
    /// Wraps a core profiler shared with another object (a worktree manager, an optimizer).
    pub fn from_arc(inner: Arc<Profiler>) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl PyProfiler {
    /// A new profiler; `max_results` ended operations are kept for `get_result` and the trace,
    /// `max_names` distinct names get statistics of their own.
    #[new]
    #[pyo3(signature = (*, max_results=None, max_names=None))]
    fn new(max_results: Option<usize>, max_names: Option<usize>) -> PyResult<Self> {
        let mut config = ProfilerConfig::default();
        if let Some(n) = max_results {
            config.max_results = n;
        }
        if let Some(n) = max_names {
            if n == 0 {
                return Err(invalid_argument("max_names must be at least 1"));
            }
            config.max_names = n;
        }
        Ok(Self {
            inner: Arc::new(Profiler::with_config(config)),
        })
    }

    /// Starts an operation named `name` (under the running operation `parent_id`); returns its id.
    #[pyo3(signature = (name, parent_id=None))]
    fn start(&self, name: &str, parent_id: Option<&str>) -> PyResult<String> {
        self.inner.start(name, parent_id).py()
    }

    /// Ends the running operation `id` and returns its result dict.
    fn end<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let result = self.inner.end(id).py()?;
        to_py(py, &result)
    }

    /// Ends the running operation `id` as failed with the message `error`; returns its result.
    fn end_failed<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        error: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let result = self.inner.end_failed(id, error).py()?;
        to_py(py, &result)
    }

    /// True while the operation `id` is running.
    fn is_running(&self, id: &str) -> bool {
        self.inner.is_running(id)
    }

    /// How many operations are running.
    fn running_count(&self) -> usize {
        self.inner.running_count()
    }

    /// The result dict of the ended operation `id`, or None (unknown, running or evicted).
    fn get_result<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner.get_result(id).map(|r| to_py(py, &r)).transpose()
    }

    /// `{name, count, failures, avg, min, max, total, p50, p95, p99}` of `name`, or None.
    fn get_stats<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .get_stats(name)
            .map(|s| to_py(py, &s))
            .transpose()
    }

    /// `{operations: [stats, largest total first], totalDuration}`.
    fn generate_report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.generate_report())
    }

    /// The server's metrics: `{operations: [{name, count, avg, min, max, total}], totalTime,
    /// avgWorktreeCreation}`.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.metrics())
    }

    /// The ended operations as a Chrome Trace Event Format JSON string (Perfetto, chrome://tracing).
    fn to_chrome_trace(&self) -> String {
        self.inner.to_chrome_trace()
    }

    /// Milliseconds since the profiler was made (monotonic).
    fn now_ms(&self) -> f64 {
        self.inner.now_ms()
    }

    /// Forgets every ended result and all statistics; running operations keep running.
    fn clear(&self) {
        self.inner.clear()
    }

    /// A context manager timing its block: `with profiler.span("build") as span: ...`.
    /// The operation ends when the block exits, as failed (with the exception's text) if it raised.
    #[pyo3(signature = (name, parent_id=None))]
    fn span(&self, name: &str, parent_id: Option<&str>) -> PySpan {
        PySpan {
            profiler: Arc::clone(&self.inner),
            name: name.to_string(),
            parent_id: parent_id.map(str::to_string),
            id: Mutex::new(None),
            result: Mutex::new(None),
        }
    }

    fn __repr__(&self) -> String {
        format!("Profiler(running={})", self.inner.running_count())
    }
}

/// A timed block of a [`PyProfiler`], from `Profiler.span`.
#[pyclass(name = "Span", module = "vibetrees", frozen)]
pub struct PySpan {
    profiler: Arc<Profiler>,
    name: String,
    parent_id: Option<String>,
    id: Mutex<Option<String>>,
    result: Mutex<Option<Py<PyAny>>>,
}

#[pymethods]
impl PySpan {
    /// The operation's id once the block has been entered, else None.
    #[getter]
    fn id(&self) -> Option<String> {
        self.id.lock().clone()
    }

    /// The operation's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// The result dict once the block has exited, else None.
    #[getter]
    fn result(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.result.lock().as_ref().map(|r| r.clone_ref(py))
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        {
            let me = slf.get();
            let mut id = me.id.lock();
            if id.is_some() {
                return Err(invalid_argument(format!(
                    "span '{}' was already entered; make a new one with Profiler.span",
                    me.name
                )));
            }
            *id = Some(me.profiler.start(&me.name, me.parent_id.as_deref()).py()?);
        }
        Ok(slf)
    }

    #[pyo3(signature = (exc_type=None, exc_value=None, _traceback=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyType>>,
        exc_value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let Some(id) = self.id.lock().clone() else {
            return Err(invalid_argument(format!(
                "span '{}' exited without being entered",
                self.name
            )));
        };
        let result = match (exc_type, exc_value) {
            (Some(t), value) => {
                let text = match value {
                    Some(v) => v.str()?.to_string(),
                    None => String::new(),
                };
                let message = if text.is_empty() {
                    t.name()?.to_string()
                } else {
                    format!("{}: {text}", t.name()?)
                };
                self.profiler.end_failed(&id, &message).py()?
            }
            (None, _) => self.profiler.end(&id).py()?,
        };
        *self.result.lock() = Some(to_py(py, &result)?.unbind());
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match &*self.id.lock() {
            Some(id) => format!("Span(name={:?}, id={id:?})", self.name),
            None => format!("Span(name={:?})", self.name),
        }
    }
}
