//! The `vibetrees` command line: create worktrees fast, inspect the cache and the profile.
//!
//! Each group of subcommands lives in its own file: `graph_cmd.rs` (task-graph demo),
//! `cache_cmd.rs` (node_modules cache), `hooks_cmd.rs` (hooks, include), `ports_cmd.rs` (ports
//! registry), `pool_cmd.rs` (spare worktrees), `worktree_cmd.rs` (create/remove/list/metrics/trace/demo).

mod cache_cmd;
mod graph_cmd;
mod hooks_cmd;
mod pool_cmd;
mod ports_cmd;
mod worktree_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Fast git worktrees for Node projects.
#[derive(Parser)]
#[command(name = "vibetrees", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Profile and run a small built-in task graph, then print the report.
    Graph(graph_cmd::GraphArgs),
    /// Manage the node_modules cache.
    #[command(subcommand)]
    Cache(cache_cmd::CacheCommand),
    /// The project's ports registry, shared with the VibeTrees server (allocate, release, list).
    #[command(subcommand)]
    Ports(ports_cmd::PortsCommand),
    /// The repository's setup hooks and their approval.
    #[command(subcommand)]
    Hooks(hooks_cmd::HooksCommand),
    /// What `.worktreeinclude` copies into new worktrees.
    #[command(subcommand)]
    Include(hooks_cmd::IncludeCommand),
    /// The pool of spare worktrees a creation claims (status, fill, clear).
    #[command(subcommand)]
    Pool(pool_cmd::PoolCommand),
    /// Worktree commands (create, remove, list, metrics, trace, demo).
    #[command(flatten)]
    Worktree(worktree_cmd::WorktreeCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Graph(args) => graph_cmd::run(args),
        Command::Cache(cmd) => cache_cmd::run(cmd),
        Command::Ports(cmd) => ports_cmd::run(cmd),
        Command::Hooks(cmd) => hooks_cmd::run_hooks(cmd),
        Command::Include(cmd) => hooks_cmd::run_include(cmd),
        Command::Pool(cmd) => pool_cmd::run(cmd),
        Command::Worktree(cmd) => worktree_cmd::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vibetrees: error [{}]: {}", e.code(), e.full_message());
            ExitCode::FAILURE
        }
    }
}
