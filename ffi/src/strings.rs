//! Strings the library allocates and hands to C, and their one way back: `vt_string_free`.

use crate::boundary::ffi_call_or;
use std::ffi::{CString, c_char};

/// Frees a string this library returned through a `char **..._out` parameter. `NULL` is a no-op.
///
/// Only strings from this library: never pass one from `malloc`, and never free one twice.
///
/// # Safety
/// `s` is NULL or a string returned by a `vt_` function and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_string_free(s: *mut c_char) {
    ffi_call_or((), || {
        if !s.is_null() {
            // SAFETY: `s` came from `CString::into_raw` in this library (caller's contract).
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
