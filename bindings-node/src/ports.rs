//! `PortRegistry` (native part): the server's port registry object over the core's
//! [`ServerPortRegistry`]. Reads go to the file every time; every change is a locked
//! read-modify-write of the keys it changes. The synchronous methods (the server's `allocate`,
//! `release`, `getWorktreePorts`, `syncFromWorktrees`, `isPortInUseSync`) block the calling thread
//! for one small file read/write under the lock; the `*Atomic` methods and `isPortInUse` run off
//! the JS thread and return Promises. Maps cross as JSON text, so their key order (the file's,
//! and the order `allocateAtomic` allocates in) is kept.

use indexmap::IndexMap;
use napi::Env;
use napi::bindgen_prelude::PromiseRaw;
use napi_derive::napi;
use vibetrees_core::services::server_registry::{ServerPortRegistry, WorktreeRef, port_in_use};

use crate::errors::{core_error, invalid_argument, spawn_blocking};

/// The engine behind the JS `PortRegistry`. Not meant to be used directly.
#[napi]
pub struct NativePortRegistry {
    inner: ServerPortRegistry,
}

fn check_port(env: &Env, port: f64, what: &str) -> napi::Result<u16> {
    if port.fract() != 0.0 || !(1.0..=65535.0).contains(&port) {
        return Err(invalid_argument(
            env,
            format!("{what} must be an integer 1..65535, got {port}"),
        ));
    }
    Ok(port as u16)
}

#[napi]
impl NativePortRegistry {
    /// `new PortRegistry(projectRoot)`: the registry of `~/.vibetrees/<parent>-<child>/ports.json`.
    #[napi(constructor)]
    pub fn new(env: Env, project_root: String) -> napi::Result<Self> {
        let inner = ServerPortRegistry::new(&project_root).map_err(|e| core_error(&env, &e))?;
        Ok(Self { inner })
    }

    /// `projectRoot` as given.
    #[napi(getter)]
    pub fn project_root(&self) -> String {
        self.inner.project_root().to_string()
    }

    /// `registryDir`.
    #[napi(getter)]
    pub fn registry_dir(&self) -> String {
        self.inner.registry_dir().to_string_lossy().into_owned()
    }

    /// `registryFile`.
    #[napi(getter)]
    pub fn registry_file(&self) -> String {
        self.inner.registry_file().to_string_lossy().into_owned()
    }

    /// Other project roots sharing this registry's file name (empty when none).
    #[napi(getter)]
    pub fn shared_with(&self) -> Vec<String> {
        self.inner.shared_with().to_vec()
    }

    /// The whole map, read from the file now, as JSON text (file order).
    #[napi]
    pub fn load_json(&self, env: Env) -> napi::Result<String> {
        let map = self.inner.load().map_err(|e| core_error(&env, &e))?;
        Ok(serde_json::to_string(&map)?)
    }

    /// Applies the changes from `base` to `now` (two maps as JSON text) to the file, under the lock.
    #[napi]
    pub fn save_changes(&self, env: Env, base: String, now: String) -> napi::Result<u32> {
        let base: IndexMap<String, serde_json::Value> = serde_json::from_str(&base)
            .map_err(|e| invalid_argument(&env, format!("save: {e}")))?;
        let now: IndexMap<String, serde_json::Value> = serde_json::from_str(&now)
            .map_err(|e| invalid_argument(&env, format!("save: ports must be an object: {e}")))?;
        let n = self
            .inner
            .save_changes(&base, &now)
            .map_err(|e| core_error(&env, &e))?;
        Ok(n as u32)
    }

    /// `allocate(worktreeName, service, basePort)` (synchronous): the port.
    #[napi]
    pub fn allocate(
        &self,
        env: Env,
        worktree_name: String,
        service: String,
        base_port: f64,
    ) -> napi::Result<u32> {
        let base = check_port(&env, base_port, "allocate: basePort")?;
        let port = self
            .inner
            .allocate(&worktree_name, &service, base)
            .map_err(|e| core_error(&env, &e))?;
        Ok(u32::from(port))
    }

    /// `release(worktreeName)` (synchronous): how many keys were removed.
    #[napi]
    pub fn release(&self, env: Env, worktree_name: String) -> napi::Result<u32> {
        let n = self
            .inner
            .release(&worktree_name)
            .map_err(|e| core_error(&env, &e))?;
        Ok(n as u32)
    }

    /// `getWorktreePorts(worktreeName)`: `{ service: port }` as JSON text, read from the file now.
    #[napi]
    pub fn get_worktree_ports_json(&self, env: Env, worktree_name: String) -> napi::Result<String> {
        let map = self
            .inner
            .worktree_ports(&worktree_name)
            .map_err(|e| core_error(&env, &e))?;
        Ok(serde_json::to_string(&map)?)
    }

    /// `syncFromWorktrees([{ name, path }])`: how many keys it added.
    #[napi(ts_args_type = "worktrees: Array<{ name: string, path: string }>")]
    pub fn sync_from_worktrees(&self, env: Env, worktrees: serde_json::Value) -> napi::Result<u32> {
        let list: Vec<WorktreeRef> = serde_json::from_value(worktrees).map_err(|e| {
            invalid_argument(
                &env,
                format!("syncFromWorktrees: worktrees must be an array of {{ name, path }}: {e}"),
            )
        })?;
        let n = self
            .inner
            .sync_from_worktrees(&list)
            .map_err(|e| core_error(&env, &e))?;
        Ok(n as u32)
    }

    /// `allocateAtomic(worktreeName, { service: basePort })` with the services as JSON text (their
    /// order is the allocation order): a Promise of `{ service: port }` as JSON text.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn allocate_atomic_json<'env>(
        &self,
        env: &'env Env,
        worktree_name: String,
        services: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let map: IndexMap<String, serde_json::Value> =
            serde_json::from_str(&services).map_err(|e| {
                invalid_argument(
                    env,
                    format!(
                        "allocateAtomic: services must be an object {{ service: basePort }}: {e}"
                    ),
                )
            })?;
        let mut list = Vec::with_capacity(map.len());
        for (service, base) in map {
            let base = base.as_f64().ok_or_else(|| {
                invalid_argument(
                    env,
                    format!("allocateAtomic: base port of {service} must be a number"),
                )
            })?;
            let port = check_port(env, base, &format!("allocateAtomic: {service}"))?;
            list.push((service, port));
        }
        let inner = self.inner.clone();
        spawn_blocking(
            env,
            move || {
                Ok(serde_json::to_string(
                    &inner.allocate_many(&worktree_name, &list)?,
                )?)
            },
            |_, text| Ok(text),
        )
    }

    /// `releaseAtomic(worktreeName)`: a Promise of how many keys were removed.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn release_atomic<'env>(
        &self,
        env: &'env Env,
        worktree_name: String,
    ) -> napi::Result<PromiseRaw<'env, u32>> {
        let inner = self.inner.clone();
        spawn_blocking(
            env,
            move || inner.release(&worktree_name),
            |_, n| Ok(n as u32),
        )
    }
}

/// True when something listens on TCP `port` here (a bind probe; no process is started).
#[napi]
pub fn is_port_in_use_sync(env: Env, port: f64) -> napi::Result<bool> {
    Ok(port_in_use(check_port(&env, port, "isPortInUse: port")?))
}
