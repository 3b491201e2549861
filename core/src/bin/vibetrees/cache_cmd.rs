//! `vibetrees cache ...`: status, warm, verify, prune, clear.

/// Subcommands of `vibetrees cache`.
#[derive(clap::Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes, hits and misses.
    Status,
}

pub fn run(_cmd: CacheCommand) -> vibetrees_core::Result<()> {
    Err(vibetrees_core::Error::Internal(
        "`vibetrees cache` is not built yet".into(),
    ))
}
