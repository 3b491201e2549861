//! The trash of a `vt_worktree_manager`: worktrees removed with changes (`force`), kept for
//! `trashGrace`, listed and restored (the same shapes as Node `trashList` / `trashRestore` and
//! Python `trash_list` / `trash_restore`).

use crate::args::{json_c_string, required_out, required_ref, required_str};
use crate::boundary::ffi_call;
use crate::result::vt_result;
use crate::worktree::vt_worktree_manager;
use std::ffi::c_char;
use vibetrees_core::runtime::block_on;

/// Gives the worktrees kept in the trash, oldest first, as a JSON array `[{ name, originalPath,
/// registration, reason, trashedAtMs, expiresAtMs, location }]` in `*list_json_out` (free it with
/// `vt_string_free`). Errors: `VT_GIT`, `VT_NULL_ARGUMENT`.
///
/// # Safety
/// `manager` is a live handle; `list_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_trash_list(
    manager: *const vt_worktree_manager,
    list_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let out = unsafe { required_out(list_json_out, "list_json_out") }?;
        let list = m.inner.trash_list()?;
        *out = json_c_string(&list)?;
        Ok(())
    })
}

/// Brings the newest trash entry of worktree `name` back to its folder, registered again (its
/// index too: staged changes survive), and gives that entry as JSON `{ name, originalPath,
/// registration, reason, trashedAtMs, expiresAtMs, location }` in `*entry_json_out` (free it with
/// `vt_string_free`). Refused with nothing moved: `VT_NOT_FOUND` (no entry of that name),
/// `VT_ALREADY_EXISTS` (its folder or registration is taken again, or its branch is checked out
/// elsewhere), `VT_INVALID_ARGUMENT` (not a worktree name). Other errors: `VT_GIT`, `VT_IO`,
/// `VT_NULL_ARGUMENT`, `VT_INVALID_UTF8`.
///
/// # Safety
/// `manager` is a live handle; `name` is NUL-terminated; `entry_json_out` is valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_worktree_manager_trash_restore(
    manager: *const vt_worktree_manager,
    name: *const c_char,
    entry_json_out: *mut *mut c_char,
) -> vt_result {
    ffi_call(|| {
        let m = unsafe { required_ref(manager, "manager") }?;
        let name = unsafe { required_str(name, "name") }?;
        let out = unsafe { required_out(entry_json_out, "entry_json_out") }?;
        let entry = block_on(m.inner.trash_restore(name))?;
        *out = json_c_string(&entry)?;
        Ok(())
    })
}
