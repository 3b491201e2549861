//! [`WorktreeSettings`]: every plain-data option of a [`super::WorktreeManager`], in one serde
//! type. The C, Node and Python packages deserialize their options into it (camelCase keys,
//! unknown keys refused, naming the key), so a new option is added here once and reaches all
//! three. The callbacks (progress sink, host steps) are not data: they sit beside it in
//! [`super::WorktreeOptions`].
//!
//! Also the machine-dependent defaults the settings fall back on (checkout threads from the
//! cores). Owns no behaviour: what each setting does lives where it is used (`create/`, `git.rs`).
//! Must not read the environment: switches that used to be environment variables
//! (`VIBETREES_CHECKOUT`, `VIBETREES_CHECKOUT_THREADS`) are fields here.

use crate::services::containers::RuntimeChoice;
use crate::worktree::checkout::CheckoutMethod;
use crate::worktree::hooks::HooksConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Most threads our checkout uses by default, whatever the cores. Measured only on 2 cores (2
/// threads won every case, 3 were mixed: docs/worktree.md); more threads share the work by whole
/// folders, and a tree of a few thousand files has few folders big enough to keep many threads
/// busy, while each thread opens its own repository and the node_modules restore runs beside the
/// checkout and needs cores too. 8 bounds an untested guess; `checkoutThreads` overrides it.
pub const MAX_DEFAULT_CHECKOUT_THREADS: usize = 8;

/// The cores this process may use (`available_parallelism`: affinity and cgroup quota), at
/// least 1.
pub fn machine_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Threads of our checkout when `checkoutThreads` is not set: one per core, at most
/// [`MAX_DEFAULT_CHECKOUT_THREADS`] (2 on the 2-core machine the checkout was measured on).
pub fn default_checkout_threads() -> usize {
    machine_cores().clamp(1, MAX_DEFAULT_CHECKOUT_THREADS)
}

/// Which checkout writes a new worktree's files (`"checkout"` in the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum CheckoutChoice {
    /// Ours (registration by libgit2, our parallel writer), falling back to the git CLI when the
    /// repository needs what only git does (attributes, filters, ...). The faster one, measured.
    #[default]
    #[serde(rename = "git2", alias = "git2-parallel")]
    Ours,
    /// Always `git worktree add`.
    #[serde(rename = "cli", alias = "git-cli")]
    GitCli,
}

impl CheckoutChoice {
    /// The checkout method this choice asks for first.
    pub fn method(self) -> CheckoutMethod {
        match self {
            CheckoutChoice::Ours => CheckoutMethod::Git2Parallel,
            CheckoutChoice::GitCli => CheckoutMethod::GitCli,
        }
    }
}

