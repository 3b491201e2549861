//! vibetrees-core: the engine behind vibetrees-native.
//!
//! - [`profiler`]: nested spans, streaming per-name stats, metrics and Chrome-trace export.
//! - [`optimizer`]: a dependency graph of tasks, each started as soon as its dependencies finish.
//! - [`cache`]: a content-addressed node_modules cache restored by hardlink / reflink / copy.
//! - [`worktree`]: `create_worktree_optimized`, the whole worktree creation as one graph.
//!
//! The core knows nothing of its bindings: callbacks are traits or closures each binding implements.
#![warn(missing_docs)]

pub mod cache;
pub mod compose;
pub mod containers;
pub mod envfile;
pub mod error;
pub mod lockfile;
pub mod mcp;
pub mod optimizer;
pub mod ports;
pub mod profiler;
pub mod progress;
pub mod runtime;
pub mod sample_project;
pub mod worktree;

pub use error::{Error, Result};
pub use optimizer::{
    OptimizerOptions, PerformanceOptimizer, Task, TaskBody, TaskError, TaskInputs,
};
pub use profiler::Profiler;

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
