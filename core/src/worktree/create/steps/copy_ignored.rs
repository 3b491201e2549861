//! `copy-ignored`: the ignored files `.worktreeinclude` (in the `from` tree) and the host's
//! `include` option name, copied from the main worktree into the new one (`worktree/include/`),
//! beside `cache-restore`, after the checkout. Entries marked for the background (the
//! `includeBackground` option, `#vibetrees:background` lines) are left to `create/background.rs`. Must not touch tracked files nor node_modules,
//! nor replace a path the new worktree already has.

use super::git_add::WorktreeAdded;
use crate::optimizer::TaskError;
use crate::worktree::create::Creation;
use crate::worktree::git;
use crate::worktree::include::{self, Deferred, IncludeCopied, IncludeRules};
use std::sync::Arc;

/// Selects and copies; `{ method: "none" }` when there are no patterns or nothing matches.
pub fn copy_ignored(c: &Creation, _added: Arc<WorktreeAdded>) -> Result<IncludeCopied, TaskError> {
    let repo = git::open(&c.state.root)?;
    let text = include::include_file_in_tree(&repo, c.from.tree)?;
    let settings = &c.state.settings;
    let Some(rules) = IncludeRules::with_background(
        &c.state.root,
        text.as_deref(),
        &settings.include,
        &settings.include_background,
    )?
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
    let (selected, later) = selected.split_background(&rules);
    let deferred = (!later.entries.is_empty()).then(|| {
        c.emit(
            "include",
            format!(
                "Copying {} ignored files ({:.1} MB) in the background after ready",
                later.files,
                later.bytes as f64 / 1e6
            ),
        );
        Arc::new(later)
    });
    let background = deferred.as_ref().map(|l| Deferred {
        entries: l.entries.len(),
        files: l.files,
        bytes: l.bytes,
    });
    if selected.entries.is_empty() {
        return Ok(IncludeCopied {
            method: "none",
            background,
            deferred,
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
    let direct_io = include::use_direct_io(c.state.settings.include_direct_io, &c.path);
    let mut out = include::copy_selected(
        &c.state.root,
        &c.path,
        &c.staging.join("include"),
        &selected,
        include::copy_workers(direct_io),
        direct_io,
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
    out.background = background;
    out.deferred = deferred;
    Ok(out)
}
