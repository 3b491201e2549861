//! Recovery: everything that clears what a creation leaves behind when it fails, is cancelled or
//! is killed (SIGKILL, power loss), so the next creation of the same name starts clean and
//! nothing of anyone else's is touched. One place for: debris of dead creations, staging folders,
//! the trash, the rollback of a failed creation, the undo of a cancelled one, and stopping the
//! installs of dead creations.
//!
//! Must not touch anything outside `<worktree base>/<slug>`, `<worktree base>/.staging`,
//! `<worktree base>/.trash`, the registration `.git/worktrees/<name>` of that folder, the branch a
//! cancelled creation made, and the `<slug>:*` keys of the ports registry. Never deletes a folder
//! it did not make or mark: an orphan folder is moved to the trash, not deleted.
//!
//! # Marks and locks, and who clears them
//! | what | made by | says | cleared by |
//! | --- | --- | --- | --- |
//! | git worktree lock, reason `vibetrees: creating (pid N)` ([`CREATING_REASON`]) | `git.rs` `add_worktree_with` (libgit2 or `git worktree add --lock --reason`) | "being created by N"; removed when ready (`git::unlock_at`) | [`Recovery::clear_debris`] when N is dead (folder to the trash, registration pruned); [`Recovery::roll_back`] for a failure of this process |
//! | an empty lock + libgit2's absolute `commondir` (an older version killed inside `git_worktree_add`) | libgit2 | an unfinished registration (`git::registrations` reports it as creating) | `checkout/register.rs` `register` sweeps them under the registration flock; [`Recovery::clear_debris`] prunes a half-made one at our path |
//! | `refs/heads/<name>.lock` | libgit2, killed while creating the branch | git refuses the branch | `git::ensure_branch`, under the registration flock |
//! | the registration flock `.git/vibetrees-worktree-add.lock` | `checkout::registration_lock` | one branch creation / registration at a time among our processes | the kernel, when the holder exits (flock) |
//! | proper-lockfile's `ports.json.lock` folder | `services::proper_lock` (the Node server takes the same lock) | the ports registry is being written | stale after its timeout (mtime), as proper-lockfile does |
//! | the cache's entry `lock` flock (shared while restoring, exclusive to evict) and `.staging-<key>-<pid>-<n>` | `cache/store.rs`, `cache/populate.rs` | an entry in use / being filled | the kernel (flock); `cache/populate.rs` `clean_abandoned` |
//! | `.<name>.vt-restore-<world>-<pid>-<n>` beside a restore target | `cache/restore.rs` | a restore in progress | `cache/restore.rs` `clean_stale_siblings`, when the pid is of our world and dead |
//! | `VIBETREES_INSTALL_DIR=<folder>` in an install's environment | `install.rs` `run` (the package manager itself dies with us: `PR_SET_PDEATHSIG`) | a process installing into that folder | `install::stop_leftover_installs`, called here |
//! | `.staging/<slug>.<time>-<world>-<pid>` | the creation's `cache-restore` step | node_modules restored beside the checkout | the creation itself; [`Recovery::clear_dead_staging`] when the pid is dead |
//! | `.trash/.delete-<label>-<time>-<world>-<pid>` | [`Recovery::trash_and_delete`] | a folder being deleted in the background | the background job; [`Recovery::clear_dead_deletions`] finishes it when the pid is dead |
//! | `.trash/<slug>-<time>-<world>-<pid>` | [`Recovery::clear_debris`] | an orphan folder moved aside | never: kept for its owner |
//! | `.trash/<slug>.kept-<time>-<world>-<pid>/` + `.git/vibetrees-trash/<same>` | `trash.rs` (`remove` with `force`; [`Recovery::clear_debris`] for edited debris) | a worktree with the user's changes, restorable | `trash.rs` `purge_expired` after `trashGrace` |
//! | `.git/worktrees/<name>/vibetrees-created.json` | `marker.rs` (git-worktree-add, write-env, mcp-discovery, "ready") | ours: creator (pid, boot, pid namespace), files the creation wrote | with the registration |
//! | `.git/vibetrees-registering` | older versions' `checkout::register` (around libgit2's `git_worktree_add`) | the registration a process of ours was writing | the next `register` sweeps that one registration |
//! | `<base>/.pool/.making-<suffix>/` + its `.lock` flock | `pool/spare.rs` | a spare being made | `pool/refill.rs` when the flock is free (its maker died) |
//! | `<slug>/.vibetrees-spare/` (meta, index, `lock` flock) in an unregistered folder | `pool/claim.rs` (a claimed spare) | a claim in progress while the flock is held | [`Recovery::clear_debris`]: deleted when the flock is free, [`Error::Lock`] while held; dropped from a half-made registered one |
//! | `.git/vibetrees-claiming/` | `checkout::register`, `checkout::register_claimed` (`publish`) | a registration being built aside | the next registration, under the registration flock |
//!
//! "Is this pid alive" is [`creator_alive`] for a creator our marker describes, and
//! [`crate::platform::tagged_holder_alive`] for the pid at the end of a staging or deletion name
//! (whose [`unique_suffix`] carries the world tag): a pid of another boot or pid namespace, or
//! of an untagged name, counts as alive; in our world a process we may not signal is alive too. The cache (`cache/`) and the install (`install.rs`) keep their own recovery
//! and are called, not copied.

