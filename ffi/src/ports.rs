//! `vt_port_registry`: the VibeTrees server's port registry object
//! (`~/.vibetrees/<parent>-<child>/ports.json`) over the core's [`ServerPortRegistry`].
//!
//! Never stale: every read goes to the file; every change is a read-modify-write under the
//! proper-lockfile lock (the one the Node server takes) touching only the keys it changes. Maps
//! cross as JSON objects in the file's key order.

use crate::args::{
    into_c_string, json_c_string, optional_out, required_out, required_ref, required_str,
};
use crate::boundary::{Failure, ffi_call, ffi_call_or};
use crate::result::vt_result;
use indexmap::IndexMap;
use std::ffi::c_char;
use vibetrees_core::services::ports::RegistryEntries;
use vibetrees_core::services::server_registry::{ServerPortRegistry, WorktreeRef, port_in_use};

/// The ports registry of one project (opaque). Thread-safe: every call locks the file; only
/// `vt_port_registry_free` must not race with other calls on the same handle.
pub struct vt_port_registry {
    inner: ServerPortRegistry,
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, Failure> {
    serde_json::from_str(text).map_err(|e| {
        Failure::from(vibetrees_core::Error::Parse {
            what: format!("argument '{what}'"),
            message: e.to_string(),
        })
    })
}

fn invalid(message: String) -> Failure {
    Failure::from(vibetrees_core::Error::InvalidArgument(message))
}

/// Opens the registry of the project at `project_root` (named, as the server names it, by the
/// path's last two components; the folder is created). When another project's root names the same
/// registry, it still opens (the server's file name is kept) and `vt_port_registry_shared_with`
/// lists those roots. On success `*registry_out` receives the handle; free it with
/// `vt_port_registry_free`.
/// Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`, `VT_INVALID_ARGUMENT` (a root with no path
/// component, or HOME not set), `VT_IO`.
///
/// # Safety
/// `project_root` is NUL-terminated; `registry_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_new(
    project_root: *const c_char,
    registry_out: *mut *mut vt_port_registry,
) -> vt_result {
    ffi_call(|| {
        let root = unsafe { required_str(project_root, "project_root") }?;
        let out = unsafe { required_out(registry_out, "registry_out") }?;
        let inner = ServerPortRegistry::new(root)?;
        *out = Box::into_raw(Box::new(vt_port_registry { inner }));
        Ok(())
    })
}

/// Frees a registry handle. `NULL` is a no-op.
///
/// # Safety
/// `registry` is NULL or a handle from `vt_port_registry_new`, not yet freed, not in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_free(registry: *mut vt_port_registry) {
    ffi_call_or((), || {
        if !registry.is_null() {
            // SAFETY: the handle came from `Box::into_raw` in `vt_port_registry_new`.
            drop(unsafe { Box::from_raw(registry) });
        }
    })
}

/// `*path_out` receives the registry file (`registryFile`: `<registryDir>/ports.json`); free it
/// with `vt_string_free`. Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `registry` is a live handle; `path_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_file(
    registry: *const vt_port_registry,
    path_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let out = unsafe { required_out(path_out, "path_out") }?;
        *out = into_c_string(r.inner.registry_file().to_string_lossy().into_owned())?;
        Ok(())
    })
}

/// `*roots_json_out` receives a JSON array of the other project roots that name this registry
/// (`[]` when it is this project's alone); free it with `vt_string_free`.
///
/// # Safety
/// `registry` is a live handle; `roots_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_shared_with(
    registry: *const vt_port_registry,
    roots_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let out = unsafe { required_out(roots_json_out, "roots_json_out") }?;
        *out = json_c_string(r.inner.shared_with())?;
        Ok(())
    })
}

/// `*ports_json_out` receives the whole map `{ "<worktree>:<service>": port }`, read from the file
/// now (`{}` when there is none); free it with `vt_string_free`.
/// Errors: `VT_PARSE` (the file is not a JSON object: left untouched), `VT_IO`.
///
/// # Safety
/// `registry` is a live handle; `ports_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_ports(
    registry: *const vt_port_registry,
    ports_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let out = unsafe { required_out(ports_json_out, "ports_json_out") }?;
        *out = json_c_string(&r.inner.load()?)?;
        Ok(())
    })
}

/// `allocate(worktree, service, basePort)`: an existing key keeps its port, else the next port up
/// from `base_port` that is neither registered nor listening, written under the lock.
/// `*port_out` receives it. Errors: `VT_INVALID_ARGUMENT` (base_port 0, empty service, a worktree
/// name with `:`; or no free port up to 65535), `VT_LOCK` (the lock stayed held), `VT_PARSE`, `VT_IO`.
///
/// # Safety
/// The strings are NUL-terminated; `registry` is a live handle; `port_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_allocate(
    registry: *const vt_port_registry,
    worktree: *const c_char,
    service: *const c_char,
    base_port: u16,
    port_out: *mut u16,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let worktree = unsafe { required_str(worktree, "worktree") }?;
        let service = unsafe { required_str(service, "service") }?;
        let out = unsafe { required_out(port_out, "port_out") }?;
        *out = r.inner.allocate(worktree, service, base_port)?;
        Ok(())
    })
}

