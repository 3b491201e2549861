//! `remove_worktree`: removes only what is ours to remove, as `git worktree remove` would.
//!
//! - Only a **registered worktree of this repository** at `<base>/<name>`, or the debris of a
//!   creation of ours that died (its registration carries our lock reason and marker, its creator
//!   is gone). An unregistered folder under the base (a sibling project) is refused
//!   ([`Error::NotFound`]), except the empty folder a creation killed inside libgit2 leaves.
//! - A worktree **being created** by a live process: [`Error::Lock`].
//! - A **locked** worktree (`git worktree lock`): [`Error::WorktreeLocked`] unless
//!   `force_locked`.
//! - A **dirty** one (modified, staged or untracked files; `.env`, the MCP settings,
//!   `node_modules` and the other files the creation wrote do not count while they are as it
//!   wrote them: `marker.rs`): [`Error::WorktreeDirty`] unless `force`; with `force` its folder
//!   and registration go to the trash for `trashGrace` (`trash.rs`), restorable.
//! - A clean one: moved aside and deleted in the background (nothing of the user's is in it).
//!
//! Owns the decision; the moves are `trash.rs` and `recovery.rs`'s.

use super::git;
use super::manager::ManagerState;
use super::marker::{self, CreationMarker};
use super::outcome::RemoveOutcome;
use super::recovery::creating_pid;
use super::slug;
use super::trash::{Trash, TrashEntry};
use crate::services::containers::{self, ComposeProject};
use crate::services::ports::PortRegistry;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How far a removal may go. JSON (bindings): `{ force?: boolean, forceLocked?: boolean }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveOptions {
    /// Remove a worktree with changes (it goes to the trash for the grace period).
    #[serde(default)]
    pub force: bool,
    /// Remove a worktree locked with `git worktree lock` (a second, explicit choice).
    #[serde(default)]
    pub force_locked: bool,
}

/// What the checks decided.
enum Verdict {
    /// Nothing of the user's in it: delete.
    Delete { registration: Option<String> },
    /// The user's changes are in it: keep it in the trash.
    Keep {
        registration: Option<String>,
        why: String,
    },
}

fn list_some(paths: &[String]) -> String {
    let mut s = paths.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if paths.len() > 5 {
        s.push_str(&format!(" and {} more", paths.len() - 5));
    }
    s
}

/// Decides what may happen to `<base>/<name>` (blocking, touches nothing).
fn check(state: &ManagerState, name: &str, path: &Path, opts: RemoveOptions) -> Result<Verdict> {
    let repo = git::open(&state.root)?;
    let Some(reg) = git::registration_at(&repo, path)? else {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(Error::NotFound(format!(
                "worktree {name:?} ({})",
                path.display()
            )));
        }
        if super::recovery::is_unused_registration_folder(path) {
            return Ok(Verdict::Delete { registration: None });
        }
        return Err(Error::NotFound(format!(
            "{} is not a registered worktree of this repository (nor debris of one of ours): \
             refusing to delete a folder this engine did not make",
            path.display()
        )));
    };
    let gitdir = marker::gitdir_of(&repo, &reg.name);
    let mark = CreationMarker::read(&gitdir);
    if reg.half_made() {
        let pid = reg.lock.as_deref().and_then(creating_pid);
        let alive = match pid {
            Some(p) if p == std::process::id() => true,
            Some(p) => super::recovery::creator_alive(p, mark.as_ref()),
            // no pid: libgit2's unfinished registration, called half-made only on our marker
            // with no live registering process (`checkout::left_registering`)
            None => false,
        };
        if alive {
            return Err(Error::Lock(format!(
                "worktree {name:?} is being created by process {}",
                pid.map_or("?".into(), |p| p.to_string())
            )));
        }
        // debris of a creation of ours that died: deleted only if nothing in it is the user's
        let changed =
            super::recovery::user_content(&repo, path, reg.branch.as_deref(), mark.as_ref());
        return Ok(if changed.is_empty() {
            Verdict::Delete {
                registration: Some(reg.name),
            }
        } else {
            Verdict::Keep {
                registration: Some(reg.name),
                why: format!(
                    "debris of a creation that died, edited since: {}",
                    list_some(&changed)
                ),
            }
        });
    }
    if !reg.folder_exists {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(Verdict::Delete {
                registration: Some(reg.name),
            });
        }
        // a folder there without its `.git` file: git cannot tell what in it is the user's
        if !opts.force {
            return Err(Error::WorktreeDirty(format!(
                "{} has lost its .git file: git cannot tell its changes; pass force to move it \
                 to the trash",
                path.display()
            )));
        }
        return Ok(Verdict::Keep {
            registration: Some(reg.name),
            why: "removed with force: the folder had lost its .git file".into(),
        });
    }
    if let Some(reason) = &reg.lock
        && !opts.force_locked
    {
        return Err(Error::WorktreeLocked(format!(
            "worktree {name:?} is locked ({}); unlock it (`git worktree unlock`) or pass \
             forceLocked to remove it anyway",
            if reason.trim().is_empty() {
                "no reason given"
            } else {
                reason.trim()
            }
        )));
    }
    let changed = marker::changes(path, mark.as_ref())?;
    if changed.is_empty() {
        return Ok(Verdict::Delete {
            registration: Some(reg.name),
        });
    }
    if !opts.force {
        return Err(Error::WorktreeDirty(format!(
            "worktree {name:?} has {} changed or untracked file(s): {}; commit or stash them, \
             or pass force to move it to the trash ({} h)",
            changed.len(),
            list_some(&changed),
            state.settings.trash_grace.as_secs() / 3600
        )));
    }
    Ok(Verdict::Keep {
        registration: Some(reg.name),
        why: format!(
            "removed with force: {} changed file(s): {}",
            changed.len(),
            list_some(&changed)
        ),
    })
}

/// Stops the worktree's containers (a compose file in it), returns the message.
async fn containers_down(state: &ManagerState, path: &Path) -> String {
    let file = state.settings.compose_file();
    if !path.join(file).is_file() {
        return "no containers".into();
    }
    match containers::detect(state.settings.runtime, &Default::default()).await {
        Ok(Some(engine)) => {
            let project = ComposeProject::for_worktree(path, Path::new(file));
            engine
                .down(
                    &project,
                    false,
                    Some(Duration::from_secs(2)),
                    None,
                    Duration::from_secs(120),
                )
                .await
                .message
        }
        Ok(None) => "no container runtime".into(),
        Err(e) => e.full_message(),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("blocking call panicked: {e}")))?
}

/// Removes worktree `name` (see the module doc). The branch is kept.
pub(crate) async fn remove(
    state: &Arc<ManagerState>,
    name: &str,
    opts: RemoveOptions,
) -> Result<RemoveOutcome> {
    slug::validate_slug(name, name)?;
    let path = state.base.join(name);
    let (s, n, p) = (Arc::clone(state), name.to_string(), path.clone());
    let verdict = blocking(move || check(&s, &n, &p, opts)).await?;
    let containers = if std::fs::symlink_metadata(&path).is_ok() {
        containers_down(state, &path).await
    } else {
        "no containers".to_string()
    };
    let (s, n, p) = (Arc::clone(state), name.to_string(), path.clone());
    let (released, trashed_to, kept) = blocking(move || apply(&s, &n, &p, verdict)).await?;
    Ok(RemoveOutcome {
        success: true,
        name: name.to_string(),
        released_ports: released.into_iter().collect(),
        trashed_to,
        containers,
        kept,
    })
}

type Applied = (Vec<(String, u16)>, Option<PathBuf>, Option<TrashEntry>);

fn apply(state: &ManagerState, name: &str, path: &Path, verdict: Verdict) -> Result<Applied> {
    let repo = git::open(&state.root)?;
    let trash = Trash::new(&state.base, repo.commondir());
    trash.purge_expired_now();
    let released = PortRegistry::for_project(&state.root)?.release(name)?;
    let exists = std::fs::symlink_metadata(path).is_ok();
    let (trashed_to, kept) = match verdict {
        Verdict::Keep { registration, why } if exists => {
            super::install::stop_leftover_installs(path);
            let t = trash.keep(
                name,
                path,
                registration.as_deref(),
                &why,
                state.settings.trash_grace,
            )?;
            (None, Some(t))
        }
        Verdict::Keep { registration, .. } | Verdict::Delete { registration } => {
            super::install::stop_leftover_installs(path);
            let trashed = if exists {
                Some(
                    state
                        .recovery
                        .trash_and_delete(path, &format!("{name}-removed"))?,
                )
            } else {
                None
            };
            if let Some(r) = registration {
                git::prune_registration(&repo, &r)?;
            }
            (trashed, None)
        }
    };
    Ok((released, trashed_to, kept))
}
