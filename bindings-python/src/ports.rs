//! `vibetrees.PortRegistry`: the VibeTrees server's port registry object over the core's
//! [`ServerPortRegistry`], in snake_case. Never stale: `ports`, `load()` and
//! `get_worktree_ports()` read `ports.json`; every change is a read-modify-write under the
//! proper-lockfile lock touching only the keys it changes. Every call that touches the file
//! releases the interpreter (`py.detach`) while it waits for the lock and works.

use std::path::PathBuf;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use vibetrees_core::services::ports::RegistryEntries;
use vibetrees_core::services::server_registry::{ServerPortRegistry, WorktreeRef, port_in_use};

use crate::convert::json_to_py;
use crate::errors::{IntoPyResult, invalid_argument};

/// The server's `PortRegistry` over `~/.vibetrees/<parent>-<child>/ports.json`.
#[pyclass(name = "PortRegistry", module = "vibetrees", frozen)]
pub struct PyPortRegistry {
    inner: ServerPortRegistry,
    /// The last map handed out by `ports` (or assigned to it) and the file's map it started from:
    /// `save()` writes their difference.
    snapshot: Mutex<Option<(Py<PyDict>, RegistryEntries)>>,
}

/// A map in its own key order as a Python dict.
fn dict_of<'py, V: serde::Serialize>(
    py: Python<'py>,
    map: &indexmap::IndexMap<String, V>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        let v = serde_json::to_value(v).map_err(|e| invalid_argument(e.to_string()))?;
        dict.set_item(k, json_to_py(py, &v)?)?;
    }
    Ok(dict)
}

/// A Python mapping as an ordered JSON map (values through `json.dumps`).
fn map_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<RegistryEntries> {
    let py = value.py();
    if value.cast::<PyMapping>().is_err() {
        return Err(invalid_argument(format!("{what} must be a dict")));
    }
    let text: String = py
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| invalid_argument(format!("{what}: {e}")))
}

fn check_port(port: i64, what: &str) -> PyResult<u16> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid_argument(format!("{what} must be 1..65535, got {port}")))
}

#[pymethods]
impl PyPortRegistry {
    /// `PortRegistry(project_root)`: the registry `~/.vibetrees/<parent>-<child>/ports.json` of
    /// the project (named by the last two components of `project_root`, as the server names it).
    /// Warns (`UserWarning`) when another project's root names the same registry.
    #[new]
    fn new(py: Python<'_>, project_root: PathBuf) -> PyResult<Self> {
        let root = project_root.to_string_lossy().into_owned();
        let inner = py.detach(|| ServerPortRegistry::new(&root)).py()?;
        if !inner.shared_with().is_empty() {
            let message = format!(
                "{} is shared with project(s) {}: the server names the registry by the last two \
                 path components",
                inner.registry_file().display(),
                inner.shared_with().join(", ")
            );
            py.import("warnings")?.call_method1("warn", (message,))?;
        }
        Ok(Self {
            inner,
            snapshot: Mutex::new(None),
        })
    }

    /// The project root as given.
    #[getter]
    fn project_root(&self) -> String {
        self.inner.project_root().to_string()
    }

    /// `~/.vibetrees/<parent>-<child>`.
    #[getter]
    fn registry_dir(&self) -> PathBuf {
        self.inner.registry_dir().to_path_buf()
    }

    /// `<registry_dir>/ports.json`.
    #[getter]
    fn registry_file(&self) -> PathBuf {
        self.inner.registry_file().to_path_buf()
    }

    /// Other project roots whose last two path components name this registry.
    #[getter]
    fn shared_with(&self) -> Vec<String> {
        self.inner.shared_with().to_vec()
    }

