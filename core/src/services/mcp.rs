//! MCP server discovery and the worktree's `.claude/settings.json`.
//!
//! Sources (same id: local beats project beats global):
//! - **local**: each folder `<root>/mcp-servers/<id>` with `index.js`, `server.js`, `main.js`,
//!   `index.mjs` or `server.mjs` (first found), else its package.json `main`:
//!   `{ command: "node", args: ["<absolute path of that file>"] }`;
//! - **project**: each `@modelcontextprotocol/server-<id>` in the project's package.json
//!   `dependencies` or `devDependencies`: `{ command: "npx", args: ["-y", "<package>"] }`;
//! - **global**: each `@modelcontextprotocol/server-<id>` installed in the global npm folder,
//!   read directly (no `npm list -g`): `{ command: "<package>", args: [] }`.
//!
//! The `postgres` server gets `env.DATABASE_URL = postgresql://localhost:<port>/vibe` when a
//! postgres port is allocated; the host may add entries of its own. The result is merged into
//! `<worktree>/.claude/settings.json` under `mcpServers`, keeping every other key.

use crate::error::{Error, Result};
use crate::platform::ConfinedDir;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

/// The npm scope and prefix of MCP server packages.
pub const MCP_PACKAGE_PREFIX: &str = "@modelcontextprotocol/server-";

/// Entry files tried, in order, in a local `mcp-servers/<id>` folder.
pub const LOCAL_ENTRY_FILES: &[&str] = &[
    "index.js",
    "server.js",
    "main.js",
    "index.mjs",
    "server.mjs",
];

/// Where a server was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum McpSource {
    /// Installed in the global npm folder (lowest precedence).
    NpmGlobal,
    /// A dependency of the project.
    NpmProject,
    /// A folder under `<root>/mcp-servers` (highest precedence).
    Local,
}

/// A discovered MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpServer {
    /// Its id: the key under `mcpServers` (`filesystem`, `postgres`, a folder name).
    pub id: String,
    /// Where it was found.
    pub source: McpSource,
    /// The command to start it.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The npm package, for npm sources.
    pub package: Option<String>,
}

impl McpServer {
    /// The `mcpServers` entry: `{ command, args }`.
    pub fn to_entry(&self) -> Value {
        serde_json::json!({ "command": self.command, "args": self.args })
    }
}

/// MCP servers among a package.json's `dependencies` and `devDependencies` (its text, from disk
/// or a git blob). Invalid JSON is an [`Error::Parse`].
pub fn project_servers(package_json: &str) -> Result<Vec<McpServer>> {
    let pkg: IndexMap<String, Value> =
        serde_json::from_str(package_json).map_err(|e| Error::Parse {
            what: "package.json".into(),
            message: e.to_string(),
        })?;
    let mut out: Vec<McpServer> = Vec::new();
    for field in ["dependencies", "devDependencies"] {
        let Some(Value::Object(deps)) = pkg.get(field) else {
            continue;
        };
        for name in deps.keys() {
            if let Some(id) = name.strip_prefix(MCP_PACKAGE_PREFIX)
                && !id.is_empty()
                && !out.iter().any(|s| s.id == id)
            {
                out.push(McpServer {
                    id: id.to_string(),
                    source: McpSource::NpmProject,
                    command: "npx".into(),
                    args: vec!["-y".into(), name.clone()],
                    package: Some(name.clone()),
                });
            }
        }
    }
    Ok(out)
}

/// The entry file of a local server folder: the first of [`LOCAL_ENTRY_FILES`] that is a regular
/// file, else its package.json `main` (a plain relative name resolved against the folder), else
/// `None`. Nothing is followed through a symbolic link: an entry file or package.json that is a
/// link does not count, and a `main` with `..` or an absolute path is ignored.
pub fn local_entry_file(folder: &Path) -> Option<PathBuf> {
    let dir = ConfinedDir::open(folder).ok()?;
    local_entry_in(&dir, folder)
}

