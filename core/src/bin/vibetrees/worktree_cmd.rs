//! `vibetrees create | remove | list | metrics | trace | demo`.

/// Worktree subcommands.
#[derive(clap::Subcommand)]
pub enum WorktreeCommand {
    /// Build a sample project in a temporary folder, create worktrees cold then warm, compare.
    Demo,
}

pub fn run(_cmd: WorktreeCommand) -> vibetrees_core::Result<()> {
    Err(vibetrees_core::Error::Internal(
        "worktree commands are not built yet".into(),
    ))
}
