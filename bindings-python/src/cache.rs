//! `vibetrees.CacheManager`: the content-addressed node_modules cache.
//!
//! Every call that touches the disk blocks the calling thread with the interpreter released, so
//! other Python threads run meanwhile; reports are dicts with the core's camelCase keys.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use vibetrees_core::cache::{
    CacheKey, CacheManager, CacheManagerOptions, CacheOptions, RestoreMethod, RestoreOptions,
};
use vibetrees_core::progress::CountProgress;

use crate::bridge::wait_blocking;
use crate::convert::to_py;
use crate::errors::{IntoPyResult, invalid_argument};
use crate::profiler::PyProfiler;

/// Caches node_modules folders by the content of their project's manifests and lockfiles, and
/// restores them by hardlink (or reflink, or copy).
#[pyclass(name = "CacheManager", module = "vibetrees", frozen)]
pub struct PyCacheManager {
    inner: Arc<CacheManager>,
    method: RestoreMethod,
}

/// A `(done, total)` callback calling a Python callable; its exceptions are reported as
/// unraisable (they cannot stop the copy).
pub fn count_progress(callback: Py<PyAny>) -> CountProgress {
    Arc::new(move |done: u64, total: u64| {
        Python::attach(|py| {
            if let Err(e) = callback.call1(py, (done, total)) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        })
    })
}

fn parse_method(method: &str) -> PyResult<RestoreMethod> {
    RestoreMethod::parse(method).py()
}

#[pymethods]
impl PyCacheManager {
    /// Opens (creating if needed) the cache in `cache_dir` (default `~/.vibetrees/cache`).
    /// `method`: `auto` (hardlink, falling back per file to reflink then copy), `hardlink`,
    /// `clone`, `copy` or `clone-or-copy`.
    #[new]
    #[pyo3(signature = (cache_dir=None, *, method="auto", workers=None, profiler=None))]
    fn new(
        py: Python<'_>,
        cache_dir: Option<PathBuf>,
        method: &str,
        workers: Option<usize>,
        profiler: Option<Py<PyProfiler>>,
    ) -> PyResult<Self> {
        if workers == Some(0) {
            return Err(invalid_argument("workers must be at least 1"));
        }
        let method = parse_method(method)?;
        let opts = CacheManagerOptions {
            cache: CacheOptions {
                cache_dir,
                workers,
                profiler: profiler.map(|p| Arc::clone(&p.get().inner)),
            },
            method,
        };
        let inner = wait_blocking(py, "opening the cache", move || CacheManager::new(opts))
            .and_then(|r| r.py())?;
        Ok(Self {
            inner: Arc::new(inner),
            method,
        })
    }

    /// The cache folder.
    #[getter]
    fn cache_dir(&self) -> PathBuf {
        self.inner.cache().cache_dir().to_path_buf()
    }

    /// Caches the node_modules folder `source_node_modules` under the key of its project (the
    /// folder holding it). Returns `{key, outcome: "created" | "already-present", files, bytes,
    /// linked, cloned, copied, durationMs, phases, ...}`.
    fn cache_node_modules<'py>(
        &self,
        py: Python<'py>,
        source_node_modules: PathBuf,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let report = wait_blocking(py, "cache_node_modules", move || {
            inner.cache_node_modules(&source_node_modules)
        })?
        .py()?;
        to_py(py, &report)
    }

    /// Restores the node_modules folder `target_node_modules` from its project's entry (an
    /// existing node_modules folder there is replaced atomically only with `replace=True`, else
    /// `AlreadyExistsError`; a path that exists and is not a node_modules folder is refused with
    /// `InvalidArgumentError`). Returns `{restored, key, stats, reason}`:
    /// a miss is `restored: False` with the reason, not an error. `on_progress(done, total)` is
    /// called from worker threads about 20 times a second.
    #[pyo3(signature = (target_node_modules, *, method=None, on_progress=None, skip_verify=false, replace=false))]
    fn restore_node_modules<'py>(
        &self,
        py: Python<'py>,
        target_node_modules: PathBuf,
        method: Option<&str>,
        on_progress: Option<Py<PyAny>>,
        skip_verify: bool,
        replace: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let method = match method {
            Some(m) => parse_method(m)?,
            None => self.method,
        };
        if let Some(cb) = &on_progress
            && !cb.bind(py).is_callable()
        {
            return Err(invalid_argument("on_progress must be callable"));
        }
        let opts = RestoreOptions {
            method,
            progress: on_progress.map(count_progress),
            skip_verify,
            replace,
            ..Default::default()
        };
        let inner = Arc::clone(&self.inner);
        let outcome = wait_blocking(py, "restore_node_modules", move || {
            inner.restore_node_modules_with(&target_node_modules, &opts)
        })?
        .py()?;
        to_py(py, &outcome)
    }

    /// True when the cache holds an entry for the project in folder `project_path`.
    fn is_cache_valid(&self, py: Python<'_>, project_path: PathBuf) -> bool {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.is_cache_valid(&project_path))
    }

    /// The cache key (64 hex digits) of the project in folder `project_path`.
    fn key(&self, py: Python<'_>, project_path: PathBuf) -> PyResult<String> {
        py.detach(move || CacheKey::from_project_dir(&project_path))
            .py()
            .map(|k| k.to_string())
    }

    /// Environment for faster container builds: `{DOCKER_BUILDKIT: "1", BUILDKIT_PROGRESS:
    /// "plain", COMPOSE_DOCKER_CLI_BUILD: "1"}`.
    #[staticmethod]
    fn get_docker_cache_env(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let dict = PyDict::new(py);
        for (k, v) in CacheManager::get_docker_cache_env() {
            dict.set_item(k, v)?;
        }
        Ok(dict)
    }

    /// `{cacheDir, entries, files, bytes, apparentBytes, hits, misses}`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let stats = wait_blocking(py, "stats", move || inner.cache().stats())?.py()?;
        to_py(py, &stats)
    }

    /// Checks every file of every entry against its listing; with `evict_bad`, bad entries are
    /// removed. Returns `{entriesChecked, filesChecked, bad: [{key, problemCount, problems,
    /// evicted}]}`.
    #[pyo3(signature = (*, evict_bad=false))]
    fn verify<'py>(&self, py: Python<'py>, evict_bad: bool) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let report = wait_blocking(py, "verify", move || inner.cache().verify(evict_bad))?.py()?;
        to_py(py, &report)
    }

    /// Evicts least recently used entries until the cache holds at most `budget_bytes`. Returns
    /// `{evicted, busy, bytesFreed, bytesLeft, abandonedRemoved}`.
    fn prune<'py>(&self, py: Python<'py>, budget_bytes: u64) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let report = wait_blocking(py, "prune", move || inner.cache().prune(budget_bytes))?.py()?;
        to_py(py, &report)
    }

    /// Evicts every entry not being restored. Returns the same report as `prune`.
    fn clear<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = Arc::clone(&self.inner);
        let report = wait_blocking(py, "clear", move || inner.cache().clear())?.py()?;
        to_py(py, &report)
    }

    fn __repr__(&self) -> String {
        format!(
            "CacheManager(cache_dir={:?}, method={:?})",
            self.inner.cache().cache_dir().display().to_string(),
            self.method.as_str()
        )
    }
}
