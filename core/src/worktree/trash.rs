//! The trash: removed worktrees that held changes of their user (a `force` removal, the edited
//! debris of a creation that died), kept for a grace period (`trashGrace`, default 24 h) before
//! they are deleted, and restorable until then (`vibetrees trash list | restore <name>`).
//!
//! An entry is a folder `<base>/.trash/<name>.kept-<time>-<world>-<pid>/` holding `trash.json` (what it
//! is, where it was, when it expires) and `tree/` (the worktree's folder, moved by a rename: the
//! trash is under the worktree base, so on the same filesystem). The registration
//! (`.git/worktrees/<reg>`, with its index: staged changes survive) is moved beside the other
//! registrations, to `<common dir>/vibetrees-trash/<entry>`, so a restore brings back a working
//! worktree, not only its files.
//!
//! Owns: `<base>/.trash/*.kept-*` and `<common dir>/vibetrees-trash/`. Must not touch the other
//! entries of `.trash` (`recovery.rs`: deletions in progress, orphans kept forever).

use super::recovery::{TRASH_DIR, unique_suffix};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The description file of an entry.
const ENTRY_FILE: &str = "trash.json";
/// The entry's copy of the worktree folder.
const TREE: &str = "tree";
/// Where registrations of trashed worktrees wait, in the repository's common dir.
const SAVED_REGISTRATIONS: &str = "vibetrees-trash";

/// One kept worktree. JSON, camelCase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrashEntry {
    /// The worktree's name (its slug).
    pub name: String,
    /// Where it was (and goes back to on restore).
    pub original_path: PathBuf,
    /// Its registration's name, when it was registered (saved with the entry).
    #[serde(default)]
    pub registration: Option<String>,
    /// Why it is kept (e.g. "removed with force: 2 changed files").
    pub reason: String,
    /// When it was trashed (ms since the epoch).
    pub trashed_at_ms: u64,
    /// When it may be deleted (ms since the epoch).
    pub expires_at_ms: u64,
    /// The entry's folder (not stored: where it was found).
    #[serde(skip_deserializing, default)]
    pub location: PathBuf,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io(op: &str, p: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let (op, p) = (op.to_string(), p.to_path_buf());
    move |e| Error::io_path(&op, p, e)
}

/// The trash of one worktree base, for the repository whose common dir is `common`.
#[derive(Debug, Clone)]
pub struct Trash {
    /// `<base>/.trash`.
    pub dir: PathBuf,
    /// The repository's common dir (`<root>/.git`).
    pub common: PathBuf,
}

impl Trash {
    /// The trash of worktree base `base` for the repository at common dir `common`.
    pub fn new(base: &Path, common: &Path) -> Self {
        Self {
            dir: base.join(TRASH_DIR),
            common: common.to_path_buf(),
        }
    }

    /// Moves the worktree folder `folder` (and its registration `registration`, if any) into the
    /// trash for `grace`. The folder moves by rename (nothing is copied or deleted).
    pub fn keep(
        &self,
        name: &str,
        folder: &Path,
        registration: Option<&str>,
        reason: &str,
        grace: Duration,
    ) -> Result<TrashEntry> {
        std::fs::create_dir_all(&self.dir).map_err(io("create directory", &self.dir))?;
        let id = format!("{name}.kept-{}", unique_suffix());
        let location = self.dir.join(&id);
        std::fs::create_dir(&location).map_err(io("create directory", &location))?;
        let now = now_ms();
        let entry = TrashEntry {
            name: name.to_string(),
            original_path: folder.to_path_buf(),
            registration: registration.map(str::to_string),
            reason: reason.to_string(),
            trashed_at_ms: now,
            expires_at_ms: now.saturating_add(grace.as_millis() as u64),
            location: location.clone(),
        };
        let file = location.join(ENTRY_FILE);
        std::fs::write(&file, serde_json::to_vec_pretty(&entry)?).map_err(io("write", &file))?;
        let tree = location.join(TREE);
        if let Err(e) = std::fs::rename(folder, &tree) {
            let _ = std::fs::remove_dir_all(&location); // only what was just made: trash.json
            return Err(Error::io_path("move to trash", folder, e));
        }
        if let Some(reg) = registration {
            let saved = self.common.join(SAVED_REGISTRATIONS);
            std::fs::create_dir_all(&saved).map_err(io("create directory", &saved))?;
            let from = self.common.join("worktrees").join(reg);
            std::fs::rename(&from, saved.join(&id)).map_err(io("move to trash", &from))?;
        }
        Ok(entry)
    }

