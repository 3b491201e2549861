//! The ports registry shared with the VibeTrees Node server: `~/.vibetrees/<parent>-<child>/ports.json`.
//!
//! The file is a JSON object mapping `"<worktree>:<service>"` to a port, written with 2-space
//! indentation (as `JSON.stringify(obj, null, 2)`), keys kept in their order. Every read-modify-write
//! holds the registry's [`FileLock`] (the same lock directory the Node server takes with
//! proper-lockfile), and writes are atomic (a temp file renamed over the registry).
//!
//! Allocation: an existing key keeps its port; a new one starts at the service's base port and goes
//! up while the port is in the registry or something listens on it ([`is_port_in_use`]: a bind
//! probe through [`crate::platform`], no `lsof` spawned).

use crate::error::{Error, Result};
use crate::services::proper_lock::{FileLock, LockOptions};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A port a worktree needs: the registry's service key, the `.env` variable naming it, its base port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Service key in the registry and in `.env` order: `postgres`, `temporal-ui`, `web-port2`.
    pub name: String,
    /// The `.env` variable that carries the port, e.g. `POSTGRES_PORT`.
    pub env_var: String,
    /// Where the search for a free port starts.
    pub base_port: u16,
}

impl ServicePort {
    /// A port with the contract's env var and base port for `name` (see [`env_var_for`], [`base_port_for`]).
    pub fn for_service(name: &str) -> Self {
        Self {
            name: name.to_string(),
            env_var: env_var_for(name),
            base_port: base_port_for(name),
        }
    }
}

/// The contract's table: (service, base port, env var).
const KNOWN: &[(&str, u16, &str)] = &[
    ("postgres", 5432, "POSTGRES_PORT"),
    ("api", 3000, "API_PORT"),
    ("api-gateway", 3000, "API_PORT"),
    ("console", 5173, "CONSOLE_PORT"),
    ("temporal", 7233, "TEMPORAL_PORT"),
    ("temporal-ui", 8233, "TEMPORAL_UI_PORT"),
    ("minio", 9000, "MINIO_PORT"),
    ("minio-console", 9001, "MINIO_CONSOLE_PORT"),
    ("mcp-server", 3337, "MCP_PORT"),
];

/// Base port of any service not in the contract's table.
pub const DEFAULT_BASE_PORT: u16 = 3000;

/// The services allocated when a project has no compose file, in this order.
pub const DEFAULT_SERVICES: &[&str] = &[
    "postgres",
    "api",
    "console",
    "temporal",
    "temporal-ui",
    "minio",
    "minio-console",
];

/// The base port of `service` per the contract (`postgres` 5432, ... ; others 3000).
pub fn base_port_for(service: &str) -> u16 {
    KNOWN
        .iter()
        .find(|(s, _, _)| *s == service)
        .map(|(_, p, _)| *p)
        .unwrap_or(DEFAULT_BASE_PORT)
}

/// The `.env` variable of `service` per the contract: the table's name, else the name upper-cased
/// with `-` as `_` plus `_PORT` (`my-svc` -> `MY_SVC_PORT`).
pub fn env_var_for(service: &str) -> String {
    if let Some((_, _, v)) = KNOWN.iter().find(|(s, _, _)| *s == service) {
        return (*v).to_string();
    }
    let mut s: String = service
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    s.push_str("_PORT");
    s
}

/// The default services' ports (no compose file): postgres, api, console, temporal, temporal-ui,
/// minio, minio-console with the contract's base ports and env vars.
pub fn default_service_ports() -> Vec<ServicePort> {
    DEFAULT_SERVICES
        .iter()
        .map(|s| ServicePort::for_service(s))
        .collect()
}

/// One allocated port of a worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocatedPort {
    /// Service key (`postgres`, `temporal-ui`).
    pub service: String,
    /// Its `.env` variable.
    pub env_var: String,
    /// The port.
    pub port: u16,
    /// True when the registry already held this key (the port was kept, not searched).
    pub existing: bool,
}

/// The ports of one worktree, in the order asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedPorts(pub Vec<AllocatedPort>);

impl AllocatedPorts {
    /// `service -> port`, in order: the contract's `worktree.ports` object.
    pub fn to_map(&self) -> IndexMap<String, u16> {
        self.0.iter().map(|p| (p.service.clone(), p.port)).collect()
    }

    /// The port of `service`, if allocated.
    pub fn get(&self, service: &str) -> Option<u16> {
        self.0.iter().find(|p| p.service == service).map(|p| p.port)
    }

    /// `(env var, port)` pairs for `.env`, in order.
    pub fn env_pairs(&self) -> Vec<(String, u16)> {
        self.0.iter().map(|p| (p.env_var.clone(), p.port)).collect()
    }
}