/// Every plain-data option of a [`super::WorktreeManager`]. JSON: camelCase keys, unknown keys
/// refused, a `null` value means "the default"; only `rootDir` is required.
///
/// `Default` gives an empty `root_dir`: use [`WorktreeSettings::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorktreeSettings {
    /// The project's root (its main git worktree). Required.
    pub root_dir: PathBuf,
    /// Where worktrees go; default `<root>/.worktrees`.
    #[serde(default)]
    pub worktree_base: Option<PathBuf>,
    /// node_modules cache folder; default `~/.vibetrees/cache`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Compose file name, relative to the project root; default `docker-compose.yml`.
    #[serde(default)]
    pub compose_file: Option<String>,
    /// Container engine: `auto` (default), `docker`, `podman` or `none`.
    #[serde(default)]
    pub runtime: RuntimeChoice,
    /// Services started before "ready"; default: the database-like ones (postgres, mysql,
    /// mariadb, mongo, redis, ...). The others start in the background.
    #[serde(default)]
    pub critical_services: Option<Vec<String>>,
    /// Push the new branch to `origin` in the background after "ready". Default false.
    #[serde(default)]
    pub push_branch: bool,
    /// Time limit of the background push; JSON: milliseconds. Default 60 s.
    #[serde(default = "default_push_timeout", with = "duration_ms")]
    pub push_timeout: Duration,
    /// Use the node_modules cache (restore on hit, populate after an install). Default true.
    #[serde(default = "yes")]
    pub use_cache: bool,
    /// Run the project's install on a cache miss. Default true.
    #[serde(default = "yes")]
    pub install: bool,
    /// How a creation restores node_modules from the cache: `"auto"` (default: hardlinks, shared
    /// inodes with the cache and every other worktree, as pnpm and bun), `"clone"` (reflinks on
    /// XFS/btrfs/APFS: no shared inode, an in-place write stays in its worktree), `"clone-or-copy"`,
    /// `"copy"` or `"hardlink"`.
    #[serde(default)]
    pub cache_method: crate::cache::RestoreMethod,
    /// Time limit of the project's install (`npm ci`, `npm run bootstrap`, ...); JSON:
    /// milliseconds. Default 15 minutes. When it is reached the install's whole process group is
    /// killed and the install fails with `TIMEOUT` and its last output lines (the worktree is
    /// still made, as for any failed install).
    #[serde(default = "default_install_timeout", with = "duration_ms")]
    pub install_timeout: Duration,
    /// Worker threads of the node_modules restore that runs beside the checkout; unset: chosen
    /// per creation from the cores, the checkout's threads and the sizes of both (see
    /// `create/steps/cache_restore.rs`).
    #[serde(default)]
    pub restore_workers: Option<usize>,
    /// History database; default `~/.vibetrees/history.sqlite`.
    #[serde(default)]
    pub history_path: Option<PathBuf>,
    /// Record each creation's timings and trace in the history. Default true.
    #[serde(default = "yes")]
    pub record_history: bool,
    /// Extra `mcpServers` entries (e.g. the host's bridge server), added to every worktree's
    /// `.claude/settings.json`.
    #[serde(default)]
    pub mcp_servers: serde_json::Map<String, serde_json::Value>,
    /// Which checkout writes the files: `"git2"` (ours, default) or `"cli"` (`git worktree add`).
    #[serde(default)]
    pub checkout: CheckoutChoice,
    /// Threads of our checkout; unset: [`default_checkout_threads`]. 1 to 64.
    #[serde(default)]
    pub checkout_threads: Option<usize>,
    /// The git program run for what needs the CLI (`git worktree add`, push); default `git` on
    /// `PATH`.
    #[serde(default = "default_git_program")]
    pub git_program: PathBuf,
    /// How long a removed worktree that held changes stays in the trash (restorable) before it
    /// is deleted; JSON: milliseconds. Default 24 h.
    #[serde(default = "default_trash_grace", with = "duration_ms")]
    pub trash_grace: Duration,
    /// Patterns (gitignore syntax) of ignored files to copy from the main worktree, added to
    /// the project's `.worktreeinclude` (see `worktree/include/`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Patterns of ignored files (big build caches) copied in the background after ready
    /// instead of before it; copied as `include` patterns are.
    #[serde(default)]
    pub include_background: Vec<String>,
    /// Write the copied (not cloned) ignored files by direct I/O (`O_DIRECT`, Linux): their
    /// bytes go to the disk during the copy, on more workers, and do not fill the page cache.
    /// `None` (the default): where the disk suits it, an SSD or a VM's disk
    /// (`platform::direct_io_suits`); `true`/`false` force it (docs/include.md, "Direct I/O").
    #[serde(default)]
    pub include_direct_io: Option<bool>,
    /// The host's hooks, `{"post-create": [...], "post-ready": [...]}`: always run (see
    /// `worktree/hooks/`).
    #[serde(default)]
    pub hooks: HooksConfig,
    /// Run the repository's hooks (`vibetrees.json`, `.config/wt.toml`, `conductor.json`)
    /// without their approval. Default false: only approved ones run.
    #[serde(default)]
    pub trust_project_hooks: bool,
    /// Spare worktrees kept ready per project and `from` commit (see `worktree/pool/`): a
    /// creation from that commit claims one instead of checking out. Default 1; 0 disables the
    /// pool (none is made, none is claimed).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Disk budget of the pool, bytes: the spares' own checked-out files (their node_modules are
    /// hardlinks into the cache and are not counted). No spare is made past it. Default 1 GiB.
    #[serde(default = "default_pool_max_bytes")]
    pub pool_max_bytes: u64,
    /// Near spares: a spare of an older commit of `from`'s ref is claimed (and a refill brings a
    /// spare up to date) by a difference update when at most this many paths changed; past it a
    /// normal creation (a new spare) is faster. Never more than half the tracked files, whatever
    /// this says (past that a creation is faster at any size). Default
    /// [`DEFAULT_POOL_NEAR_MAX_CHANGES`] (measured: docs/worktree.md, "Pool"); 0 turns near
    /// spares off.
    #[serde(default = "default_pool_near_max_changes")]
    pub pool_near_max_changes: usize,
}

fn yes() -> bool {
    true
}