use super::git::{self, Registration};
use super::install;
use super::jobs::BackgroundJobs;
use super::marker::{self, CreationMarker};
use super::pool::{self, layout::ClaimedFolder};
use super::trash::Trash;
use crate::progress::{ProgressEvent, ProgressSink};
use crate::services::containers::{ComposeProject, Engine};
use crate::services::ports::PortRegistry;
use crate::{Error, Result};
use git2::Repository;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lock reason prefix of a worktree whose creation has not finished.
pub const CREATING_REASON: &str = "vibetrees: creating";

/// Folder (under the worktree base) of worktrees and orphans moved aside.
pub const TRASH_DIR: &str = ".trash";
/// Folder (under the worktree base) where node_modules is restored while the checkout runs.
pub const STAGING_DIR: &str = ".staging";

/// The lock reason of a creation by this process: `vibetrees: creating (pid N)`.
pub fn creating_reason() -> String {
    format!("{CREATING_REASON} (pid {})", std::process::id())
}

/// The pid written in a [`CREATING_REASON`] lock, if any.
pub fn creating_pid(reason: &str) -> Option<u32> {
    let rest = reason.strip_prefix(CREATING_REASON)?;
    let start = rest.find("(pid ")? + 5;
    let end = rest[start..].find(')')? + start;
    rest[start..end].parse().ok()
}

/// `<time ns>-<world>-<pid>`: a suffix no other folder of ours has, whose pid tells whether its
/// maker still runs, and whose world tag ([`crate::platform::world_tag`]: boot and pid
/// namespace) tells where that pid means something (a folder shared with a container or another
/// boot holds pids of other worlds).
pub fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos}-{}-{}",
        crate::platform::this_world_tag(),
        std::process::id()
    )
}

/// True when a name ending in `-<world>-<pid>` ([`unique_suffix`]) was left by another process
/// that is certainly dead: of our world and gone ([`crate::platform::tagged_holder_alive`]). A
/// pid of another world, or of a name without a world tag, is never taken as dead.
pub(crate) fn left_by_dead_process(name: &str) -> bool {
    let mut parts = name.rsplit('-');
    let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
    let tag = parts.next();
    pid.is_some_and(|pid| {
        pid != std::process::id() && !crate::platform::tagged_holder_alive(pid, tag)
    })
}

/// What [`Recovery::clear_debris`] found at a worktree's path.
pub enum Found {
    /// Branch, folder and registration are there: a complete worktree, left unchanged.
    Complete,
    /// Nothing (left) at the path: the creation may start.
    Clear,
}

/// What a creation made, for its rollback or undo: read from its steps' outputs.
#[derive(Default)]
pub struct Made {
    /// The worktree was registered (the `git-worktree-add` step succeeded).
    pub registered: bool,
    /// The branch did not exist before the creation.
    pub created_branch: bool,
    /// The containers it started: the engine and the worktree's compose project.
    pub containers: Option<(Engine, ComposeProject)>,
}

