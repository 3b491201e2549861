//! The pool of spare worktrees of a `vt_worktree_manager` (`poolSize`, `poolMaxBytes`): fill it,
//! clear it, look at it (the same shapes as Node `fillPool` / `clearPool` / `poolStatus` and
//! Python `fill_pool` / `clear_pool` / `pool_status`). A creation claims a spare by itself; its
//! result then says `"pool": { "claimed": true, "spareAgeMs": N }`.
//!
//! Owns only the argument checks and the JSON out of these three calls; what a spare is and how
//! the pool is kept is the core's (`vibetrees_core::worktree::pool`).

use crate::args::{json_c_string, optional_str, required_out, required_ref};
use crate::boundary::ffi_call;
use crate::result::vt_result;
use crate::worktree::vt_worktree_manager;
use std::ffi::c_char;
use vibetrees_core::runtime::block_on;

/// Fills the pool of spare worktrees for the ref `from` (NULL: the main worktree's branch) up to
/// `poolSize` within `poolMaxBytes`, now, and gives the fill report as JSON `{ from, made,
/// updated, discarded, stopped }` in `*report_json_out` (free it with `vt_string_free`). `from` is the
/// full ref filled for (or null), `stopped` why it stopped short (or null). Blocks the calling
/// thread until the spares are made (the work runs on a low-priority library thread). Errors:
/// `VT_NOT_FOUND` (`from` is no ref), `VT_LOCK`, `VT_GIT`, `VT_IO`, `VT_NULL_ARGUMENT`,
/// `VT_INVALID_UTF8`.
///
/// Threads: safe to call from any thread, also while creations run on the same manager (a fill
/// yields to them).
///
/// # Safety
/// `manager` is a live handle; `from` is NULL or NUL-terminated; `report_json_out` is valid for
/// one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_pool_fill(
    manager: *const vt_worktree_manager,
    from: *const c_char,
    report_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let from = unsafe { optional_str(from, "from") }?;
        let out = unsafe { required_out(report_json_out, "report_json_out") }?;
        let report = block_on(m.inner.fill_pool(from))?;
        *out = json_c_string(&report)?;
        Ok(())
    })
}

/// Deletes every spare of the pool that no creation is claiming, and the debris of dead fills,
/// and writes how many were removed to `*removed_out` (if not NULL). Nothing outside the pool's
/// folder is touched. Blocks the calling thread. Errors: `VT_LOCK`, `VT_IO`, `VT_NULL_ARGUMENT`.
///
/// Threads: safe to call from any thread.
///
/// # Safety
/// `manager` is a live handle; `removed_out` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_pool_clear(
    manager: *const vt_worktree_manager,
    removed_out: *mut usize,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { crate::args::optional_out(removed_out) };
        let removed = block_on(m.inner.clear_pool())?;
        if let Some(out) = out {
            *out = removed;
        }
        Ok(())
    })
}

/// Gives the pool as JSON `{ dir, size, maxBytes, bytes, spares: [{ path, commit, from,
/// cacheKey, nodeModules, bytes, files, ageMs }] }` (spares oldest first; `size` and `maxBytes`
/// are the settings `poolSize` and `poolMaxBytes`) in `*status_json_out` (free it with
/// `vt_string_free`). Reads the pool's folder on the calling thread. Errors: `VT_NULL_ARGUMENT`.
///
/// Threads: safe to call from any thread.
///
/// # Safety
/// `manager` is a live handle; `status_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_pool_status(
    manager: *const vt_worktree_manager,
    status_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { required_out(status_json_out, "status_json_out") }?;
        *out = json_c_string(&m.inner.pool_status())?;
        Ok(())
    })
}
