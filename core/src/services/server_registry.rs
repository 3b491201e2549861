//! The VibeTrees server's port registry object (`scripts/port-registry.mjs`), one implementation
//! the Node, Python and C `PortRegistry` classes wrap.
//!
//! Same constructor, fields, methods and results as the server's object, with two differences
//! that are the point of it:
//! - it never holds a stale view: the map ([`ServerPortRegistry::ports`]),
//!   [`ServerPortRegistry::worktree_ports`] and [`ServerPortRegistry::load`] read the file;
//! - every change is a read-modify-write of `ports.json` under the proper-lockfile lock
//!   ([`PortRegistry::update`]) that touches only the keys it changes, so a server running old
//!   and new code side by side loses no key, and two processes never hand out one port twice.
//!
//! `allocate` terminates when its base port is taken (the server's `allocateAtomic` loops forever
//! there), and "in use" is a bind probe ([`is_port_in_use`], microseconds), not an `lsof` process.
//!
//! Two projects whose last two path components match share one file name (the server's name,
//! kept for compatibility). Each registry folder records the project roots that opened it in
//! `projects` (one per line); opening it for another root returns those roots
//! ([`ServerPortRegistry::shared_with`]) and logs a warning, so the sharing is never silent.

use crate::error::{Error, Result};
use crate::services::ports::{
    PortRegistry, RegistryEntries, ServicePort, env_var_for, home_dir, is_port_in_use,
};
use indexmap::IndexMap;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The server's registry folder name for `project_root`: the path split on `/` and `\`, empty
/// parts dropped, then `<parent>-<child>` from the last two parts (just the part when there is
/// one). Refuses a path with no part (`/`).
pub fn server_dir_name(project_root: &str) -> Result<String> {
    let parts: Vec<&str> = project_root
        .split(['/', '\\'])
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [] => Err(Error::InvalidArgument(format!(
            "project root {project_root:?} has no path component to name its ports registry"
        ))),
        [one] => Ok((*one).to_string()),
        [.., parent, child] => Ok(format!("{parent}-{child}")),
    }
}

/// The server's `PortRegistry` over `~/.vibetrees/<parent>-<child>/ports.json`.
#[derive(Debug, Clone)]
pub struct ServerPortRegistry {
    project_root: String,
    registry_dir: PathBuf,
    inner: PortRegistry,
    shared_with: Vec<String>,
}

/// What [`ServerPortRegistry::sync_from_worktrees`] reads: a worktree's name and folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct WorktreeRef {
    /// The worktree's name (the registry key's prefix).
    pub name: String,
    /// Its folder (holding `.env`).
    pub path: PathBuf,
}

impl ServerPortRegistry {
    /// `new PortRegistry(projectRoot)` with `$HOME` as home: creates the registry folder (as the
    /// server's `load()` does), records `project_root` in it and notes other roots found there.
    pub fn new(project_root: &str) -> Result<Self> {
        Self::new_in(&home_dir()?, project_root)
    }

    /// [`ServerPortRegistry::new`] under the given home folder.
    pub fn new_in(home: &Path, project_root: &str) -> Result<Self> {
        if project_root.contains('\0') {
            return Err(Error::InvalidArgument(
                "project root contains a NUL byte".into(),
            ));
        }
        let registry_dir = home.join(".vibetrees").join(server_dir_name(project_root)?);
        std::fs::create_dir_all(&registry_dir)
            .map_err(|e| Error::io_path("create directory", &registry_dir, e))?;
        let inner = PortRegistry::at(registry_dir.join("ports.json"));
        let shared_with = record_project(&registry_dir, project_root)?;
        if !shared_with.is_empty() {
            tracing::warn!(
                "ports registry {} is shared by project {project_root} and {}: their worktrees \
                 share one port map (the server names it by the last two path components)",
                inner.path().display(),
                shared_with.join(", ")
            );
        }
        Ok(Self {
            project_root: project_root.to_string(),
            registry_dir,
            inner,
            shared_with,
        })
    }

    /// The registry with allocation skipping (or not) ports something listens on.
    pub fn with_listening_check(mut self, on: bool) -> Self {
        self.inner = self.inner.with_listening_check(on);
        self
    }