/// The recovery of one manager: its project, its worktree base and where background deletions
/// run. Its blocking methods may run on tokio's blocking threads (deletions are started as jobs
/// of the runtime they run in).
#[derive(Clone)]
pub struct Recovery {
    /// The project root (canonical).
    pub root: PathBuf,
    /// The worktree base (`<root>/.worktrees` by default).
    pub base: PathBuf,
    /// The manager's background jobs (deletions run there, so `wait_background` awaits them).
    pub jobs: Arc<BackgroundJobs>,
    /// Where debris moved to the trash is reported (step `git`).
    pub on_progress: Option<ProgressSink>,
    /// How long the trash keeps what it keeps (`trashGrace`).
    pub trash_grace: Duration,
}

impl Recovery {
    fn emit(&self, name: &str, message: String) {
        if let Some(p) = &self.on_progress {
            p(&ProgressEvent::new(name, "git", message));
        }
    }

    /// Moves `folder` into the trash (`<base>/.trash/<prefix>-<time>-<world>-<pid>`) and returns where.
    pub fn move_to_trash(&self, folder: &Path, prefix: &str) -> Result<PathBuf> {
        let trash = self.base.join(TRASH_DIR);
        std::fs::create_dir_all(&trash)
            .map_err(|e| Error::io_path("create directory", &trash, e))?;
        let dest = trash.join(format!("{prefix}-{}", unique_suffix()));
        std::fs::rename(folder, &dest).map_err(|e| Error::io_path("move to trash", folder, e))?;
        Ok(dest)
    }

    /// Moves `folder` into the trash under a name marked for deletion
    /// (`.trash/.delete-<label>-<time>-<world>-<pid>`) and deletes it in the background. A deletion cut
    /// short (the process killed) is finished by a later creation ([`Self::clear_dead_deletions`]).
    pub fn trash_and_delete(&self, folder: &Path, label: &str) -> Result<PathBuf> {
        let t = self.move_to_trash(folder, &format!(".delete-{label}"))?;
        self.delete_in_background(t.clone());
        Ok(t)
    }