    /// Every kept entry, oldest first.
    pub fn list(&self) -> Vec<TrashEntry> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<TrashEntry> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".kept-"))
            .filter_map(|e| {
                let text = std::fs::read(e.path().join(ENTRY_FILE)).ok()?;
                let mut t: TrashEntry = serde_json::from_slice(&text).ok()?;
                t.location = e.path();
                Some(t)
            })
            .collect();
        out.sort_by_key(|t| t.trashed_at_ms);
        out
    }

    fn saved_registration(&self, t: &TrashEntry) -> Option<PathBuf> {
        let id = t.location.file_name()?;
        Some(self.common.join(SAVED_REGISTRATIONS).join(id))
    }

    /// Brings back the newest entry of `name`: its folder to where it was, its registration to
    /// `.git/worktrees`. Refused (nothing moved) when that folder or registration name is taken
    /// again, or its branch is checked out in another worktree now.
    pub fn restore(&self, repo: &git2::Repository, name: &str) -> Result<TrashEntry> {
        let Some(t) = self.list().into_iter().rev().find(|t| t.name == name) else {
            return Err(Error::NotFound(format!("{name:?} in the trash")));
        };
        if std::fs::symlink_metadata(&t.original_path).is_ok() {
            return Err(Error::AlreadyExists(format!(
                "{} exists again: move it away to restore {name:?} from the trash",
                t.original_path.display()
            )));
        }
        let saved = t
            .registration
            .as_ref()
            .and_then(|_| self.saved_registration(&t))
            .filter(|p| p.exists());
        if let (Some(reg), Some(saved)) = (&t.registration, &saved) {
            if self.common.join("worktrees").join(reg).exists() {
                return Err(Error::AlreadyExists(format!(
                    "registration {reg:?} is taken again: cannot restore {name:?}"
                )));
            }
            let head = std::fs::read_to_string(saved.join("HEAD")).unwrap_or_default();
            if let Some(branch) = head.trim().strip_prefix("ref: refs/heads/")
                && super::git::registrations(repo)?
                    .iter()
                    .any(|r| r.branch.as_deref() == Some(branch))
            {
                return Err(Error::AlreadyExists(format!(
                    "branch {branch:?} is checked out in another worktree: cannot restore {name:?}"
                )));
            }
        }
        if let Some(parent) = t.original_path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        }
        let tree = t.location.join(TREE);
        std::fs::rename(&tree, &t.original_path).map_err(io("restore", &tree))?;
        if let (Some(reg), Some(saved)) = (&t.registration, &saved) {
            let to = self.common.join("worktrees").join(reg);
            std::fs::rename(saved, &to).map_err(io("restore", saved))?;
        }
        std::fs::remove_dir_all(&t.location).map_err(io("remove", &t.location))?;
        Ok(t)
    }

    /// Deletes the entries whose grace period ended by `now_ms` (ms since the epoch): their
    /// folder and saved registration. Returns what was deleted.
    pub fn purge_expired(&self, now_ms: u64) -> Vec<TrashEntry> {
        let mut gone = Vec::new();
        for t in self.list() {
            if t.expires_at_ms > now_ms {
                continue;
            }
            if let Some(saved) = self.saved_registration(&t) {
                let _ = std::fs::remove_dir_all(saved);
            }
            if std::fs::remove_dir_all(&t.location).is_ok() {
                gone.push(t);
            }
        }
        gone
    }

    /// [`Self::purge_expired`] as of now.
    pub fn purge_expired_now(&self) -> Vec<TrashEntry> {
        self.purge_expired(now_ms())
    }
}
