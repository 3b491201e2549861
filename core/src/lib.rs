//! vibetrees-core: the engine behind vibetrees-native.
//!
//! - [`profiler`]: nested spans, streaming per-name stats, metrics and Chrome-trace export.
//! - [`optimizer`]: a dependency graph of tasks, each started as soon as its dependencies finish.
//! - [`cache`]: a content-addressed node_modules cache restored by hardlink / reflink / copy.
//! - [`services`]: the host side of a worktree: ports registry, compose, containers, `.env`, MCP.
//! - [`worktree`]: `create_worktree_optimized`, the whole worktree creation as one graph.
//! - [`platform`]: the OS seam (Linux, macOS, portable): stat, clone, no-follow opens, ports,
//!   children that die with their parent. Nothing else calls OS-specific primitives.
//!
//! The core knows nothing of its bindings: callbacks are traits or closures each binding implements.
#![warn(missing_docs)]

pub mod cache;
pub mod error;
pub mod optimizer;
pub mod platform;
pub mod process;
pub mod profiler;
pub mod progress;
pub mod runtime;
pub mod sample_project;
pub mod services;
pub mod worktree;

pub use error::{Error, Result};
pub use optimizer::{
    OptimizerOptions, PerformanceOptimizer, Task, TaskBody, TaskError, TaskInputs,
};
pub use profiler::Profiler;

/// The library's version, as in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
