//! The Python exception hierarchy: `vibetrees.VibetreesError` and one subclass per stable code of
//! [`vibetrees_core::Error::code`], each with a class attribute `code` naming it.
//!
//! Causes are chained (`raise ... from cause`): an OS error becomes an `OSError` (so `errno` and the
//! right subclass, e.g. `FileNotFoundError`, are there), a failed Python task's own exception is
//! the cause of the `TaskFailedError` that reports it.

use pyo3::exceptions::{PyException, PyOSError};
use pyo3::prelude::*;
use pyo3::types::PyType;
use vibetrees_core::Error;

pyo3::create_exception!(
    vibetrees,
    VibetreesError,
    PyException,
    "Base class of every error raised by vibetrees; `code` is the core's stable error code."
);
pyo3::create_exception!(
    vibetrees,
    InvalidArgumentError,
    VibetreesError,
    "An argument can never work (bad branch name, empty task name, bad option)."
);
pyo3::create_exception!(
    vibetrees,
    NotFoundError,
    VibetreesError,
    "A named thing does not exist (profiler id, repository, ref, cache entry, worktree)."
);
pyo3::create_exception!(
    vibetrees,
    AlreadyExistsError,
    VibetreesError,
    "A named thing exists already where a new one was asked for."
);
pyo3::create_exception!(
    vibetrees,
    InvalidGraphError,
    VibetreesError,
    "A task graph is malformed: duplicate name, unknown or self dependency."
);
pyo3::create_exception!(
    vibetrees,
    CycleError,
    InvalidGraphError,
    "A task graph has a cycle; `cycle` is the path, e.g. 'a -> b -> a'."
);
pyo3::create_exception!(
    vibetrees,
    TaskFailedError,
    VibetreesError,
    "A task failed; `task` names it and `__cause__` is the task's own exception."
);
pyo3::create_exception!(
    vibetrees,
    CancelledError,
    VibetreesError,
    "The work was cancelled before it finished."
);
pyo3::create_exception!(
    vibetrees,
    TimeoutError,
    VibetreesError,
    "An operation ran past its time limit."
);
pyo3::create_exception!(
    vibetrees,
    IoError,
    VibetreesError,
    "A filesystem or OS call failed; `__cause__` is the OSError."
);
pyo3::create_exception!(
    vibetrees,
    GitError,
    VibetreesError,
    "A git operation failed."
);
pyo3::create_exception!(
    vibetrees,
    ProcessError,
    VibetreesError,
    "A child process (npm, git, compose) failed to start or exited with an error."
);
pyo3::create_exception!(
    vibetrees,
    CacheError,
    VibetreesError,
    "A node_modules cache entry is unusable (corrupt, mutated, half-written)."
);
pyo3::create_exception!(
    vibetrees,
    LockError,
    VibetreesError,
    "A lock (ports registry, cache entry) could not be taken."
);
pyo3::create_exception!(
    vibetrees,
    ParseError,
    VibetreesError,
    "Malformed JSON/YAML input or a file in a format that could not be parsed."
);
pyo3::create_exception!(
    vibetrees,
    InternalError,
    VibetreesError,
    "A bug or broken invariant inside the library."
);
pyo3::create_exception!(
    vibetrees,
    WorktreeLockedError,
    VibetreesError,
    "The worktree is locked (`git worktree lock`); removing it needs `force_locked=True`."
);
pyo3::create_exception!(
    vibetrees,
    WorktreeDirtyError,
    VibetreesError,
    "The worktree has modified, staged or untracked files; removing it needs `force=True`."
);
pyo3::create_exception!(
    vibetrees,
    UnsafePathError,
    VibetreesError,
    "A path others could change (a cache folder of another user, or writable by others) is refused."
);

/// The exception class for a stable error code; unknown codes (a newer core) get the base class.
pub fn class_for_code<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyType> {
    match code {
        "INVALID_ARGUMENT" => py.get_type::<InvalidArgumentError>(),
        "NOT_FOUND" => py.get_type::<NotFoundError>(),
        "ALREADY_EXISTS" => py.get_type::<AlreadyExistsError>(),
        "CYCLE" => py.get_type::<CycleError>(),
        "INVALID_GRAPH" => py.get_type::<InvalidGraphError>(),
        "TASK_FAILED" => py.get_type::<TaskFailedError>(),
        "CANCELLED" => py.get_type::<CancelledError>(),
        "TIMEOUT" => py.get_type::<TimeoutError>(),
        "IO" => py.get_type::<IoError>(),
        "GIT" => py.get_type::<GitError>(),
        "PROCESS" => py.get_type::<ProcessError>(),
        "CACHE" => py.get_type::<CacheError>(),
        "LOCK" => py.get_type::<LockError>(),
        "PARSE" => py.get_type::<ParseError>(),
        "INTERNAL" => py.get_type::<InternalError>(),
        "WORKTREE_LOCKED" => py.get_type::<WorktreeLockedError>(),
        "WORKTREE_DIRTY" => py.get_type::<WorktreeDirtyError>(),
        "UNSAFE_PATH" => py.get_type::<UnsafePathError>(),
        _ => py.get_type::<VibetreesError>(),
    }
}

/// Adds the hierarchy to the module, sets each class's `code`, and exposes `ALL_CODES`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = py.get_type::<VibetreesError>();
    base.setattr("code", "VIBETREES")?;
    m.add("VibetreesError", base)?;
    for code in Error::ALL_CODES {
        let class = class_for_code(py, code);
        if class.is(py.get_type::<VibetreesError>()) {
            return Err(InternalError::new_err(format!(
                "the Python binding has no exception class for core error code {code}"
            )));
        }
        class.setattr("code", *code)?;
        m.add(class.name()?, class)?;
    }
    // Class-level defaults of the attributes set on raised instances, so they always exist.
    py.get_type::<TaskFailedError>().setattr("task", "")?;
    py.get_type::<CycleError>().setattr("cycle", "")?;
    m.add("ALL_CODES", Error::ALL_CODES.to_vec())?;
    Ok(())
}

/// Turns a core error into the Python exception of its code, with attributes and a chained cause.
pub fn to_py_err(err: Error) -> PyErr {
    Python::attach(|py| to_py_err_with_cause(py, err, None))
}

/// As [`to_py_err`], with an explicit cause (a failed Python task's own exception).
pub fn to_py_err_with_cause(py: Python<'_>, err: Error, cause: Option<PyErr>) -> PyErr {
    let class = class_for_code(py, err.code());
    let py_err = PyErr::from_type(class, err.to_string());
    let value = py_err.value(py);
    let _ = value.setattr("code", err.code());
    match &err {
        Error::TaskFailed { task, .. } => {
            let _ = value.setattr("task", task);
        }
        Error::Cycle { path } => {
            let _ = value.setattr("cycle", path);
        }
        _ => {}
    }
    let cause = cause.or_else(|| match &err {
        Error::Io { source, .. } => Some(os_error(source)),
        _ => None,
    });
    if cause.is_some() {
        py_err.set_cause(py, cause);
    }
    py_err
}

/// An `OSError` (its errno subclass when there is one) for an `std::io::Error`.
fn os_error(e: &std::io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, e.to_string())),
        None => PyOSError::new_err(e.to_string()),
    }
}

/// An `InvalidArgumentError` with `message`.
pub fn invalid_argument(message: impl Into<String>) -> PyErr {
    to_py_err(Error::InvalidArgument(message.into()))
}

/// Extension for `vibetrees_core::Result`: `.py()?` raises the mapped exception.
pub trait IntoPyResult<T> {
    /// Maps the core error to its Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for vibetrees_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
