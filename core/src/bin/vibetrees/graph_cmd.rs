//! `vibetrees graph`: runs a small built-in task graph under the profiler and prints the report.

/// Options of `vibetrees graph`.
#[derive(clap::Args)]
pub struct GraphArgs {
    /// Print the Chrome trace (JSON) instead of the report.
    #[arg(long)]
    pub trace: bool,
}

pub fn run(_args: GraphArgs) -> vibetrees_core::Result<()> {
    Err(vibetrees_core::Error::Internal(
        "`vibetrees graph` is not built yet".into(),
    ))
}
