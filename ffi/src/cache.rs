//! `vt_cache`: the node_modules cache (populate, restore, validity, stats, verify, prune), with the
//! original VibeTrees semantics: the project is the folder that holds the node_modules path.

use crate::args::{
    into_c_string, json_c_string, optional_json, required_out, required_ref, required_str,
};
use crate::boundary::{ffi_call, ffi_call_or};
use crate::gate::CallGate;
use crate::profiler::vt_profiler;
use crate::result::vt_result;
use serde::Deserialize;
use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vibetrees_core::cache::{
    CacheKey, CacheManager, CacheManagerOptions, CacheOptions, RestoreMethod, RestoreOptions,
};

/// A node_modules cache (opaque). Thread-safe: one handle may be used from several threads at
/// once (the cache takes its own locks); `vt_cache_free` must not race with other calls on it.
pub struct vt_cache {
    inner: CacheManager,
    method: RestoreMethod,
}

/// Progress of a long file operation: `done` of `total` nodes placed so far. Called on library
/// worker threads (possibly several, but never two calls at once for one operation), at a bounded
/// rate (about 20 times a second) and once at the end with `done == total`; never after the call
/// that took it returns. It must return quickly, and normally: no `longjmp` out of it, no C++
/// exception through it.
pub type vt_count_progress_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, done: u64, total: u64)>;

/// The options JSON of `vt_cache_new`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CacheJsonOptions {
    cache_dir: Option<PathBuf>,
    method: Option<String>,
    workers: Option<usize>,
}

/// Opens (creating it if needed) a node_modules cache. `options_json` may be NULL (defaults) or a
/// JSON object `{ "cacheDir": "/path", "method": "auto" | "hardlink" | "clone" | "copy" |
/// "clone-or-copy", "workers": 4 }` (all optional; the folder defaults to `~/.vibetrees/cache`,
/// the method to `auto`: hardlink, falling back per file to reflink then copy). `profiler` may be
/// NULL; otherwise each phase of populate / restore / verify is recorded there.
/// On success `*cache_out` receives the handle; free it with `vt_cache_free`.
/// Errors: `VT_PARSE` (bad JSON, unknown key), `VT_INVALID_ARGUMENT` (unknown method), `VT_IO`
/// (the folder cannot be made), `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `options_json` is NULL or NUL-terminated; `profiler` is NULL or a live handle; `cache_out` is
/// valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_new(
    options_json: *const c_char,
    profiler: *const vt_profiler,
    cache_out: *mut *mut vt_cache,
) -> vt_result {
    ffi_call(|| {
        let out = unsafe { required_out(cache_out, "cache_out") }?;
        let opts: CacheJsonOptions = unsafe { optional_json(options_json, "options_json") }?;
        let method = match &opts.method {
            Some(m) => RestoreMethod::parse(m)?,
            None => RestoreMethod::default(),
        };
        // SAFETY: NULL or a live handle.
        let profiler = unsafe { profiler.as_ref() }.map(|p| Arc::clone(&p.inner));
        let inner = CacheManager::new(CacheManagerOptions {
            cache: CacheOptions {
                cache_dir: opts.cache_dir,
                workers: opts.workers,
                profiler,
            },
            method,
        })?;
        *out = Box::into_raw(Box::new(vt_cache { inner, method }));
        Ok(())
    })
}

/// Frees a cache handle (the cache on disk stays). `NULL` is a no-op.
///
/// # Safety
/// `cache` is NULL or a handle from `vt_cache_new`, not yet freed, not in use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_free(cache: *mut vt_cache) {
    ffi_call_or((), || {
        if !cache.is_null() {
            // SAFETY: from `Box::into_raw` in `vt_cache_new`.
            drop(unsafe { Box::from_raw(cache) });
        }
    })
}