    /// Deletes `folder` in a background job.
    pub fn delete_in_background(&self, folder: PathBuf) {
        self.jobs
            .spawn(format!("delete {}", folder.display()), async move {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&folder)).await;
            });
    }

    /// Deletes, in the background, trash entries marked for deletion by processes now dead.
    /// Orphans moved aside (never marked) are kept.
    pub fn clear_dead_deletions(&self) {
        let Ok(rd) = std::fs::read_dir(self.base.join(TRASH_DIR)) else {
            return;
        };
        for e in rd.flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            if fname.starts_with(".delete-") && left_by_dead_process(&fname) {
                self.delete_in_background(e.path());
            }
        }
    }

    /// Removes (in the background) the staging folders of `name` left by dead processes.
    pub fn clear_dead_staging(&self, name: &str) {
        let Ok(rd) = std::fs::read_dir(self.base.join(STAGING_DIR)) else {
            return;
        };
        for e in rd.flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            if fname
                .strip_prefix(&format!("{name}."))
                .is_some_and(left_by_dead_process)
            {
                self.delete_in_background(e.path());
            }
        }
    }

    /// Clears what earlier attempts left at `path` (worktree `name`) before a creation starts:
    /// - a half-made registration of a dead creation: its installs stopped, its folder to the
    ///   trash (deleted in the background), its registration pruned; of a live one: [`Error::Lock`];
    /// - a registration whose folder is gone: pruned;
    /// - a pool spare a claim renamed here and did not register (our marker in it): deleted when
    ///   its claimer died, [`Error::Lock`] while it lives;
    /// - a folder nobody registered: removed when it holds nothing but a `.git` file (what a kill
    ///   inside libgit2's worktree add leaves), else moved to the trash (never deleted);
    /// - staging folders and unfinished deletions of dead processes.
    ///
    /// A complete worktree (registration, folder, branch `name`) is [`Found::Complete`], untouched;
    /// a folder registered with another branch is [`Error::AlreadyExists`].
    pub fn clear_debris(&self, repo: &Repository, name: &str, path: &Path) -> Result<Found> {
        let mut reg = git::registration_at(repo, path)?;
        if let Some(r) = &reg
            && r.half_made()
        {
            let pid = r.lock.as_deref().and_then(creating_pid);
            if pid == Some(std::process::id()) {
                return Err(Error::Lock(format!(
                    "worktree {name:?} is being created by this process"
                )));
            }
            let gitdir = marker::gitdir_of(repo, &r.name);
            let mark = CreationMarker::read(&gitdir);
            if let Some(pid) = pid
                && creator_alive(pid, mark.as_ref())
            {
                return Err(Error::Lock(format!(
                    "worktree {name:?} is being created by process {pid}"
                )));
            }
            // Debris of a creation killed half-way: what is left of its install is stopped; its
            // folder goes (in the background) when it is byte for byte what the creation wrote,
            // else it is kept in the trash with its registration; the registration is removed.
            install::stop_leftover_installs(path);
            // a claim killed right after registering left the spare's marker: ours, not content
            pool::layout::drop_marker(path);
            let edited = if std::fs::symlink_metadata(path).is_ok() {
                user_content(repo, path, r.branch.as_deref(), mark.as_ref())
            } else {
                Vec::new()
            };
            if !edited.is_empty() {
                let t = Trash::new(&self.base, repo.commondir()).keep(
                    name,
                    path,
                    Some(&r.name),
                    &format!(
                        "debris of a creation that died, edited since: {}",
                        edited
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    self.trash_grace,
                )?;
                self.emit(
                    name,
                    format!(
                        "A creation of {name:?} that died left a folder with changes ({}): \
                         moved to the trash at {} (`vibetrees trash restore {name}`)",
                        edited
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        t.location.display()
                    ),
                );
            } else {
                if std::fs::symlink_metadata(path).is_ok() {
                    self.trash_and_delete(path, &format!("{name}-unfinished"))?;
                }
                git::prune_registration(repo, &r.name)?;
            }
            reg = None;
        }
        let folder_exists = std::fs::symlink_metadata(path).is_ok();
        match (&reg, folder_exists) {
            (Some(r), true) => {
                if !git::branch_exists(repo, name) || r.branch.as_deref() != Some(name) {
                    return Err(Error::AlreadyExists(format!(
                        "worktree folder {} is registered with branch {:?}, not {name:?}",
                        path.display(),
                        r.branch
                    )));
                }
                return Ok(Found::Complete);
            }
            (Some(r), false) => git::prune_registration(repo, &r.name)?, // stale registration
            (None, true) => {
                if let Some(claimed) = pool::layout::claimed_folder(path) {
                    // a pool spare renamed here by a claim that has not registered it
                    if claimed == ClaimedFolder::BeingClaimed {
                        return Err(Error::Lock(format!(
                            "worktree {name:?} is being created by another process (a spare \
                             being claimed)"
                        )));
                    }
                    self.trash_and_delete(path, &format!("{name}-claimed"))?;
                } else if is_unused_registration_folder(path) {
                    // what a creation killed inside libgit2's worktree add leaves: the folder it
                    // made, empty but for a `.git` file; no content of anyone's
                    let _ = std::fs::remove_file(path.join(".git"));
                    std::fs::remove_dir(path)
                        .map_err(|e| Error::io_path("remove empty folder", path, e))?;
                } else {
                    // orphan folder: moved aside, never deleted
                    self.move_to_trash(path, name)?;
                }
            }
            (None, false) => {}
        }
        self.clear_dead_staging(name);
        self.clear_dead_deletions();
        Trash::new(&self.base, repo.commondir()).purge_expired_now();
        Ok(Found::Clear)
    }

    /// Rolls back a failed creation of `name` at `path` (blocking): its staging folder removed,
    /// its ports released, and, when the registration at `path` is half-made and ours (the
    /// `git-worktree-add` step succeeded, or its lock names this process: `git worktree add`
    /// whose hook failed registers then fails), what is left of its install stopped, the folder
    /// deleted (through the trash) and the registration pruned. The branch is kept.
    pub fn roll_back(
        &self,
        name: &str,
        path: &Path,
        staging: &Path,
        registered: bool,
    ) -> Result<()> {
        let _ = std::fs::remove_dir_all(staging);
        let repo = git::open(&self.root)?;
        let ours = git::registration_at(&repo, path)?.filter(|r| {
            r.half_made()
                && (registered
                    || r.lock.as_deref().and_then(creating_pid) == Some(std::process::id()))
        });
        // The name's ports are this creation's only if the worktree is: a creation that lost
        // the name to another process (which registered it) must not release the winner's.
        let someone_elses = ours.is_none() && git::registration_at(&repo, path)?.is_some();
        if !someone_elses && let Ok(reg) = PortRegistry::for_project(&self.root) {
            let _ = reg.release(name);
        }
        if let Some(r) = ours {
            install::stop_leftover_installs(path);
            if std::fs::symlink_metadata(path).is_ok() {
                self.trash_and_delete(path, &format!("{name}-failed"))?;
            }
            git::prune_registration(&repo, &r.name)?;
        }
        Ok(())
    }

    /// Undoes a cancelled creation: its critical containers stopped, then what
    /// [`Self::roll_back`] does, then the branch deleted if the creation made it. The folder's
    /// background deletion is awaited by `wait_background`.
    pub async fn undo_cancelled(
        &self,
        name: &str,
        path: &Path,
        staging: &Path,
        made: Made,
    ) -> Result<()> {
        if let Some((engine, project)) = &made.containers {
            let _ = engine
                .down(
                    project,
                    false,
                    Some(Duration::from_secs(2)),
                    None,
                    Duration::from_secs(120),
                )
                .await;
        }
        let (this, name, path, staging) = (
            self.clone(),
            name.to_string(),
            path.to_path_buf(),
            staging.to_path_buf(),
        );
        tokio::task::spawn_blocking(move || -> Result<()> {
            this.roll_back(&name, &path, &staging, made.registered)?;
            if made.created_branch {
                git::delete_branch(&git::open(&this.root)?, &name)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(format!("undo panicked: {e}")))?
    }

    /// Kills the processes still installing into a worktree whose creation died (its
    /// registration locked `vibetrees: creating (pid N)` with N gone): the scripts a package
    /// manager started outlive it (see [`install::stop_leftover_installs`]). Folders and
    /// registrations stay as they are (`list` shows them half-made; creating or removing the
    /// worktree clears them). Returns how many processes were killed.
    pub fn stop_installs_of_dead_creations(&self) -> usize {
        let Ok(repo) = git::open(&self.root) else {
            return 0;
        };
        let Ok(registrations) = git::registrations(&repo) else {
            return 0;
        };
        registrations
            .iter()
            .filter(|r| created_by_dead_process(&repo, r))
            .map(|r| {
                // the install's mark holds the folder as this manager names it, which may not be
                // the canonical path git records
                let mut n = install::stop_leftover_installs(&r.path);
                if let Some(folder) = r.path.file_name() {
                    let ours = self.base.join(folder);
                    if ours != r.path {
                        n += install::stop_leftover_installs(&ours);
                    }
                }
                n
            })
            .sum()
    }
}

/// What in the folder `path` of a dead creation is not byte for byte what that creation wrote:
/// a file that differs from the branch's tree (a file the checkout did not reach yet is no
/// change, nor one it was writing when killed: a prefix of its blob), a file that is neither in the tree nor one the marker lists unchanged. The `.git`
/// file and `node_modules` (the dependencies the creation restored or installed) are the
/// creation's. Anything unreadable counts as the user's.
pub fn user_content(
    repo: &Repository,
    path: &Path,
    branch: Option<&str>,
    mark: Option<&CreationMarker>,
) -> Vec<String> {
    let tree = branch
        .and_then(|b| repo.find_branch(b, git2::BranchType::Local).ok())
        .and_then(|b| b.get().peel_to_tree().ok());
    let mut out = Vec::new();
    let mut stack = vec![(path.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            out.push(format!("{rel}/ (unreadable)"));
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let sub = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if sub == ".git" || name == "node_modules" {
                continue;
            }
            let Ok(ft) = e.file_type() else {
                out.push(sub);
                continue;
            };
            if ft.is_dir() {
                stack.push((e.path(), sub));
                continue;
            }
            if mark.is_some_and(|m| marker::written_unchanged(m, path, &sub)) {
                continue;
            }
            let in_tree = tree
                .as_ref()
                .and_then(|t| t.get_path(Path::new(&sub)).ok())
                .map(|entry| entry.id());
            let bytes = if ft.is_symlink() {
                std::fs::read_link(e.path())
                    .ok()
                    .map(|t| t.as_os_str().as_encoded_bytes().to_vec())
            } else {
                std::fs::read(e.path()).ok()
            };
            // the blob, or a prefix of it: what a checkout killed while writing it leaves
            let same = match (in_tree, bytes) {
                (Some(id), Some(b)) => {
                    git2::Oid::hash_object(git2::ObjectType::Blob, &b).is_ok_and(|h| h == id)
                        || (!ft.is_symlink()
                            && repo
                                .find_blob(id)
                                .is_ok_and(|blob| blob.content().starts_with(&b)))
                }
                _ => false,
            };
            if !same {
                out.push(sub);
            }
        }
    }
    out.sort();
    out
}

/// True for a git `.lock` file that nobody can be holding: modified before `started` and, where
/// the platform tells ([`crate::platform::file_holders`]), open in no process. Where it cannot
/// be told (not Linux, another user's file): false, never removed.
pub fn stale_lock(lock: &Path, started: std::time::SystemTime) -> bool {
    let older = std::fs::symlink_metadata(lock)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t < started);
    older && crate::platform::file_holders(lock).is_some_and(|h| h.is_empty())
}

/// True unless the creator `pid` of a half-made registration is certainly gone: judged in the
/// world (boot, pid namespace) its marker records when the marker names that pid (another world:
/// alive), else by [`crate::process::alive`].
pub fn creator_alive(pid: u32, mark: Option<&CreationMarker>) -> bool {
    match mark {
        Some(m) if m.pid == pid => m.creator_alive(),
        _ => crate::process::alive(pid),
    }
}

/// True for a half-made registration whose creator (another process) is dead.
fn created_by_dead_process(repo: &Repository, r: &Registration) -> bool {
    let mark = || CreationMarker::read(&marker::gitdir_of(repo, &r.name));
    r.half_made()
        && r.lock
            .as_deref()
            .and_then(creating_pid)
            .is_some_and(|pid| pid != std::process::id() && !creator_alive(pid, mark().as_ref()))
}

/// True if `path` is a real folder holding nothing, or nothing but a `.git` file (not a folder):
/// what a worktree registration leaves before any checkout.
pub(crate) fn is_unused_registration_folder(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    let Ok(rd) = std::fs::read_dir(path) else {
        return false;
    };
    rd.flatten()
        .all(|e| e.file_name() == ".git" && e.file_type().is_ok_and(|t| t.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_writes_its_pid_in_the_lock_reason() {
        // (the reason's format itself: git.rs `creating_lock_reason_names_the_pid`)
        assert_eq!(creating_pid(&creating_reason()), Some(std::process::id()));
    }

    #[test]
    fn only_names_of_dead_processes_are_debris() {
        let tag = crate::platform::this_world_tag();
        assert!(!left_by_dead_process(&format!(
            "x.1-{tag}-{}",
            std::process::id()
        )));
        assert!(!left_by_dead_process("no-pid-here"));
        // pid 1 runs (or cannot be signalled): never debris
        assert!(!left_by_dead_process(&format!("x.1-{tag}-1")));
    }

    #[test]
    fn a_dead_pid_is_debris_only_in_a_name_of_our_world() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let ours = crate::platform::this_world();
        let other = crate::platform::world_tag(&crate::platform::ProcessWorld {
            pid_ns: Some("pid:[4026530000]".into()),
            ..ours.clone()
        });
        let name = |tag: &str| format!("feature.{}-{tag}-{dead}", 1);
        // what unique_suffix writes ends with our world and our pid
        let suffix = unique_suffix();
        assert!(suffix.ends_with(&format!(
            "-{}-{}",
            crate::platform::this_world_tag(),
            std::process::id()
        )));
        assert!(left_by_dead_process(&name(
            crate::platform::this_world_tag()
        )));
        assert!(
            !left_by_dead_process(&name(&other)),
            "another pid namespace"
        );
        let other_boot = crate::platform::world_tag(&crate::platform::ProcessWorld {
            boot_id: Some("0000-another-boot".into()),
            ..ours
        });
        assert!(!left_by_dead_process(&name(&other_boot)), "another boot");
        // a name without a world (an older one): unknown, so not dead
        assert!(!left_by_dead_process(&format!("feature.1-{dead}")));
    }
}