    /// The project root as given (`projectRoot`).
    pub fn project_root(&self) -> &str {
        &self.project_root
    }

    /// `registryDir`: `~/.vibetrees/<parent>-<child>`.
    pub fn registry_dir(&self) -> &Path {
        &self.registry_dir
    }

    /// `registryFile`: `<registryDir>/ports.json`.
    pub fn registry_file(&self) -> &Path {
        self.inner.path()
    }

    /// Other project roots recorded in this registry's folder when it was opened (empty when the
    /// registry is this project's alone).
    pub fn shared_with(&self) -> &[String] {
        &self.shared_with
    }

    /// The core registry underneath (the one the creations use).
    pub fn registry(&self) -> &PortRegistry {
        &self.inner
    }

    /// `ports` / `load()`: the whole map, read from the file now (empty when there is none). A file
    /// that is not a JSON object is an error ([`Error::Parse`]) and is left untouched.
    pub fn ports(&self) -> Result<RegistryEntries> {
        self.inner.load()
    }

    /// `load()`: the same as [`ServerPortRegistry::ports`].
    pub fn load(&self) -> Result<RegistryEntries> {
        self.inner.load()
    }

    /// `allocate(worktreeName, service, basePort)`: an existing key keeps its port, else the next
    /// port up from `base_port` that is neither in the registry nor listening, written under the
    /// lock.
    pub fn allocate(&self, worktree: &str, service: &str, base_port: u16) -> Result<u16> {
        let services = [(service.to_string(), base_port)];
        let map = self.allocate_many(worktree, &services)?;
        map.get(service)
            .copied()
            .ok_or_else(|| Error::Internal(format!("no port allocated for {worktree}:{service}")))
    }

    /// `allocateAtomic(worktreeName, { service: basePort })`: [`ServerPortRegistry::allocate`] for
    /// each service in order, under one lock; returns `{ service: port }`.
    pub fn allocate_many(
        &self,
        worktree: &str,
        services: &[(String, u16)],
    ) -> Result<IndexMap<String, u16>> {
        for (service, base) in services {
            check_service(service, *base)?;
        }
        let specs: Vec<ServicePort> = services
            .iter()
            .map(|(name, base)| ServicePort {
                name: name.clone(),
                env_var: env_var_for(name),
                base_port: *base,
            })
            .collect();
        Ok(self.inner.allocate(worktree, &specs)?.to_map())
    }

    /// `release(worktreeName)` / `releaseAtomic`: removes every `<worktreeName>:*` key under the
    /// lock; returns how many were removed.
    pub fn release(&self, worktree: &str) -> Result<usize> {
        Ok(self.inner.release(worktree)?.len())
    }

    /// `getWorktreePorts(worktreeName)`: `{ service: port }` read from the file now. As the
    /// server's, the service is the key's part between the first and the second `:`.
    pub fn worktree_ports(&self, worktree: &str) -> Result<IndexMap<String, serde_json::Value>> {
        let prefix = format!("{worktree}:");
        Ok(self
            .load()?
            .into_iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&prefix)?;
                let service = rest.split(':').next().unwrap_or(rest);
                Some((service.to_string(), v))
            })
            .collect())
    }

    /// `syncFromWorktrees(worktrees)`: reads each `<path>/.env` line `^([A-Z_]+)_PORT=(\d+)$`
    /// (service: the prefix lower-cased, `_` as `-`), adds the keys that are missing under the
    /// lock and returns how many it added. An unreadable `.env` is skipped.
    pub fn sync_from_worktrees(&self, worktrees: &[WorktreeRef]) -> Result<usize> {
        let mut found: Vec<(String, u64)> = Vec::new();
        for wt in worktrees {
            let Ok(text) = std::fs::read_to_string(wt.path.join(".env")) else {
                continue;
            };
            for line in text.split('\n') {
                if let Some((service, port)) = parse_port_line(line) {
                    found.push((format!("{}:{service}", wt.name), port));
                }
            }
        }
        if found.is_empty() {
            return Ok(0);
        }
        self.inner.update(|entries| {
            let mut added = 0;
            for (key, port) in found {
                if entries.get(&key).is_some_and(truthy) {
                    continue;
                }
                entries.insert(key, serde_json::Value::from(port));
                added += 1;
            }
            Ok((added, added > 0))
        })
    }

    /// `save()`: applies what changed between `base` (a map read earlier) and `now` (that map as
    /// the host edited it) to the file under the lock: keys added or changed in `now` are set,
    /// keys of `base` missing from `now` are removed, every other key is left as the file has it.
    /// Returns how many keys it set or removed.
    pub fn save_changes(&self, base: &RegistryEntries, now: &RegistryEntries) -> Result<usize> {
        let set: Vec<(String, serde_json::Value)> = now
            .iter()
            .filter(|(k, v)| base.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let removed: Vec<String> = base
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        if set.is_empty() && removed.is_empty() {
            return Ok(0);
        }
        self.inner.update(|entries| {
            let n = set.len() + removed.len();
            for k in &removed {
                entries.shift_remove(k);
            }
            for (k, v) in set {
                entries.insert(k, v);
            }
            Ok((n, true))
        })
    }
}