fn local_entry_in(dir: &ConfinedDir, folder: &Path) -> Option<PathBuf> {
    let is_file = |rel: &Path| matches!(dir.stat(rel), Ok(Some(st)) if st.file_type() == rustix::fs::FileType::RegularFile);
    for f in LOCAL_ENTRY_FILES {
        if is_file(Path::new(f)) {
            return Some(folder.join(f));
        }
    }
    let text = dir.read_if_exists("package.json").ok()??;
    let pkg: Value = serde_json::from_slice(&text).ok()?;
    let main = pkg.get("main")?.as_str()?;
    let main_path = Path::new(main);
    let plain = main_path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if main.is_empty() || !plain {
        return None;
    }
    Some(folder.join(main_path))
}

/// Local servers: folders of `<project_root>/mcp-servers` with an entry file, sorted by id.
/// `mcp-servers` and its folders are opened without following links: a linked one is skipped.
pub fn local_servers(project_root: &Path) -> Vec<McpServer> {
    let Ok(root) = ConfinedDir::open(project_root) else {
        return Vec::new();
    };
    let Ok(servers) = root.open_dir("mcp-servers") else {
        return Vec::new();
    };
    let dir = project_root.join("mcp-servers");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let abs_dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut out: Vec<McpServer> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let id = e.file_name().to_string_lossy().into_owned();
            let folder = servers.open_dir(e.file_name()).ok()?;
            let entry = local_entry_in(&folder, &abs_dir.join(&id))?;
            Some(McpServer {
                id,
                source: McpSource::Local,
                command: "node".into(),
                args: vec![entry.to_string_lossy().into_owned()],
                package: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Servers installed in a global `node_modules` folder (`<dir>/@modelcontextprotocol/server-*`),
/// sorted by id.
pub fn global_servers(global_node_modules: &Path) -> Vec<McpServer> {
    let scope = global_node_modules.join("@modelcontextprotocol");
    let Ok(rd) = std::fs::read_dir(&scope) else {
        return Vec::new();
    };
    let mut out: Vec<McpServer> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let dir_name = e.file_name().to_string_lossy().into_owned();
            let id = dir_name.strip_prefix("server-")?.to_string();
            if id.is_empty() {
                return None;
            }
            let package = format!("@modelcontextprotocol/{dir_name}");
            Some(McpServer {
                id,
                source: McpSource::NpmGlobal,
                command: package.clone(),
                args: Vec::new(),
                package: Some(package),
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// The environment that decides npm's global folder (read from the process by
/// [`GlobalNpmEnv::from_process`]; tests build their own).
#[derive(Debug, Clone, Default)]
pub struct GlobalNpmEnv {
    /// `npm_config_prefix` / `NPM_CONFIG_PREFIX`.
    pub config_prefix: Option<OsString>,
    /// `npm_config_userconfig` / `NPM_CONFIG_USERCONFIG` (default `~/.npmrc`).
    pub userconfig: Option<PathBuf>,
    /// `npm_config_globalconfig` / `NPM_CONFIG_GLOBALCONFIG` (default `<node prefix>/etc/npmrc`).
    pub globalconfig: Option<PathBuf>,
    /// `PREFIX`, which npm uses as its default global prefix when set.
    pub prefix_env: Option<OsString>,
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `PATH`, to find `node`.
    pub path: Option<OsString>,
}

fn env_ci(names: &[&str]) -> Option<OsString> {
    names
        .iter()
        .find_map(|n| std::env::var_os(n).filter(|v| !v.is_empty()))
}

impl GlobalNpmEnv {
    /// The current process's environment.
    pub fn from_process() -> Self {
        Self {
            config_prefix: env_ci(&["npm_config_prefix", "NPM_CONFIG_PREFIX"]),
            userconfig: env_ci(&["npm_config_userconfig", "NPM_CONFIG_USERCONFIG"])
                .map(PathBuf::from),
            globalconfig: env_ci(&["npm_config_globalconfig", "NPM_CONFIG_GLOBALCONFIG"])
                .map(PathBuf::from),
            prefix_env: env_ci(&["PREFIX"]),
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            path: std::env::var_os("PATH"),
        }
    }
}

/// `prefix` from an npmrc file (`prefix = ~/x`, `prefix=${HOME}/x`), with `~/` and `${VAR}`
/// expanded.
fn npmrc_prefix(file: &Path, home: Option<&Path>) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut found = None;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some((k, v)) = l.split_once('=')
            && k.trim() == "prefix"
        {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            found = Some(expand(v, home));
        }
    }
    found.filter(|p| !p.as_os_str().is_empty())
}

fn expand(v: &str, home: Option<&Path>) -> PathBuf {
    let mut s = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        s.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                s.push_str(&std::env::var(&after[..j]).unwrap_or_default());
                rest = &after[j + 1..];
            }
            None => {
                s.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    s.push_str(rest);
    if let (Some(tail), Some(h)) = (s.strip_prefix("~/"), home) {
        return h.join(tail);
    }
    PathBuf::from(s)
}

/// npm's global `node_modules` folder computed as npm does, without running npm: the prefix is
/// `npm_config_prefix`, else `prefix` of the user npmrc, else of the global npmrc, else `$PREFIX`,
/// else the parent of the folder holding the real `node` executable; the folder is
/// `<prefix>/lib/node_modules`. `None` when no prefix can be found.
pub fn locate_global_node_modules(env: &GlobalNpmEnv) -> Option<PathBuf> {
    let home = env.home.as_deref();
    let node_prefix = || -> Option<PathBuf> {
        if let Some(p) = &env.prefix_env {
            return Some(PathBuf::from(p));
        }
        let path = env.path.as_ref()?;
        let node = std::env::split_paths(path)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join("node"))
            .find(|p| p.is_file())?;
        let real = std::fs::canonicalize(&node).unwrap_or(node);
        Some(real.parent()?.parent()?.to_path_buf())
    };
    let prefix = env
        .config_prefix
        .as_ref()
        .map(|p| expand(&p.to_string_lossy(), home))
        .or_else(|| {
            let user = env
                .userconfig
                .clone()
                .or_else(|| home.map(|h| h.join(".npmrc")))?;
            npmrc_prefix(&user, home)
        })
        .or_else(|| {
            let global = env
                .globalconfig
                .clone()
                .or_else(|| Some(node_prefix()?.join("etc").join("npmrc")))?;
            npmrc_prefix(&global, home)
        })
        .or_else(node_prefix)?;
    Some(prefix.join("lib").join("node_modules"))
}

static GLOBAL_NODE_MODULES: OnceLock<Option<PathBuf>> = OnceLock::new();

/// [`locate_global_node_modules`] for this process's environment, computed once and cached.
pub fn global_node_modules() -> Option<&'static Path> {
    GLOBAL_NODE_MODULES
        .get_or_init(|| locate_global_node_modules(&GlobalNpmEnv::from_process()))
        .as_deref()
}

/// All servers, deduplicated by id with local > project > global, in that order of source then id.
///
/// - `project_root`: where `mcp-servers/` is looked for;
/// - `package_json`: the project's package.json text (`None`: no package.json);
/// - `global_node_modules`: the global folder to scan (`None`: no global servers; pass
///   [`global_node_modules()`] for the real one).
pub fn discover(
    project_root: &Path,
    package_json: Option<&str>,
    global_node_modules: Option<&Path>,
) -> Result<Vec<McpServer>> {
    let mut all = local_servers(project_root);
    if let Some(text) = package_json {
        all.extend(project_servers(text)?);
    }
    if let Some(g) = global_node_modules {
        all.extend(global_servers(g));
    }
    let mut out: Vec<McpServer> = Vec::new();
    for s in all {
        match out.iter_mut().find(|o| o.id == s.id) {
            Some(o) if s.source > o.source => *o = s,
            Some(_) => {}
            None => out.push(s),
        }
    }
    out.sort_by(|a, b| b.source.cmp(&a.source).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The `mcpServers` object: each server's `{ command, args }`, `postgres` with
/// `env.DATABASE_URL` when `postgres_port` is given, then the host's `extra` entries (which win
/// on the same id).
pub fn mcp_servers_config(
    servers: &[McpServer],
    postgres_port: Option<u16>,
    extra: &[(String, Value)],
) -> IndexMap<String, Value> {
    let mut out: IndexMap<String, Value> = IndexMap::new();
    for s in servers {
        let mut entry = s.to_entry();
        if s.id == "postgres"
            && let Some(port) = postgres_port
        {
            entry["env"] = serde_json::json!({
                "DATABASE_URL": database_url(port)
            });
        }
        out.insert(s.id.clone(), entry);
    }
    for (id, v) in extra {
        out.insert(id.clone(), v.clone());
    }
    out
}

/// `postgresql://localhost:<port>/vibe`.
pub fn database_url(port: u16) -> String {
    format!("postgresql://localhost:{port}/vibe")
}

/// Where the MCP settings live, relative to the worktree.
pub const CLAUDE_SETTINGS: &str = ".claude/settings.json";

/// Merges `servers` into `<worktree>/.claude/settings.json` under `mcpServers` (existing server
/// entries of other ids and every other key are kept, in their order) and writes it atomically
/// with 2-space indentation. An existing file that is not a JSON object is an [`Error::Parse`]
/// and is left untouched. The file is read and written beneath the worktree's own folder handle
/// and never through a symbolic link (a committed `.claude -> ~/.claude` is an [`Error::Io`]
/// naming the link; nothing outside is read or written). Returns the file's path.
pub fn write_claude_settings(
    worktree: &Path,
    servers: &IndexMap<String, Value>,
) -> Result<PathBuf> {
    let dir = ConfinedDir::open(worktree)?;
    let path = worktree.join(CLAUDE_SETTINGS);
    let mut settings: IndexMap<String, Value> = match dir.read_if_exists(CLAUDE_SETTINGS)? {
        Some(t) if t.trim_ascii().is_empty() => IndexMap::new(),
        Some(t) => serde_json::from_slice(&t).map_err(|e| Error::Parse {
            what: path.display().to_string(),
            message: format!("{e} (left untouched)"),
        })?,
        None => IndexMap::new(),
    };
    let mut merged: IndexMap<String, Value> = match settings.get("mcpServers") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => IndexMap::new(),
    };
    for (k, v) in servers {
        merged.insert(k.clone(), v.clone());
    }
    if !settings.contains_key("mcpServers") {
        settings.insert("mcpServers".into(), Value::Null); // position: last, as a JS spread would add it
    }
    let text = render_settings(&settings, &merged)?;
    dir.write(CLAUDE_SETTINGS, text.as_bytes(), 0o644)?;
    Ok(path)
}

/// `JSON.stringify(settings, null, 2)` with `mcpServers` replaced by `servers`, both in insertion
/// order (serde_json's own objects are sorted, so the two ordered levels are serialized as maps).
fn render_settings(
    settings: &IndexMap<String, Value>,
    servers: &IndexMap<String, Value>,
) -> Result<String> {
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Node<'a> {
        Servers(&'a IndexMap<String, Value>),
        Plain(&'a Value),
    }
    let view: IndexMap<&str, Node<'_>> = settings
        .iter()
        .map(|(k, v)| {
            let node = if k == "mcpServers" {
                Node::Servers(servers)
            } else {
                Node::Plain(v)
            };
            (k.as_str(), node)
        })
        .collect();
    Ok(serde_json::to_string_pretty(&view)?)
}

/// Discovery, config and write in one call: what the manager's `mcp` step does.
pub fn configure_worktree(
    project_root: &Path,
    worktree: &Path,
    package_json: Option<&str>,
    global_node_modules: Option<&Path>,
    postgres_port: Option<u16>,
    extra: &[(String, Value)],
) -> Result<(PathBuf, Vec<McpServer>)> {
    let servers = discover(project_root, package_json, global_node_modules)?;
    let config = mcp_servers_config(&servers, postgres_port, extra);
    let path = write_claude_settings(worktree, &config)?;
    Ok((path, servers))
}
