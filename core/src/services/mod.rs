//! The host-side services of a creation: what a worktree gets besides its files.
//!
//! - [`ports`]: the ports registry shared with the VibeTrees Node server (`ports.json`).
//! - [`proper_lock`]: the cross-process lock of that registry, compatible with the npm package
//!   `proper-lockfile` (a `.lock` directory). Not to be confused with a package manager's
//!   lockfile (`package-lock.json`), which the cache reads ([`crate::cache`]).
//! - [`server_registry`]: the server's `PortRegistry` object over that registry (what the
//!   Node, Python and C `PortRegistry` classes wrap).
//! - [`compose`]: the services and published ports of a compose file.
//! - [`containers`]: the container engine (docker / podman / none): pulls, `up`, `down`.
//! - [`envfile`]: the worktree's `.env`.
//! - [`mcp`]: MCP server discovery and the worktree's `.claude/settings.json`.
//!
//! These modules know nothing of the creation graph: its steps (`crate::worktree`) call them.

pub mod compose;
pub mod containers;
pub mod envfile;
pub mod mcp;
pub mod names;
pub mod ports;
pub mod proper_lock;
pub mod server_registry;
