//! `vibetrees._native`: the Python face of vibetrees-core (pyo3, abi3 for Python 3.9+).
//!
//! The pure-Python package `vibetrees` (python/vibetrees/) re-exports everything defined here.
//! Every blocking call releases the interpreter (`py.detach`) while the core works, and answers
//! Ctrl-C by dropping the core's future; results are plain dicts with the contract's keys.
#![warn(missing_docs)]

mod bridge;
mod cache;
mod convert;
mod errors;
mod optimizer;
mod ports;
mod profiler;
mod worktree;

use pyo3::prelude::*;

/// The extension module `vibetrees._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", vibetrees_core::VERSION)?;
    errors::register(m)?;
    m.add_class::<profiler::PyProfiler>()?;
    m.add_class::<profiler::PySpan>()?;
    m.add_class::<optimizer::PyOptimizer>()?;
    m.add_class::<cache::PyCacheManager>()?;
    m.add_class::<worktree::PyWorktreeManager>()?;
    m.add_class::<ports::PyPortRegistry>()?;
    set_all(m)
}

/// `__all__`: every public name the module defines (the package re-exports exactly these).
fn set_all(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let mut names: Vec<String> = Vec::new();
    for key in m.dict().keys() {
        let name: String = key.extract()?;
        if !name.starts_with('_') {
            names.push(name);
        }
    }
    names.sort();
    m.add("__all__", names)
}
