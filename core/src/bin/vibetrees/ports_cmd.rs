//! `vibetrees ports ...`: the project's ports registry (`~/.vibetrees/<parent>-<child>/ports.json`),
//! read and changed under the same lock as the VibeTrees server and every binding.

use std::path::PathBuf;
use vibetrees_core::services::server_registry::ServerPortRegistry;
use vibetrees_core::{Error, Result};

/// Options every ports subcommand takes.
#[derive(clap::Args, Clone)]
pub struct PortsArgs {
    /// The project root (default: the current folder), named as the server names it.
    #[arg(long)]
    root: Option<PathBuf>,
}

/// Subcommands of `vibetrees ports`.
#[derive(clap::Subcommand)]
pub enum PortsCommand {
    /// Allocate ports for a worktree: prints `{ "<service>": port }` (JSON).
    Allocate {
        /// The worktree's name.
        worktree: String,
        /// `service=basePort` pairs, e.g. `postgres=5432 api=3000`.
        #[arg(required = true)]
        services: Vec<String>,
        #[command(flatten)]
        args: PortsArgs,
    },
    /// Release every port of a worktree: prints how many were released.
    Release {
        /// The worktree's name.
        worktree: String,
        #[command(flatten)]
        args: PortsArgs,
    },
    /// Print the registry (JSON), or one worktree's `{ service: port }`.
    List {
        /// Only this worktree.
        worktree: Option<String>,
        #[command(flatten)]
        args: PortsArgs,
    },
}

fn open(args: &PortsArgs) -> Result<ServerPortRegistry> {
    let root = match &args.root {
        Some(r) => r.clone(),
        None => std::env::current_dir().map_err(|e| Error::io_path("read", ".", e))?,
    };
    let reg = ServerPortRegistry::new(&root.to_string_lossy())?;
    for other in reg.shared_with() {
        eprintln!(
            "vibetrees: warning: {} is shared with project {other}",
            reg.registry_file().display()
        );
    }
    Ok(reg)
}

fn parse_service(s: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::InvalidArgument(format!(
            "expected service=basePort (basePort 1..65535), got {s:?}"
        ))
    };
    let (name, base) = s.split_once('=').ok_or_else(bad)?;
    let base: u16 = base.parse().map_err(|_| bad())?;
    if name.is_empty() || base == 0 {
        return Err(bad());
    }
    Ok((name.to_string(), base))
}

/// Runs one `vibetrees ports` subcommand.
pub fn run(cmd: PortsCommand) -> Result<()> {
    let out = match cmd {
        PortsCommand::Allocate {
            worktree,
            services,
            args,
        } => {
            let services = services
                .iter()
                .map(|s| parse_service(s))
                .collect::<Result<Vec<_>>>()?;
            serde_json::to_string(&open(&args)?.allocate_many(&worktree, &services)?)?
        }
        PortsCommand::Release { worktree, args } => open(&args)?.release(&worktree)?.to_string(),
        PortsCommand::List { worktree, args } => {
            let reg = open(&args)?;
            match worktree {
                Some(w) => serde_json::to_string(&reg.worktree_ports(&w)?)?,
                None => serde_json::to_string_pretty(&reg.ports()?)?,
            }
        }
    };
    println!("{out}");
    Ok(())
}
