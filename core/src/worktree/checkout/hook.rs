//! The `post-checkout` hook `git worktree add` would run after its checkout: found where git
//! looks for it (`core.hooksPath`, else the common dir's `hooks/`) and run the way git runs it.
//!
//! Owns: finding and running that one hook. Must not touch: the worktree's files or index, the
//! registration (a failing hook is reported; the caller rolls back).

use super::expand_home;
use crate::{Error, Result};
use git2::{Oid, Repository};
use std::path::{Path, PathBuf};

/// The `post-checkout` hook `git worktree add` would run, if any: in `core.hooksPath` (a relative
/// one from the main worktree's top, where git resolves it) or the common dir's `hooks/`; only an
/// executable file (git skips others with a hint). Husky projects have one (`.husky/_`).
pub fn post_checkout_hook(repo: &Repository) -> Option<PathBuf> {
    let cfg = repo.config().and_then(|mut c| c.snapshot()).ok()?;
    let common = repo.commondir().to_path_buf();
    let dir = match cfg.get_string("core.hooksPath").ok() {
        Some(p) => {
            let p = expand_home(&p);
            if p.is_absolute() {
                p
            } else {
                repo.workdir().unwrap_or(&common).join(p)
            }
        }
        None => common.join("hooks"),
    };
    let hook = dir.join("post-checkout");
    let meta = std::fs::metadata(&hook).ok()?;
    use std::os::unix::fs::PermissionsExt;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(hook)
}

/// Runs the `post-checkout` hook as `git worktree add` does after its checkout: in the new
/// worktree, arguments `<null oid> <commit> 1`, `GIT_DIR` and `GIT_WORK_TREE` removed from its
/// environment, no stdin. A non-zero exit is [`Error::Git`] with the hook's output, as the CLI
/// would fail.
pub fn run_post_checkout_hook(hook: &Path, worktree: &Path, commit: Oid) -> Result<()> {
    let out = std::process::Command::new(hook)
        .args([
            Oid::ZERO_SHA1.to_string(),
            commit.to_string(),
            "1".to_string(),
        ])
        .current_dir(worktree)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Process {
            program: hook.display().to_string(),
            message: format!("cannot run the post-checkout hook: {e}"),
        })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(Error::Git {
        context: "post-checkout hook".into(),
        message: format!("{} ({})", text.trim(), out.status),
    })
}
