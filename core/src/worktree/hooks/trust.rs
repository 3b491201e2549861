//! Approvals of repository hooks: `~/.vibetrees/hooks-approved.json`, a JSON object keyed by
//! project (the canonical path of its root), each an object mapping the BLAKE3 hash of an
//! approved command's exact text to that text. A changed command has another hash: it must be
//! approved again. Written whole to a temporary file and renamed over the old one.

use super::Hook;
use crate::worktree::history::vibetrees_home;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `~/.vibetrees/hooks-approved.json`.
pub fn approvals_path() -> PathBuf {
    vibetrees_home().join("hooks-approved.json")
}

/// The approvals file, read.
#[derive(Debug, Default)]
pub struct Approvals {
    path: PathBuf,
    projects: BTreeMap<String, BTreeMap<String, String>>,
}

/// The key of a project: its root's canonical path (the path as given when that fails).
fn project_key(root: &Path) -> String {
    std::fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

impl Approvals {
    /// Reads the approvals at `path` (none when the file is absent). A malformed file is
    /// [`Error::Parse`] naming it: it is never silently replaced.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let projects = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(Error::io_path("read", &path, e)),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
                what: path.display().to_string(),
                message: e.to_string(),
            })?,
        };
        Ok(Self { path, projects })
    }

    /// Reads `~/.vibetrees/hooks-approved.json`.
    pub fn load_default() -> Result<Self> {
        Self::load(approvals_path())
    }

    /// Whether `hook`'s exact command is approved for the project at `root`.
    pub fn is_approved(&self, root: &Path, hook: &Hook) -> bool {
        self.projects
            .get(&project_key(root))
            .is_some_and(|m| m.contains_key(&hook.command_hash()))
    }

    /// Approves `hook`'s command for the project at `root` (not saved yet).
    pub fn approve(&mut self, root: &Path, hook: &Hook) {
        self.projects
            .entry(project_key(root))
            .or_default()
            .insert(hook.command_hash(), hook.command.clone());
    }

    /// Withdraws the approval of `hook`'s command; true if it was approved.
    pub fn revoke(&mut self, root: &Path, hook: &Hook) -> bool {
        let key = project_key(root);
        let Some(m) = self.projects.get_mut(&key) else {
            return false;
        };
        let was = m.remove(&hook.command_hash()).is_some();
        if m.is_empty() {
            self.projects.remove(&key);
        }
        was
    }

    /// Withdraws every approval of the project; how many there were.
    pub fn revoke_all(&mut self, root: &Path) -> usize {
        self.projects
            .remove(&project_key(root))
            .map_or(0, |m| m.len())
    }

    /// Writes the file (its folder made if needed), replacing the old one atomically.
    pub fn save(&self) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io_path("create folder", dir, e))?;
        }
        let tmp = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        let text = serde_json::to_string_pretty(&self.projects)?;
        std::fs::write(&tmp, text).map_err(|e| Error::io_path("write", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io_path("replace", &self.path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worktree::hooks::{DEFAULT_HOOK_TIMEOUT, HookPhase, HookSource};

    fn hook(cmd: &str) -> Hook {
        Hook {
            name: "h".into(),
            command: cmd.into(),
            phase: HookPhase::PostCreate,
            source: HookSource::VibetreesJson,
            optional: false,
            after: None,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }

    #[test]
    fn approval_is_of_the_exact_text_per_project_and_survives_a_reload() {
        let d = tempfile::tempdir().unwrap();
        let (p1, p2) = (d.path().join("p1"), d.path().join("p2"));
        std::fs::create_dir_all(&p1).unwrap();
        std::fs::create_dir_all(&p2).unwrap();
        let file = d.path().join("home/.vibetrees/hooks-approved.json");
        let mut a = Approvals::load(&file).unwrap();
        a.approve(&p1, &hook("make gen"));
        a.save().unwrap();
        let a = Approvals::load(&file).unwrap();
        assert!(a.is_approved(&p1, &hook("make gen")));
        assert!(!a.is_approved(&p1, &hook("make gen ")));
        assert!(!a.is_approved(&p2, &hook("make gen")));
        let mut a = a;
        assert!(a.revoke(&p1, &hook("make gen")));
        assert!(!a.is_approved(&p1, &hook("make gen")));
        std::fs::write(&file, "not json").unwrap();
        assert_eq!(Approvals::load(&file).unwrap_err().code(), "PARSE");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "not json");
    }
}