fn default_push_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_trash_grace() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_install_timeout() -> Duration {
    crate::worktree::install::DEFAULT_INSTALL_TIMEOUT
}

fn default_pool_size() -> usize {
    1
}

/// Default of `poolMaxBytes`: 1 GiB.
pub const DEFAULT_POOL_MAX_BYTES: u64 = 1 << 30;

fn default_pool_max_bytes() -> u64 {
    DEFAULT_POOL_MAX_BYTES
}

/// Default of `poolNearMaxChanges` (see docs/worktree.md, "Pool", for the measurement).
pub const DEFAULT_POOL_NEAR_MAX_CHANGES: usize = 2000;

fn default_pool_near_max_changes() -> usize {
    DEFAULT_POOL_NEAR_MAX_CHANGES
}

fn default_git_program() -> PathBuf {
    PathBuf::from("git")
}

/// A `Duration` as a number of milliseconds in JSON.
mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1000.0)
            .map_err(|_| serde::de::Error::custom(format!("not a duration in ms: {ms}")))
    }
}

impl Default for WorktreeSettings {
    fn default() -> Self {
        Self::new(PathBuf::new())
    }
}

impl WorktreeSettings {
    /// The defaults for the project at `root_dir`.
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        Self {
            root_dir: root_dir.into(),
            worktree_base: None,
            cache_dir: None,
            compose_file: None,
            runtime: RuntimeChoice::Auto,
            critical_services: None,
            push_branch: false,
            push_timeout: default_push_timeout(),
            use_cache: true,
            install: true,
            cache_method: crate::cache::RestoreMethod::Auto,
            install_timeout: default_install_timeout(),
            restore_workers: None,
            history_path: None,
            record_history: true,
            mcp_servers: serde_json::Map::new(),
            checkout: CheckoutChoice::Ours,
            checkout_threads: None,
            git_program: default_git_program(),
            trash_grace: default_trash_grace(),
            include: Vec::new(),
            include_background: Vec::new(),
            include_direct_io: None,
            hooks: HooksConfig::default(),
            trust_project_hooks: false,
            pool_size: default_pool_size(),
            pool_max_bytes: default_pool_max_bytes(),
            pool_near_max_changes: default_pool_near_max_changes(),
        }
    }

    /// Settings from JSON text (see [`WorktreeSettings::from_value`]).
    pub fn from_json(text: &str) -> Result<Self> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(parse_error)?;
        Self::from_value(value)
    }

    /// Settings from a JSON value: an object with camelCase keys; `null` values are dropped
    /// (they mean "the default"). Errors: an unknown `runtime` is [`Error::InvalidArgument`]
    /// naming it; anything else (not an object, an unknown key, a wrong type, no `rootDir`) is
    /// [`Error::Parse`] naming the key.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        let serde_json::Value::Object(mut map) = value else {
            return Err(Error::Parse {
                what: "worktree settings".into(),
                message: format!("expected an object, got {value}"),
            });
        };
        map.retain(|_, v| !v.is_null());
        if let Some(serde_json::Value::String(r)) = map.get("runtime") {
            r.parse::<RuntimeChoice>()?;
        }
        let settings: Self =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(parse_error)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: value ranges.
    pub fn validate(&self) -> Result<()> {
        if let Some(n) = self.checkout_threads
            && !(1..=64).contains(&n)
        {
            return Err(Error::InvalidArgument(format!(
                "checkoutThreads must be 1 to 64, not {n}"
            )));
        }
        // the host's hooks: an empty command, a bad timeout
        crate::worktree::hooks::host_hooks(&self.hooks)?;
        // the host's include patterns (gitignore syntax)
        crate::worktree::include::IncludeRules::with_background(
            &self.root_dir,
            None,
            &self.include,
            &self.include_background,
        )?;
        if self.restore_workers == Some(0) {
            return Err(Error::InvalidArgument(
                "restoreWorkers must be at least 1 (or unset)".into(),
            ));
        }
        Ok(())
    }

    /// Threads of our checkout: the setting, else [`default_checkout_threads`].
    pub fn checkout_threads(&self) -> usize {
        self.checkout_threads
            .unwrap_or_else(default_checkout_threads)
    }

    /// The compose file name (default `docker-compose.yml`).
    pub fn compose_file(&self) -> &str {
        self.compose_file
            .as_deref()
            .unwrap_or(crate::services::compose::DEFAULT_COMPOSE_FILE)
    }

    /// Every key the JSON form accepts, camelCase, in declaration order (for bindings that
    /// document or map them).
    pub fn keys() -> Vec<String> {
        let value = serde_json::to_value(Self::default()).expect("settings serialize");
        match value {
            serde_json::Value::Object(m) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

fn parse_error(e: serde_json::Error) -> Error {
    Error::Parse {
        what: "worktree settings".into(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_with_defaults() {
        let s = WorktreeSettings::from_json(r#"{"rootDir": "/p"}"#).unwrap();
        assert_eq!(s, WorktreeSettings::new("/p"));
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["useCache"], true);
        assert_eq!(back["pushTimeout"], 60000.0);
        assert_eq!(back["checkout"], "git2");
        assert_eq!(WorktreeSettings::from_value(back).unwrap(), s);
    }

    #[test]
    fn every_option_is_read() {
        let s = WorktreeSettings::from_value(json!({
            "rootDir": "/p", "worktreeBase": "/w", "cacheDir": "/c", "composeFile": "c.yml",
            "runtime": "none", "criticalServices": ["db"], "pushBranch": true, "pushTimeout": 1500,
            "useCache": false, "install": false, "installTimeout": 2500, "cacheMethod": "clone", "restoreWorkers": 3, "historyPath": "/h",
            "recordHistory": false, "mcpServers": {"bridge": {"command": "x"}},
            "checkout": "cli", "checkoutThreads": 4, "gitProgram": "/usr/bin/git",
            "trashGrace": 60000,
            "include": [".env.local"], "includeBackground": ["target/"], "includeDirectIo": true, "hooks": {"post-create": ["make gen"]},
            "trustProjectHooks": true, "poolSize": 3, "poolMaxBytes": 1000000, "poolNearMaxChanges": 7,
        }))
        .unwrap();
        assert_eq!(s.runtime, RuntimeChoice::None);
        assert_eq!(s.push_timeout, Duration::from_millis(1500));
        assert_eq!(s.install_timeout, Duration::from_millis(2500));
        assert_eq!(s.cache_method, crate::cache::RestoreMethod::Clone);
        assert_eq!(s.checkout, CheckoutChoice::GitCli);
        assert_eq!(s.checkout_threads(), 4);
        assert_eq!(s.git_program, PathBuf::from("/usr/bin/git"));
        assert_eq!(s.trash_grace, Duration::from_secs(60));
        assert!(s.mcp_servers.contains_key("bridge"));
        assert_eq!(s.include, vec![".env.local".to_string()]);
        assert_eq!(s.include_background, vec!["target/".to_string()]);
        assert_eq!(s.include_direct_io, Some(true));
        assert_eq!(s.hooks.post_create.len(), 1);
        assert!(s.trust_project_hooks);
        assert_eq!((s.pool_size, s.pool_max_bytes), (3, 1_000_000));
        assert_eq!(s.pool_near_max_changes, 7);
        let keys = WorktreeSettings::keys();
        assert_eq!(keys.len(), 28, "{keys:?}");
    }

    #[test]
    fn nulls_are_defaults_and_bad_input_is_named() {
        let s = WorktreeSettings::from_value(json!({"rootDir": "/p", "useCache": null})).unwrap();
        assert!(s.use_cache);
        // includeDirectIo: absent or null is "where the disk suits it", a bool forces it
        assert_eq!(WorktreeSettings::new("/p").include_direct_io, None);
        for (v, want) in [
            (json!(null), None),
            (json!(false), Some(false)),
            (json!(true), Some(true)),
        ] {
            let s = WorktreeSettings::from_value(json!({"rootDir": "/p", "includeDirectIo": v}))
                .unwrap();
            assert_eq!(s.include_direct_io, want);
        }
        let e = WorktreeSettings::from_value(json!({"rootDir": "/p", "colour": 1})).unwrap_err();
        assert_eq!(e.code(), "PARSE");
        assert!(e.to_string().contains("colour"), "{e}");
        let e = WorktreeSettings::from_value(json!({})).unwrap_err();
        assert!(e.to_string().contains("rootDir"), "{e}");
        let e =
            WorktreeSettings::from_value(json!({"rootDir": "/p", "runtime": "vm"})).unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.to_string().contains("vm"), "{e}");
        let e = WorktreeSettings::from_value(json!({"rootDir": "/p", "checkoutThreads": 0}))
            .unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert_eq!(
            WorktreeSettings::from_value(json!({"rootDir": "/p", "checkout": "git-cli"}))
                .unwrap()
                .checkout,
            CheckoutChoice::GitCli
        );
    }
}
