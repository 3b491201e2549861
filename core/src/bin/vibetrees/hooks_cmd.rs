//! `vibetrees hooks list|approve|revoke` (the repository's setup hooks and their approval) and
//! `vibetrees include check` (what `.worktreeinclude` would copy, and how big).

use std::path::{Path, PathBuf};
use vibetrees_core::worktree::git;
use vibetrees_core::worktree::hooks::{self, Approvals, Hook};
use vibetrees_core::worktree::include::{self, IncludeRules};
use vibetrees_core::{Error, Result};

/// Where the hooks are read from.
#[derive(clap::Args)]
pub struct HookSourceArgs {
    /// Project root.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Read the config files from this ref's tree (what a creation from it runs) instead of the
    /// working files.
    #[arg(long)]
    pub from: Option<String>,
}

/// `vibetrees hooks ...`.
#[derive(clap::Subcommand)]
pub enum HooksCommand {
    /// List the repository's hooks (vibetrees.json, .config/wt.toml, conductor.json), approved
    /// or not.
    List {
        #[command(flatten)]
        source: HookSourceArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve the exact text of the repository's hooks (all, or the NAMEs) for this project.
    Approve {
        #[command(flatten)]
        source: HookSourceArgs,
        /// Hook names (default: every hook listed).
        names: Vec<String>,
    },
    /// Withdraw approvals (of the NAMEs' current text, or every approval of the project).
    Revoke {
        #[command(flatten)]
        source: HookSourceArgs,
        /// Hook names (default: all of the project's approvals).
        names: Vec<String>,
    },
}

/// `vibetrees include ...`.
#[derive(clap::Subcommand)]
pub enum IncludeCommand {
    /// What a new worktree would get copied: the ignored paths `.worktreeinclude` names.
    Check {
        /// Project root.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Extra patterns, as the host's `include` option.
        #[arg(long = "include")]
        include: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn root_of(repo: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(repo).map_err(|e| Error::io_path("open project", repo, e))
}

fn read_hooks(src: &HookSourceArgs) -> Result<(PathBuf, Vec<Hook>)> {
    let root = root_of(&src.repo)?;
    let hooks = match &src.from {
        None => hooks::repository_hooks_in_dir(&root)?,
        Some(r) => {
            let repo = git::open(&root)?;
            let from = git::resolve_from(&repo, r)?;
            hooks::repository_hooks_in_tree(&repo, from.tree)?
        }
    };
    Ok((root, hooks))
}

fn selected<'a>(hooks: &'a [Hook], names: &[String]) -> Result<Vec<&'a Hook>> {
    if let Some(n) = names.iter().find(|n| !hooks.iter().any(|h| &h.name == *n)) {
        return Err(Error::NotFound(format!(
            "hook {n:?} (the repository declares: {})",
            hooks
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(hooks
        .iter()
        .filter(|h| names.is_empty() || names.contains(&h.name))
        .collect())
}

/// Runs a `hooks` subcommand.
pub fn run_hooks(cmd: HooksCommand) -> Result<()> {
    match cmd {
        HooksCommand::List { source, json } => {
            let (root, hooks) = read_hooks(&source)?;
            let approvals = Approvals::load_default()?;
            if json {
                let v: Vec<serde_json::Value> = hooks
                    .iter()
                    .map(|h| {
                        let mut v = serde_json::to_value(h).unwrap_or_default();
                        v["approved"] = approvals.is_approved(&root, h).into();
                        v["hash"] = h.command_hash().into();
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            if hooks.is_empty() {
                println!("no repository hooks in {}", root.display());
            }
            for h in &hooks {
                println!(
                    "{:<10} {:<12} {:<24} {:<16} {}",
                    if approvals.is_approved(&root, h) {
                        "approved"
                    } else {
                        "NOT approved"
                    },
                    h.phase.as_str(),
                    h.name,
                    h.source.as_str(),
                    h.command
                );
            }
            Ok(())
        }
        HooksCommand::Approve { source, names } => {
            let (root, hooks) = read_hooks(&source)?;
            let mut approvals = Approvals::load_default()?;
            for h in selected(&hooks, &names)? {
                approvals.approve(&root, h);
                println!("approved {} ({}): {}", h.name, h.source.as_str(), h.command);
            }
            approvals.save()
        }
        HooksCommand::Revoke { source, names } => {
            let mut approvals = Approvals::load_default()?;
            if names.is_empty() {
                let root = root_of(&source.repo)?;
                let n = approvals.revoke_all(&root);
                println!("revoked {n} approval(s) of {}", root.display());
            } else {
                let (root, hooks) = read_hooks(&source)?;
                for h in selected(&hooks, &names)? {
                    let was = approvals.revoke(&root, h);
                    println!(
                        "{} {}",
                        if was { "revoked" } else { "was not approved:" },
                        h.name
                    );
                }
            }
            approvals.save()
        }
    }
}

/// Runs an `include` subcommand.
pub fn run_include(cmd: IncludeCommand) -> Result<()> {
    let IncludeCommand::Check {
        repo,
        include: extra,
        json,
    } = cmd;
    let root = root_of(&repo)?;
    let text = std::fs::read_to_string(root.join(include::INCLUDE_FILE)).ok();
    let Some(rules) = IncludeRules::new(&root, text.as_deref(), &extra)? else {
        println!(
            "no {} and no --include pattern: nothing is copied",
            include::INCLUDE_FILE
        );
        return Ok(());
    };
    let repo = git::open(&root)?;
    let sel = include::select(&root, &repo, &rules, &[root.join(".worktrees")])?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sel)?);
        return Ok(());
    }
    for e in &sel.entries {
        println!(
            "{:<8} {:>8} files {:>12} bytes  {}",
            format!("{:?}", e.kind).to_lowercase(),
            e.files,
            e.bytes,
            e.path.display()
        );
    }
    println!(
        "{} entries, {} files, {:.1} MB would be copied ({} patterns)",
        sel.entries.len(),
        sel.files,
        sel.bytes as f64 / 1e6,
        rules.len()
    );
    Ok(())
}
