//! `CacheManager`: the API of the original VibeTrees `CacheManager`, on top of
//! [`NodeModulesCache`]. The project is the folder that holds the node_modules path.

use super::fsops::RestoreMethod;
use super::key::{CacheKey, KeyInputs};
use super::populate::{PopulateOptions, PopulateReport};
use super::restore::{RestoreOptions, RestoreStats};
use super::store::{CacheOptions, NodeModulesCache};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of a [`CacheManager`].
#[derive(Clone, Debug, Default)]
pub struct CacheManagerOptions {
    /// Cache folder (default `~/.vibetrees/cache`), workers and profiler.
    pub cache: CacheOptions,
    /// Restore method (default `auto`).
    pub method: RestoreMethod,
}

/// What `restore_node_modules` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutcome {
    /// True when node_modules was restored from the cache.
    pub restored: bool,
    /// The project's key, when it could be computed.
    pub key: Option<CacheKey>,
    /// The restore's statistics, when restored.
    pub stats: Option<RestoreStats>,
    /// Why nothing was restored (no entry, no package.json, entry found mutated and evicted).
    pub reason: Option<String>,
}

/// The original API: cache a project's node_modules, restore it, tell whether the cache is valid.
#[derive(Debug)]
pub struct CacheManager {
    cache: Arc<NodeModulesCache>,
    method: RestoreMethod,
}

fn project_of(node_modules: &Path) -> Result<PathBuf> {
    let abs = if node_modules.is_absolute() {
        node_modules.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("read the current folder", e))?
            .join(node_modules)
    };
    abs.parent().map(Path::to_path_buf).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{} has no parent folder (the project)",
            node_modules.display()
        ))
    })
}

impl CacheManager {
    /// Opens the cache (creating its folder if needed).
    pub fn new(opts: CacheManagerOptions) -> Result<CacheManager> {
        Ok(CacheManager {
            cache: Arc::new(NodeModulesCache::open(opts.cache)?),
            method: opts.method,
        })
    }

    /// The underlying cache, for keys from git trees, stats, verify and prune.
    pub fn cache(&self) -> &Arc<NodeModulesCache> {
        &self.cache
    }

    /// Caches the node_modules folder `source` under the key of its project (its parent folder).
    pub fn cache_node_modules(&self, source: &Path) -> Result<PopulateReport> {
        let project = project_of(source)?;
        let inputs = KeyInputs::from_project_dir(&project)?;
        let key = inputs.key();
        self.cache.populate_with(
            &key,
            source,
            &PopulateOptions {
                inputs: Some(inputs),
                parent_span: None,
            },
        )
    }

    /// The restore method its restores use.
    pub fn method(&self) -> RestoreMethod {
        self.method
    }

    /// Restores the node_modules folder `target` from the entry of its project's key. An
    /// existing target is refused (see [`crate::cache::check_target`]): use
    /// [`Self::restore_node_modules_with`] with `replace` to replace a node_modules folder.
    /// A miss (no entry, no package.json, a mutated entry that was evicted) is `restored: false`
    /// with the reason; other failures are errors.
    pub fn restore_node_modules(&self, target: &Path) -> Result<RestoreOutcome> {
        self.restore_node_modules_with(
            target,
            &RestoreOptions {
                method: self.method,
                ..Default::default()
            },
        )
    }

    /// [`restore_node_modules`](Self::restore_node_modules) with options (progress, method...).
    pub fn restore_node_modules_with(
        &self,
        target: &Path,
        opts: &RestoreOptions,
    ) -> Result<RestoreOutcome> {
        if !opts.keep_existing {
            super::check_target(target, opts.replace)?;
        }
        let project = project_of(target)?;
        let key = match CacheKey::from_project_dir(&project) {
            Ok(k) => k,
            Err(e @ Error::NotFound(_)) => {
                return Ok(RestoreOutcome {
                    restored: false,
                    key: None,
                    stats: None,
                    reason: Some(e.to_string()),
                });
            }
            Err(e) => return Err(e),
        };
        match self.cache.restore(&key, target, opts) {
            Ok(stats) => Ok(RestoreOutcome {
                restored: true,
                key: Some(key),
                stats: Some(stats),
                reason: None,
            }),
            Err(e @ (Error::NotFound(_) | Error::Cache(_))) => Ok(RestoreOutcome {
                restored: false,
                key: Some(key),
                stats: None,
                reason: Some(e.to_string()),
            }),
            Err(e) => Err(e),
        }
    }

    /// True when the cache holds an entry for the project in `project` (synchronous, cheap).
    pub fn is_cache_valid(&self, project: &Path) -> bool {
        CacheKey::from_project_dir(project)
            .map(|k| self.cache.contains(&k))
            .unwrap_or(false)
    }

    /// Environment for faster container builds: BuildKit on, plain progress, compose via the CLI.
    pub fn get_docker_cache_env() -> BTreeMap<String, String> {
        [
            ("DOCKER_BUILDKIT", "1"),
            ("BUILDKIT_PROGRESS", "plain"),
            ("COMPOSE_DOCKER_CLI_BUILD", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}