/// Caches the node_modules folder at `source_node_modules` under the key of its project (the
/// folder that holds it: its lockfiles and package.json). Blocks until done. On success
/// `*report_json_out` receives `{ key, outcome: "created" | "existed", files, dirs, symlinks,
/// bytes, durationMs, phases, ... }` (free it with `vt_string_free`).
/// Errors: `VT_NOT_FOUND` (no package.json or no such folder), `VT_IO`, `VT_CACHE`, `VT_LOCK`,
/// `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `cache` is a live handle; `source_node_modules` is NUL-terminated; `report_json_out` is valid
/// for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_populate(
    cache: *const vt_cache,
    source_node_modules: *const c_char,
    report_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let c = unsafe { required_ref(cache, "cache") }?;
        let source = unsafe { required_str(source_node_modules, "source_node_modules") }?;
        let out = unsafe { required_out(report_json_out, "report_json_out") }?;
        let report = c.inner.cache_node_modules(Path::new(source))?;
        *out = json_c_string(&report)?;
        Ok(())
    })
}

/// Restores the node_modules folder at `target_node_modules` from the entry of its project's key.
/// An existing target is refused: `VT_INVALID_ARGUMENT` when it is not a node_modules folder,
/// `VT_ALREADY_EXISTS` when it is one (replace it with [`vt_cache_restore_with`] and
/// `{"replace": true}`). Blocks until done. `progress` may be NULL;
/// otherwise it is called as `vt_count_progress_fn` says, with `userdata`, and never after this
/// call returns (userdata may be freed then).
/// On success `*outcome_json_out` receives `{ restored: true|false, key, stats: { files, bytes,
/// linked, cloned, copied, methodUsed, durationMs, ... } | null, reason }`: a cache miss (no entry,
/// no package.json, a mutated entry that was evicted) is a success with `restored: false` and the
/// reason. Errors: `VT_IO` (the target cannot be written), `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `cache` is a live handle; `target_node_modules` is NUL-terminated; `outcome_json_out` is valid
/// for one write; `progress`, if not NULL, is safe to call from other threads with `userdata`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_restore(
    cache: *const vt_cache,
    target_node_modules: *const c_char,
    progress: vt_count_progress_fn,
    userdata: *mut c_void,
    outcome_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        // SAFETY: forwarded contract; a NULL options string is the defaults.
        unsafe {
            restore(
                cache,
                target_node_modules,
                std::ptr::null(),
                progress,
                userdata,
                outcome_json_out,
            )
        }
    })
}

/// Options of [`vt_cache_restore_with`] (JSON, camelCase).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RestoreCallOptions {
    /// Replace an existing node_modules target.
    #[serde(default)]
    replace: bool,
}

/// [`vt_cache_restore`] with options: `options_json` is `{"replace": bool}` or NULL (false). With
/// `replace`, an existing node_modules folder at the target is replaced atomically; a target
/// that is not a node_modules folder is refused all the same. Errors as [`vt_cache_restore`],
/// plus `VT_PARSE` for bad options.
///
/// # Safety
/// As [`vt_cache_restore`]; `options_json`, if not NULL, is NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_restore_with(
    cache: *const vt_cache,
    target_node_modules: *const c_char,
    options_json: *const c_char,
    progress: vt_count_progress_fn,
    userdata: *mut c_void,
    outcome_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        // SAFETY: forwarded contract.
        unsafe {
            restore(
                cache,
                target_node_modules,
                options_json,
                progress,
                userdata,
                outcome_json_out,
            )
        }
    })
}

/// The body of [`vt_cache_restore_with`] (called inside its panic boundary).
///
/// # Safety
/// As [`vt_cache_restore_with`].
unsafe fn restore(
    cache: *const vt_cache,
    target_node_modules: *const c_char,
    options_json: *const c_char,
    progress: vt_count_progress_fn,
    userdata: *mut c_void,
    outcome_json_out: *mut *mut c_char,
) -> crate::boundary::FfiResult<()> {
    {
        let c = unsafe { required_ref(cache, "cache") }?;
        let target = unsafe { required_str(target_node_modules, "target_node_modules") }?;
        let call: RestoreCallOptions =
            unsafe { crate::args::optional_json(options_json, "options_json") }?;
        let out = unsafe { required_out(outcome_json_out, "outcome_json_out") }?;
        let gate = Arc::new(CallGate::default());
        let progress = progress.map(|f| {
            let gate = Arc::clone(&gate);
            let userdata = crate::gate::UserData(userdata);
            let one_at_a_time = std::sync::Mutex::new(());
            let sink: vibetrees_core::progress::CountProgress =
                Arc::new(move |done: u64, total: u64| {
                    if let Some(_ticket) = gate.enter() {
                        let _serial = one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
                        // SAFETY: the C contract of `vt_count_progress_fn`.
                        unsafe { f(userdata.get(), done, total) }
                    }
                });
            sink
        });
        let result = c.inner.restore_node_modules_with(
            Path::new(target),
            &RestoreOptions {
                method: c.method,
                progress,
                replace: call.replace,
                ..Default::default()
            },
        );
        gate.close_and_wait();
        *out = json_c_string(&result?)?;
        Ok(())
    }
}

