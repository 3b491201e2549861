//! Worktree creation: the whole `create_worktree_optimized` as one dependency graph.
//!
//! - [`slug`]: names and the safety checks done before anything is touched.
//! - [`git`]: refs and objects through git2, registration and checkout through the git CLI.

pub mod git;
pub mod history;
pub mod install;
pub mod slug;