/// The registry's content in file order: key -> value (ports are numbers; anything else that a
/// hand edit put there is kept as is when the file is rewritten).
pub type RegistryEntries = IndexMap<String, serde_json::Value>;

/// The ports registry of one project.
#[derive(Debug, Clone)]
pub struct PortRegistry {
    path: PathBuf,
    lock: LockOptions,
    probe_listening: bool,
}

/// `<parent>-<child>`: the last two components of `project_root` (as the Node server names it;
/// just the component when there is one: [`crate::services::server_registry::server_dir_name`]).
pub fn registry_dir_name(project_root: &Path) -> String {
    crate::services::server_registry::server_dir_name(&project_root.to_string_lossy())
        .unwrap_or_else(|_| "-".into())
}

/// `$HOME`, or a clear error when it is not set.
pub fn home_dir() -> Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => Err(Error::InvalidArgument(
            "HOME is not set: cannot locate ~/.vibetrees".into(),
        )),
    }
}

impl PortRegistry {
    /// The registry of `project_root` under `$HOME`: `~/.vibetrees/<parent>-<child>/ports.json`.
    pub fn for_project(project_root: &Path) -> Result<Self> {
        Ok(Self::for_project_in(&home_dir()?, project_root))
    }

    /// The registry of `project_root` under the given home folder.
    pub fn for_project_in(home: &Path, project_root: &Path) -> Self {
        Self::at(
            home.join(".vibetrees")
                .join(registry_dir_name(project_root))
                .join("ports.json"),
        )
    }

    /// A registry at an explicit file path.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: LockOptions::default(),
            probe_listening: true,
        }
    }

    /// Replaces the lock options (timeout, stale age).
    pub fn with_lock_options(mut self, lock: LockOptions) -> Self {
        self.lock = lock;
        self
    }

    /// Whether allocation skips ports something listens on (default true).
    pub fn with_listening_check(mut self, on: bool) -> Self {
        self.probe_listening = on;
        self
    }

    /// The registry file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the registry without locking (an empty map when the file does not exist).
    pub fn load(&self) -> Result<RegistryEntries> {
        read_entries(&self.path)
    }

    /// Runs `f` on the entries under the lock and writes them back (atomically) when it returns
    /// `true`.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut RegistryEntries) -> Result<(T, bool)>,
    ) -> Result<T> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io_path("create directory", dir, e))?;
        // proper-lockfile resolves the real path of the file it locks, so the Node server needs the
        // file to exist: create it as `{}` if absent (O_EXCL: an existing registry is untouched).
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
        {
            Ok(mut f) => std::io::Write::write_all(&mut f, b"{}")
                .map_err(|e| Error::io_path("write", &self.path, e))?,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io_path("create", &self.path, e)),
        }
        let lock = FileLock::acquire(&self.path, &self.lock)?;
        let mut entries = read_entries(&self.path)?;
        let (out, changed) = f(&mut entries)?;
        if lock.is_compromised() {
            // Someone judged our lock stale and took it: do not write over what they may write.
            return Err(Error::Lock(format!(
                "{} was taken over by another process while held; nothing written",
                lock.lock_path().display()
            )));
        }
        if changed {
            write_entries(&self.path, &entries)?;
        }
        lock.release()?;
        Ok(out)
    }

    /// Allocates the ports of `worktree` for `services`, in order, under the lock.
    ///
    /// An existing `"<worktree>:<service>"` key keeps its port; a new one gets the first port from
    /// its base port up that is neither in the registry nor in use on this machine.
    pub fn allocate(&self, worktree: &str, services: &[ServicePort]) -> Result<AllocatedPorts> {
        if worktree.is_empty() || worktree.contains(':') {
            return Err(Error::InvalidArgument(format!(
                "worktree name for the ports registry must be non-empty and without ':': {worktree:?}"
            )));
        }
        // Every key there already: nothing to write, so no lock (writes are atomic renames, a
        // read sees a whole file).
        if let Ok(entries) = self.load() {
            let existing: Option<Vec<AllocatedPort>> = services
                .iter()
                .map(|svc| {
                    let key = format!("{worktree}:{}", svc.name);
                    let port = entries.get(&key).and_then(as_port).filter(|p| *p != 0)?;
                    Some(AllocatedPort {
                        service: svc.name.clone(),
                        env_var: svc.env_var.clone(),
                        port,
                        existing: true,
                    })
                })
                .collect();
            if let Some(ports) = existing {
                return Ok(AllocatedPorts(ports));
            }
        }
        let probe = self.probe_listening;
        self.update(|entries| {
            let mut used: HashSet<u16> = entries.values().filter_map(as_port).collect();
            let mut out = Vec::with_capacity(services.len());
            let mut changed = false;
            for svc in services {
                let key = format!("{worktree}:{}", svc.name);
                // as the server's `if (this.ports[key])`: a port of 0 is no port
                if let Some(port) = entries.get(&key).and_then(as_port).filter(|p| *p != 0) {
                    out.push(AllocatedPort {
                        service: svc.name.clone(),
                        env_var: svc.env_var.clone(),
                        port,
                        existing: true,
                    });
                    continue;
                }
                let mut port = svc.base_port;
                loop {
                    let taken = used.contains(&port) || (probe && is_port_in_use(port));
                    if !taken {
                        break;
                    }
                    port = port.checked_add(1).ok_or_else(|| {
                        Error::Internal(format!("no free port from {} up for {key}", svc.base_port))
                    })?;
                }
                used.insert(port);
                entries.insert(key, serde_json::Value::from(port));
                changed = true;
                out.push(AllocatedPort {
                    service: svc.name.clone(),
                    env_var: svc.env_var.clone(),
                    port,
                    existing: false,
                });
            }
            Ok((AllocatedPorts(out), changed))
        })
    }

    /// Removes every `"<worktree>:*"` key; returns the removed `(service, port)` pairs.
    pub fn release(&self, worktree: &str) -> Result<Vec<(String, u16)>> {
        let prefix = format!("{worktree}:");
        self.update(|entries| {
            let mut removed = Vec::new();
            entries.retain(|k, v| match k.strip_prefix(&prefix) {
                Some(service) => {
                    removed.push((service.to_string(), as_port(v).unwrap_or(0)));
                    false
                }
                None => true,
            });
            let changed = !removed.is_empty();
            Ok((removed, changed))
        })
    }

    /// The ports registered for `worktree` (service -> port), read without locking.
    pub fn worktree_ports(&self, worktree: &str) -> Result<IndexMap<String, u16>> {
        let prefix = format!("{worktree}:");
        Ok(self
            .load()?
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), as_port(v)?)))
            .collect())
    }
}