/// Sets `*valid_out` to whether the cache holds an entry for the project in `project_dir` (its
/// lockfiles and package.json decide the key). Cheap; a project without package.json is simply
/// not valid. Errors: `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `cache` is a live handle; `project_dir` is NUL-terminated; `valid_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_is_valid(
    cache: *const vt_cache,
    project_dir: *const c_char,
    valid_out: *mut bool,
) -> vt_result {
    ffi_call(|| {
        let c = unsafe { required_ref(cache, "cache") }?;
        let project = unsafe { required_str(project_dir, "project_dir") }?;
        let out = unsafe { required_out(valid_out, "valid_out") }?;
        *out = c.inner.is_cache_valid(Path::new(project));
        Ok(())
    })
}

/// Gives the cache key of the project in `project_dir` (64 lowercase hex digits) in `*key_out`
/// (free it with `vt_string_free`). Errors: `VT_NOT_FOUND` (no package.json), `VT_IO`, `VT_PARSE`,
/// `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `project_dir` is NUL-terminated; `key_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_key(
    project_dir: *const c_char,
    key_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let project = unsafe { required_str(project_dir, "project_dir") }?;
        let out = unsafe { required_out(key_out, "key_out") }?;
        let key = CacheKey::from_project_dir(Path::new(project))?;
        *out = into_c_string(key.as_str().to_owned())?;
        Ok(())
    })
}

/// Gives the cache's statistics `{ entries, bytes, apparentBytes, files, hits, misses, ... }` in
/// `*stats_json_out` (free it with `vt_string_free`). Errors: `VT_IO`, `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `cache` is a live handle; `stats_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_stats(
    cache: *const vt_cache,
    stats_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let c = unsafe { required_ref(cache, "cache") }?;
        let out = unsafe { required_out(stats_json_out, "stats_json_out") }?;
        *out = json_c_string(&c.inner.cache().stats()?)?;
        Ok(())
    })
}

/// Checks every entry against its listing (sizes, modes, mtimes of the files on disk); with
/// `evict_bad`, entries found mutated or half-written are removed. On success `*report_json_out`
/// receives `{ checked, bad: [{ key, reason }], evicted, ... }` (free it with `vt_string_free`).
/// Errors: `VT_IO`, `VT_LOCK`, `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `cache` is a live handle; `report_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_verify(
    cache: *const vt_cache,
    evict_bad: bool,
    report_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let c = unsafe { required_ref(cache, "cache") }?;
        let out = unsafe { required_out(report_json_out, "report_json_out") }?;
        *out = json_c_string(&c.inner.cache().verify(evict_bad)?)?;
        Ok(())
    })
}

/// Evicts least recently used entries until the cache holds at most `budget_bytes` (0 empties it).
/// On success `*report_json_out` receives the prune report (free it with `vt_string_free`).
/// Errors: `VT_IO`, `VT_LOCK`, `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `cache` is a live handle; `report_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_prune(
    cache: *const vt_cache,
    budget_bytes: u64,
    report_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let c = unsafe { required_ref(cache, "cache") }?;
        let out = unsafe { required_out(report_json_out, "report_json_out") }?;
        *out = json_c_string(&c.inner.cache().prune(budget_bytes)?)?;
        Ok(())
    })
}

/// Gives the environment for faster container builds as a JSON object
/// `{ "DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain", "COMPOSE_DOCKER_CLI_BUILD": "1" }` in
/// `*env_json_out` (free it with `vt_string_free`). Errors: `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `env_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_cache_docker_env(env_json_out: *mut *mut c_char) -> vt_result {
    ffi_call(|| {
        let out = unsafe { required_out(env_json_out, "env_json_out") }?;
        *out = json_c_string(&CacheManager::get_docker_cache_env())?;
        Ok(())
    })
}