/// `allocateAtomic(worktree, services)`: `services_json` is `{ "<service>": basePort, ... }`;
/// each is allocated in that order under one lock. `*ports_json_out` receives
/// `{ "<service>": port }`; free it with `vt_string_free`. Errors: as `vt_port_registry_allocate`,
/// and `VT_PARSE` for bad JSON.
///
/// # Safety
/// The strings are NUL-terminated; `registry` is a live handle; `ports_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_allocate_atomic(
    registry: *const vt_port_registry,
    worktree: *const c_char,
    services_json: *const c_char,
    ports_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let worktree = unsafe { required_str(worktree, "worktree") }?;
        let text = unsafe { required_str(services_json, "services_json") }?;
        let out = unsafe { required_out(ports_json_out, "ports_json_out") }?;
        let map: IndexMap<String, serde_json::Value> = parse_json(text, "services_json")?;
        let mut services = Vec::with_capacity(map.len());
        for (service, base) in map {
            let base = base
                .as_u64()
                .and_then(|b| u16::try_from(b).ok())
                .filter(|b| *b != 0)
                .ok_or_else(|| invalid(format!("base port of {service} must be 1..65535")))?;
            services.push((service, base));
        }
        *out = json_c_string(&r.inner.allocate_many(worktree, &services)?)?;
        Ok(())
    })
}

/// `release(worktree)` / `releaseAtomic`: removes every `<worktree>:*` key under the lock.
/// `removed_out` may be NULL; otherwise it receives how many keys were removed.
///
/// # Safety
/// `worktree` is NUL-terminated; `registry` is a live handle; `removed_out` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_release(
    registry: *const vt_port_registry,
    worktree: *const c_char,
    removed_out: *mut usize,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let worktree = unsafe { required_str(worktree, "worktree") }?;
        let n = r.inner.release(worktree)?;
        if let Some(out) = unsafe { optional_out(removed_out) } {
            *out = n;
        }
        Ok(())
    })
}

/// `getWorktreePorts(worktree)`: `*ports_json_out` receives `{ "<service>": port }`, read from the
/// file now; free it with `vt_string_free`.
///
/// # Safety
/// `worktree` is NUL-terminated; `registry` is a live handle; `ports_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_worktree_ports(
    registry: *const vt_port_registry,
    worktree: *const c_char,
    ports_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let worktree = unsafe { required_str(worktree, "worktree") }?;
        let out = unsafe { required_out(ports_json_out, "ports_json_out") }?;
        *out = json_c_string(&r.inner.worktree_ports(worktree)?)?;
        Ok(())
    })
}

/// `syncFromWorktrees(worktrees)`: `worktrees_json` is `[{ "name": "...", "path": "..." }]`; each
/// `<path>/.env` line `NAME_PORT=<digits>` missing from the registry is added under the lock.
/// `added_out` may be NULL; otherwise it receives how many keys were added.
///
/// # Safety
/// `worktrees_json` is NUL-terminated; `registry` is a live handle; `added_out` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_sync_from_worktrees(
    registry: *const vt_port_registry,
    worktrees_json: *const c_char,
    added_out: *mut usize,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let text = unsafe { required_str(worktrees_json, "worktrees_json") }?;
        let list: Vec<WorktreeRef> = parse_json(text, "worktrees_json")?;
        let n = r.inner.sync_from_worktrees(&list)?;
        if let Some(out) = unsafe { optional_out(added_out) } {
            *out = n;
        }
        Ok(())
    })
}

/// `save()` for a host that edits a copy of the map: writes what changed from `base_json` (the map
/// as read) to `now_json` (as edited), under the lock: keys added or changed are set, keys deleted
/// are removed, every other key stays as the file has it. `changed_out` may be NULL.
///
/// # Safety
/// The strings are NUL-terminated; `registry` is a live handle; `changed_out` is NULL or valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_port_registry_save_changes(
    registry: *const vt_port_registry,
    base_json: *const c_char,
    now_json: *const c_char,
    changed_out: *mut usize,
) -> vt_result {
    ffi_call(|| {
        let r = unsafe { required_ref(registry, "registry") }?;
        let base: RegistryEntries = parse_json(
            unsafe { required_str(base_json, "base_json") }?,
            "base_json",
        )?;
        let now: RegistryEntries =
            parse_json(unsafe { required_str(now_json, "now_json") }?, "now_json")?;
        let n = r.inner.save_changes(&base, &now)?;
        if let Some(out) = unsafe { optional_out(changed_out) } {
            *out = n;
        }
        Ok(())
    })
}

/// `isPortInUse(port)`: `*in_use_out` receives true when something listens on TCP `port` here (a
/// bind probe, no process started). Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `in_use_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_is_port_in_use(port: u16, in_use_out: *mut bool) -> vt_result {
    ffi_call(|| {
        let out = unsafe { required_out(in_use_out, "in_use_out") }?;
        *out = port_in_use(port);
        Ok(())
    })
}