    /// The whole map `{"<worktree>:<service>": port}`, read from the file now. `save()` writes
    /// the changes made to the dict returned last.
    #[getter]
    fn ports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let map = py.detach(|| self.inner.load()).py()?;
        let dict = dict_of(py, &map)?;
        *self.snapshot.lock() = Some((dict.clone().unbind(), map));
        Ok(dict)
    }

    /// Makes `value` the map `save()` writes (its difference from the file as it is now).
    #[setter]
    fn set_ports(&self, py: Python<'_>, value: Bound<'_, PyDict>) -> PyResult<()> {
        let base = py.detach(|| self.inner.load()).py()?;
        *self.snapshot.lock() = Some((value.unbind(), base));
        Ok(())
    }

    /// The whole map, read from the file now.
    fn load<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let map = py.detach(|| self.inner.load()).py()?;
        dict_of(py, &map)
    }

    /// Writes the keys set, changed or deleted in the last `ports` dict, under the lock; every
    /// other key stays as the file has it. Returns how many keys it wrote or removed.
    fn save(&self, py: Python<'_>) -> PyResult<usize> {
        let Some((dict, base)) = self
            .snapshot
            .lock()
            .as_ref()
            .map(|(d, b)| (d.clone_ref(py), b.clone()))
        else {
            return Ok(0);
        };
        let now = map_of(dict.bind(py).as_any(), "ports")?;
        let n = py.detach(|| self.inner.save_changes(&base, &now)).py()?;
        *self.snapshot.lock() = Some((dict, now));
        Ok(n)
    }

    /// True when something listens on TCP `port` here (a bind probe, no process started).
    fn is_port_in_use(&self, py: Python<'_>, port: i64) -> PyResult<bool> {
        let port = check_port(port, "port")?;
        Ok(py.detach(|| port_in_use(port)))
    }

    /// The same as `is_port_in_use` (the server's synchronous name).
    fn is_port_in_use_sync(&self, py: Python<'_>, port: i64) -> PyResult<bool> {
        self.is_port_in_use(py, port)
    }

    /// An existing key keeps its port; else the next port up from `base_port` that is neither
    /// registered nor listening, written under the lock. Returns the port.
    fn allocate(
        &self,
        py: Python<'_>,
        worktree_name: String,
        service: String,
        base_port: i64,
    ) -> PyResult<u16> {
        let base = check_port(base_port, "base_port")?;
        py.detach(|| self.inner.allocate(&worktree_name, &service, base))
            .py()
    }

    /// `allocate` for each `{service: base_port}` in order, under one lock; returns
    /// `{service: port}`.
    fn allocate_atomic<'py>(
        &self,
        py: Python<'py>,
        worktree_name: String,
        services: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mapping = services
            .cast::<PyMapping>()
            .map_err(|_| invalid_argument("services must be a dict {service: base_port}"))?;
        let mut list = Vec::new();
        for item in mapping.items()?.iter() {
            let (service, base): (String, i64) = item.extract().map_err(|_| {
                invalid_argument("services must map service names (str) to base ports (int)")
            })?;
            list.push((service.clone(), check_port(base, &service)?));
        }
        let map = py
            .detach(|| self.inner.allocate_many(&worktree_name, &list))
            .py()?;
        dict_of(py, &map)
    }

    /// Drops every `<worktree_name>:*` key under the lock; returns how many.
    fn release(&self, py: Python<'_>, worktree_name: String) -> PyResult<usize> {
        py.detach(|| self.inner.release(&worktree_name)).py()
    }

    /// The same as `release` (the server's locked name).
    fn release_atomic(&self, py: Python<'_>, worktree_name: String) -> PyResult<usize> {
        self.release(py, worktree_name)
    }

    /// `{service: port}` of the worktree, read from the file now.
    fn get_worktree_ports<'py>(
        &self,
        py: Python<'py>,
        worktree_name: String,
    ) -> PyResult<Bound<'py, PyDict>> {
        let map = py
            .detach(|| self.inner.worktree_ports(&worktree_name))
            .py()?;
        dict_of(py, &map)
    }

    /// Adds the ports found in each worktree's `.env` (`[{"name", "path"}]`) that the registry
    /// misses; returns how many it added.
    fn sync_from_worktrees(&self, py: Python<'_>, worktrees: Bound<'_, PyAny>) -> PyResult<usize> {
        let mut list = Vec::new();
        for (i, item) in worktrees.try_iter()?.enumerate() {
            let item = item?;
            let get = |key: &str| -> PyResult<String> {
                item.get_item(key)
                    .and_then(|v| v.str().map(|s| s.to_string()))
                    .map_err(|_| invalid_argument(format!("worktrees[{i}] needs '{key}'")))
            };
            list.push(WorktreeRef {
                name: get("name")?,
                path: PathBuf::from(get("path")?),
            });
        }
        py.detach(|| self.inner.sync_from_worktrees(&list)).py()
    }
}