fn as_port(v: &serde_json::Value) -> Option<u16> {
    v.as_u64().and_then(|n| u16::try_from(n).ok())
}

fn read_entries(path: &Path) -> Result<RegistryEntries> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(IndexMap::new()),
        Err(e) => return Err(Error::io_path("read ports registry", path, e)),
    };
    if text.trim().is_empty() {
        return Ok(IndexMap::new());
    }
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        what: path.display().to_string(),
        message: format!("{e} (the ports registry must be a JSON object; left untouched)"),
    })
}

/// `JSON.stringify(entries, null, 2)`.
pub fn render_registry(entries: &RegistryEntries) -> String {
    serde_json::to_string_pretty(entries).unwrap_or_else(|_| "{}".into())
}

fn write_entries(path: &Path, entries: &RegistryEntries) -> Result<()> {
    write_atomic(path, render_registry(entries).as_bytes())
}

/// Writes `bytes` to `path` through a temp file in the same folder renamed over it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".vibetrees-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io_path("create temp file in", dir, e))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .map_err(|e| Error::io_path("write", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io_path("rename temp file over", path, e.error))?;
    Ok(())
}

/// True when something listens on (or holds) TCP `port` on this machine: binding it on 127.0.0.1,
/// 0.0.0.0 or `[::]` is refused with "address in use" ([`crate::platform::port_in_use`]: the
/// probe each platform needs; macOS must not use `SO_REUSEADDR`). No process is spawned.
pub fn is_port_in_use(port: u16) -> bool {
    crate::platform::port_in_use(port)
}

/// The TCP ports in LISTEN state in this network namespace, from `/proc/net/tcp` and
/// `/proc/net/tcp6` on Linux (empty where the OS lists none without a process, e.g. macOS).
///
/// A diagnostic: allocation uses [`is_port_in_use`] alone, which sees every listener this table
/// lists (a wildcard bind conflicts with a listener on any address) and measured ~250x faster
/// here (reading these files took ~20 ms on this sandboxed kernel, a bind probe ~75 µs).
pub fn listening_ports() -> HashSet<u16> {
    crate::platform::listening_ports().unwrap_or_default()
}

/// Listening ports in the text of a `/proc/net/tcp{,6}` table (state `0A`).
pub fn parse_proc_net_tcp(text: &str) -> Vec<u16> {
    crate::platform::formats::proc_net_tcp_listeners(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_fallback_names() {
        assert_eq!(base_port_for("postgres"), 5432);
        assert_eq!(env_var_for("api-gateway"), "API_PORT");
        assert_eq!(env_var_for("temporal-ui"), "TEMPORAL_UI_PORT");
        assert_eq!(env_var_for("my-worker"), "MY_WORKER_PORT");
        assert_eq!(base_port_for("my-worker"), 3000);
        assert_eq!(registry_dir_name(Path::new("/home/me/proj")), "me-proj");
    }

    #[test]
    fn proc_net_tcp_listeners() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:A0B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(parse_proc_net_tcp(t), vec![8080]);
    }
}
