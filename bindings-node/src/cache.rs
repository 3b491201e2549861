//! `CacheManager`: the node_modules cache with the original API (Promises for disk work,
//! `isCacheValid` and `getDockerCacheEnv` synchronous) plus stats, verify, prune and clear.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use napi::Env;
use napi::bindgen_prelude::PromiseRaw;
use napi_derive::napi;
use vibetrees_core::cache::{CacheManager, CacheManagerOptions, CacheOptions, RestoreMethod};

use crate::errors::{core_error, invalid_argument, spawn_blocking};
use crate::profiler::JsProfiler;

/// Options of `new CacheManager(options?)`.
#[napi(object)]
pub struct CacheManagerJsOptions {
    /// Cache folder; default `~/.vibetrees/cache`.
    pub cache_dir: Option<String>,
    /// How files are restored: `'auto'` (hardlink, falling back per file; the default),
    /// `'hardlink'`, `'clone'`, `'copy'` or `'clone-or-copy'`.
    pub method: Option<String>,
    /// Worker threads of a restore; default one per core, at most 4.
    pub workers: Option<u32>,
}

fn parse_method(env: &Env, method: &str) -> napi::Result<RestoreMethod> {
    serde_json::from_value(serde_json::Value::String(method.to_string())).map_err(|_| {
        invalid_argument(
            env,
            format!(
                "unknown restore method '{method}' (expected 'auto', 'hardlink', 'clone', 'copy' or 'clone-or-copy')"
            ),
        )
    })
}

fn to_json<T: serde::Serialize>(value: T) -> vibetrees_core::Result<serde_json::Value> {
    Ok(serde_json::to_value(value)?)
}

/// A content-addressed node_modules cache, keyed by the project's lockfile and package.json.
#[napi(js_name = "CacheManager")]
pub struct JsCacheManager {
    inner: Arc<CacheManager>,
}

#[napi]
impl JsCacheManager {
    /// Opens (creating if needed) the cache folder. `profiler`, if given, gets a span per phase.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        options: Option<CacheManagerJsOptions>,
        profiler: Option<&JsProfiler>,
    ) -> napi::Result<Self> {
        let options = options.unwrap_or(CacheManagerJsOptions {
            cache_dir: None,
            method: None,
            workers: None,
        });
        let method = match options.method.as_deref() {
            Some(m) => parse_method(&env, m)?,
            None => RestoreMethod::default(),
        };
        if options.workers == Some(0) {
            return Err(invalid_argument(&env, "workers must be at least 1"));
        }
        let inner = CacheManager::new(CacheManagerOptions {
            cache: CacheOptions {
                cache_dir: options.cache_dir.map(PathBuf::from),
                workers: options.workers.map(|w| w as usize),
                profiler: profiler.map(|p| p.inner.clone()),
            },
            method,
        })
        .map_err(|e| core_error(&env, &e))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The cache folder.
    #[napi(getter)]
    pub fn cache_dir(&self) -> String {
        self.inner
            .cache()
            .cache_dir()
            .to_string_lossy()
            .into_owned()
    }

    /// Caches the node_modules folder at `sourceNodeModulesPath` under its project's key (the
    /// project is the folder holding it). Resolves to what was done.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn cache_node_modules<'env>(
        &self,
        env: &'env Env,
        source_node_modules_path: String,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let inner = self.inner.clone();
        spawn_blocking(
            env,
            move || to_json(inner.cache_node_modules(Path::new(&source_node_modules_path))?),
            |_, v| Ok(v),
        )
    }

    /// Restores the node_modules folder at `targetNodeModulesPath` from its project's entry.
    /// An existing target is refused unless `replace` (and always when it is not a node_modules
    /// folder). A miss resolves to `{ restored: false, reason }`; other failures reject.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn restore_node_modules<'env>(
        &self,
        env: &'env Env,
        target_node_modules_path: String,
        replace: Option<bool>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let inner = self.inner.clone();
        spawn_blocking(
            env,
            move || {
                let opts = vibetrees_core::cache::RestoreOptions {
                    method: inner.method(),
                    replace: replace.unwrap_or(false),
                    ..Default::default()
                };
                to_json(
                    inner.restore_node_modules_with(Path::new(&target_node_modules_path), &opts)?,
                )
            },
            |_, v| Ok(v),
        )
    }

    /// True when the cache holds an entry for the project at `projectPath` (synchronous).
    #[napi]
    pub fn is_cache_valid(&self, project_path: String) -> bool {
        self.inner.is_cache_valid(Path::new(&project_path))
    }

    /// The BuildKit environment for `docker compose` builds.
    #[napi]
    pub fn get_docker_cache_env(&self) -> HashMap<String, String> {
        CacheManager::get_docker_cache_env().into_iter().collect()
    }

    /// Entries, sizes, shared bytes and hit counts.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn stats<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let inner = self.inner.clone();
        spawn_blocking(env, move || to_json(inner.cache().stats()?), |_, v| Ok(v))
    }

    /// Checks every entry against its manifest; `evictBad` removes the damaged ones.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn verify<'env>(
        &self,
        env: &'env Env,
        evict_bad: Option<bool>,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let inner = self.inner.clone();
        let evict = evict_bad.unwrap_or(false);
        spawn_blocking(
            env,
            move || to_json(inner.cache().verify(evict)?),
            |_, v| Ok(v),
        )
    }

    /// Evicts least recently used entries until the cache fits in `budgetBytes`.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn prune<'env>(
        &self,
        env: &'env Env,
        budget_bytes: f64,
    ) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        if !(budget_bytes.is_finite() && budget_bytes >= 0.0) {
            return Err(invalid_argument(
                env,
                format!("budgetBytes must be a non-negative number, got {budget_bytes}"),
            ));
        }
        let inner = self.inner.clone();
        let budget = budget_bytes as u64;
        spawn_blocking(
            env,
            move || to_json(inner.cache().prune(budget)?),
            |_, v| Ok(v),
        )
    }

    /// Removes every entry.
    #[napi(ts_return_type = "Promise<any>")]
    pub fn clear<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, serde_json::Value>> {
        let inner = self.inner.clone();
        spawn_blocking(env, move || to_json(inner.cache().clear()?), |_, v| Ok(v))
    }
}
