//! The worktree's host-side configuration, once its services are known: `allocate-ports` (the
//! ports registry, under the same proper-lockfile lock as the Node server), `write-env` (`.env`,
//! if absent) and `mcp-discovery` (`.claude/settings.json`). Must not start containers or touch
//! other worktrees' ports.

use super::git_add::WorktreeAdded;
use super::inputs::ProjectInputs;
use super::services::ServicesLoaded;
use crate::optimizer::TaskError;
use crate::platform::ConfinedDir;
use crate::services::envfile::{self, EnvFileOutcome};
use crate::services::mcp;
use crate::services::ports::{AllocatedPorts, PortRegistry};
use crate::worktree::create::Creation;
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The worktree's ports. JSON: `{ service: port }`.
#[derive(Debug, Clone)]
pub struct PortsAllocated(pub AllocatedPorts);

impl Serialize for PortsAllocated {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.to_map().serialize(s)
    }
}

/// Allocates a port per published service port, in the project's registry.
pub fn allocate_ports(
    c: &Creation,
    services: Arc<ServicesLoaded>,
) -> Result<PortsAllocated, TaskError> {
    let registry = PortRegistry::for_project(&c.state.root)?;
    let ports = registry.allocate(&c.name, &services.services.ports)?;
    let list: Vec<String> = ports
        .to_map()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    c.emit("ports", format!("✓ Ports allocated: {}", list.join(", ")));
    Ok(PortsAllocated(ports))
}

/// `.env` in the worktree. JSON: `{ path, written }` (false: one was there, kept).
#[derive(Debug, Clone, Serialize)]
pub struct EnvWritten {
    /// The file.
    pub path: PathBuf,
    /// True when this creation wrote it.
    pub written: bool,
}

/// Writes `.env` (compose project name, the ports) unless the branch has one.
pub fn write_env(
    c: &Creation,
    (worktree, ports): (Arc<WorktreeAdded>, Arc<PortsAllocated>),
) -> Result<EnvWritten, TaskError> {
    if let Some(link) = link_in_the_way(c, &worktree.path, ".env", ("write-env", "ports"))? {
        return Ok(EnvWritten {
            path: worktree.path.join(link),
            written: false,
        });
    }
    let out = envfile::write_env_if_absent(&worktree.path, &c.name, &ports.0.env_pairs())?;
    if matches!(out, EnvFileOutcome::Written(_)) {
        crate::worktree::marker::note_written(&c.state.root, &worktree.path, ".env");
    }
    Ok(EnvWritten {
        path: out.path().to_path_buf(),
        written: matches!(out, EnvFileOutcome::Written(_)),
    })
}

/// `.claude/settings.json`. JSON: `{ path, servers }` (the ids configured).
#[derive(Debug, Clone, Serialize)]
pub struct McpConfigured {
    /// The file.
    pub path: PathBuf,
    /// The MCP server ids written: discovered ones, then the host's extra ones.
    pub servers: Vec<String>,
}

/// Discovers the project's MCP servers and merges them, with the host's, into the worktree's
/// `.claude/settings.json`.
pub fn configure_mcp(
    c: &Creation,
    (inputs, worktree, ports): (Arc<ProjectInputs>, Arc<WorktreeAdded>, Arc<PortsAllocated>),
) -> Result<McpConfigured, TaskError> {
    let extra: Vec<(String, serde_json::Value)> = c
        .state
        .settings
        .mcp_servers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if link_in_the_way(c, &worktree.path, mcp::CLAUDE_SETTINGS, ("mcp", "mcp"))?.is_some() {
        return Ok(McpConfigured {
            path: worktree.path.join(mcp::CLAUDE_SETTINGS),
            servers: Vec::new(),
        });
    }
    let (path, found) = mcp::configure_worktree(
        &c.state.root,
        &worktree.path,
        inputs.package_json_text.as_deref(),
        mcp::global_node_modules(),
        ports.0.get("postgres"),
        &extra,
    )?;
    crate::worktree::marker::note_written(&c.state.root, &worktree.path, ".claude/settings.json");
    let servers: Vec<String> = found
        .into_iter()
        .map(|s| s.id)
        .chain(extra.into_iter().map(|(k, _)| k))
        .collect();
    c.emit(
        "mcp",
        format!(
            "✓ MCP servers configured: {}",
            if servers.is_empty() {
                "none".to_string()
            } else {
                servers.join(", ")
            }
        ),
    );
    Ok(McpConfigured { path, servers })
}

/// The first symbolic link on `rel`'s way beneath the worktree, if any: then the step `step` is
/// skipped with a `⚠ <step> skipped: <link> is a symbolic link` progress message (under the
/// UI's progress step `progress`), and nothing is read or written through it.
pub(super) fn link_in_the_way(
    c: &Creation,
    worktree: &Path,
    rel: &str,
    (step, progress): (&str, &str),
) -> Result<Option<PathBuf>, TaskError> {
    let dir = ConfinedDir::open(worktree)?;
    let link = dir.link_on_path(rel)?;
    if let Some(link) = &link {
        c.emit(
            progress,
            format!(
                "⚠ {step} skipped: {} is a symbolic link (never followed in a worktree)",
                link.display()
            ),
        );
    }
    Ok(link)
}
