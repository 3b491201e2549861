//! The built-in steps of a creation, one file each. Every step is a plain function from its
//! typed inputs (its dependencies' outputs) to a typed output, which names the step in
//! `create/graph.rs`'s table. To add a step: write its function and output type here, add the
//! output to the `outputs!` table in `graph.rs`, and add the function to the graph in
//! `create/mod.rs` (`built_in_steps`). Steps must not reach each other except through their
//! inputs.

mod bootstrap;
mod cache_restore;
mod containers;
mod git_add;
mod inputs;
mod ports_env_mcp;
mod services;

#[cfg(test)]
pub use bootstrap::Bootstrap;
pub use bootstrap::{Bootstrapped, bootstrap};
pub use cache_restore::{CacheRestored, restore};
pub use containers::{CriticalStarted, ImagesPulled, pull_images, start_critical};
pub use git_add::{WorktreeAdded, add_worktree};
pub use inputs::{ProjectInputs, read_inputs};
pub use ports_env_mcp::{
    EnvWritten, McpConfigured, PortsAllocated, allocate_ports, configure_mcp, write_env,
};
pub use services::{ServicesLoaded, load_services};
