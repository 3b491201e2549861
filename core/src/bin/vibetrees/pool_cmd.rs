//! `vibetrees pool status | fill | clear`: the project's spare worktrees (`worktree/pool/` in
//! the core).

use crate::worktree_cmd::{ProjectArgs, pin_node_abi};
use std::path::PathBuf;
use vibetrees_core::Result;
use vibetrees_core::worktree::{WorktreeManager, WorktreeSettings};

/// Subcommands of `vibetrees pool`.
#[derive(clap::Subcommand)]
pub enum PoolCommand {
    /// The spares (JSON): commit, source ref, node_modules, bytes, age; and the settings.
    Status {
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Make spares now for a ref (default: the main worktree's branch), up to --size.
    Fill {
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
        /// The ref to make spares of.
        #[arg(long)]
        from: Option<String>,
        /// Spares per commit (the core's `poolSize`, default 1).
        #[arg(long)]
        size: Option<usize>,
        /// The node_modules cache restored into the spares (default ~/.vibetrees/cache).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Delete every spare nobody is claiming.
    Clear {
        /// The project and where its worktrees are.
        #[command(flatten)]
        project: ProjectArgs,
    },
}

fn manager(settings: WorktreeSettings) -> Result<WorktreeManager> {
    WorktreeManager::new(
        WorktreeSettings {
            record_history: false,
            ..settings
        }
        .into(),
    )
}

/// Runs a `vibetrees pool` subcommand.
pub fn run(cmd: PoolCommand) -> Result<()> {
    match cmd {
        PoolCommand::Status { project } => {
            let m = manager(project.settings()?)?;
            println!("{}", serde_json::to_string_pretty(&m.pool_status())?);
        }
        PoolCommand::Fill {
            project,
            from,
            size,
            cache_dir,
        } => {
            pin_node_abi();
            let mut settings = WorktreeSettings {
                cache_dir,
                ..project.settings()?
            };
            if let Some(n) = size {
                settings.pool_size = n;
            }
            let m = manager(settings)?;
            let report =
                vibetrees_core::runtime::block_on(async { m.fill_pool(from.as_deref()).await })?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        PoolCommand::Clear { project } => {
            let m = manager(project.settings()?)?;
            let n = vibetrees_core::runtime::block_on(async { m.clear_pool().await })?;
            println!("removed {n} spare(s)");
        }
    }
    Ok(())
}