/// `isPortInUse(port)`: true when something listens on TCP `port` here (a bind probe, no process).
pub fn port_in_use(port: u16) -> bool {
    is_port_in_use(port)
}

fn check_service(service: &str, base: u16) -> Result<()> {
    if service.is_empty() {
        return Err(Error::InvalidArgument(
            "service name must be non-empty".into(),
        ));
    }
    if base == 0 {
        return Err(Error::InvalidArgument(format!(
            "base port of {service} must be 1..65535, got 0"
        )));
    }
    Ok(())
}

/// The server's `if (this.ports[key])`: a value that is set and not 0 / "" / false / null.
fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// `^([A-Z_]+)_PORT=(\d+)$` -> (service, port): `MINIO_CONSOLE_PORT=9001` -> (`minio-console`, 9001).
pub fn parse_port_line(line: &str) -> Option<(String, u64)> {
    let (name, digits) = line.split_once('=')?;
    let prefix = name.strip_suffix("_PORT")?;
    if prefix.is_empty()
        || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        || digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let port = digits.parse::<u64>().ok()?;
    Some((prefix.to_ascii_lowercase().replace('_', "-"), port))
}

/// Appends `root` to `<dir>/projects` unless listed; returns the other roots listed there.
fn record_project(dir: &Path, root: &str) -> Result<Vec<String>> {
    let file = dir.join("projects");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io_path("read", &file, e)),
    };
    let key = canonical_root(root);
    let listed: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    if !listed.contains(&key.as_str()) {
        // One short O_APPEND write: concurrent openers each add their whole line.
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(|e| Error::io_path("open", &file, e))?;
        f.write_all(format!("{key}\n").as_bytes())
            .map_err(|e| Error::io_path("write", &file, e))?;
    }
    let mut others: Vec<String> = listed
        .into_iter()
        .filter(|l| *l != key)
        .map(str::to_string)
        .collect();
    others.dedup();
    Ok(others)
}

/// The root's real path when it exists (so `/a/b` and a symlink to it are one project), else as given.
fn canonical_root(root: &str) -> String {
    std::fs::canonicalize(root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| root.to_string())
        .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_like_the_server() {
        assert_eq!(server_dir_name("/home/me/code/shop").unwrap(), "code-shop");
        assert_eq!(server_dir_name("/home/me/code/shop/").unwrap(), "code-shop");
        assert_eq!(server_dir_name("C:\\work\\shop").unwrap(), "work-shop");
        assert_eq!(server_dir_name("/srv").unwrap(), "srv");
        assert_eq!(server_dir_name("/").unwrap_err().code(), "INVALID_ARGUMENT");
    }

    #[test]
    fn env_lines_like_the_server() {
        assert_eq!(
            parse_port_line("MINIO_CONSOLE_PORT=9001"),
            Some(("minio-console".into(), 9001))
        );
        assert_eq!(parse_port_line("API_PORT=3000"), Some(("api".into(), 3000)));
        for bad in [
            "api_PORT=1",
            "_PORT=1",
            "PORT=1",
            "API_PORT=",
            "API_PORT=3000\r",
            "API_PORT= 3000",
            "API_PORT=3x",
            "COMPOSE_PROJECT_NAME=vibe_x",
        ] {
            assert_eq!(parse_port_line(bad), None, "{bad}");
        }
    }
}
