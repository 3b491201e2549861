//! `copy-ignored`: the ignored files `.worktreeinclude` (in the `from` tree) and the host's
//! `include` option name, copied from the main worktree into the new one (`worktree/include/`),
//! beside `cache-restore`, after the checkout. Must not touch tracked files nor node_modules,
//! nor replace a path the new worktree already has.

use super::git_add::WorktreeAdded;
use crate::optimizer::TaskError;
use crate::worktree::create::Creation;
use crate::worktree::git;
use crate::worktree::include::{self, IncludeCopied, IncludeRules};
use crate::worktree::settings::machine_cores;
use std::sync::Arc;

/// Selects and copies; `{ method: "none" }` when there are no patterns or nothing matches.
pub fn copy_ignored(c: &Creation, _added: Arc<WorktreeAdded>) -> Result<IncludeCopied, TaskError> {
    let repo = git::open(&c.state.root)?;
    let text = include::include_file_in_tree(&repo, c.from.tree)?;
    let Some(rules) = IncludeRules::new(&c.state.root, text.as_deref(), &c.state.settings.include)?
    else {
        return Ok(IncludeCopied {
            method: "none",
            ..Default::default()
        });
    };
    let selected = include::select(
        &c.state.root,
        &repo,
        &rules,
        std::slice::from_ref(&c.state.base),
    )?;
    if selected.entries.is_empty() {
        return Ok(IncludeCopied {
            method: "none",
            ..Default::default()
        });
    }
    c.emit(
        "include",
        format!(
            "Copying {} ignored files ({:.1} MB)",
            selected.files,
            selected.bytes as f64 / 1e6
        ),
    );
    let out = include::copy_selected(
        &c.state.root,
        &c.path,
        &c.staging.join("include"),
        &selected,
        machine_cores().clamp(1, 4),
    )?;
    c.emit(
        "include",
        format!(
            "✓ Copied {} ignored files ({:.1} MB, {}) in {:.0} ms",
            out.files,
            out.bytes as f64 / 1e6,
            out.method,
            out.ms
        ),
    );
    Ok(out)
}
