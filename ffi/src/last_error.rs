//! The thread-local last error, as C reads it: `vt_last_error_code` and `vt_last_error_message`.

use crate::boundary::{ffi_call_or, last_error};
use crate::result::vt_result;
use std::ffi::c_char;

/// The status of the last `vt_` call that failed on the calling thread, or `VT_OK` if none has.
///
/// Errors are per thread: a failure on one thread is never seen by another. A successful call does
/// not clear it (like `errno`): read it right after a call returned something other than `VT_OK`.
#[unsafe(no_mangle)]
pub extern "C" fn vt_last_error_code() -> vt_result {
    ffi_call_or(vt_result::VT_PANIC, || {
        last_error().map_or(vt_result::VT_OK, |e| e.code)
    })
}

/// Copies the message of the calling thread's last failure, with its whole cause chain
/// (`outer: cause: cause`), into `buf` as a NUL-terminated UTF-8 string.
///
/// `*needed` (if `needed` is not NULL) is set to the buffer size the whole message needs, in bytes,
/// NUL included. If `len` is too small, the message is cut at a UTF-8 boundary so that it fits
/// (when `len > 0`) and `VT_BUFFER_TOO_SMALL` is returned: call again with `*needed` bytes. Pass
/// `buf = NULL, len = 0` to ask for the size only. With no failure yet, the message is `""`.
///
/// This function never changes the last error itself, even when it returns an error, so it can be
/// called again. Returns `VT_NULL_ARGUMENT` if `buf` is NULL while `len > 0`.
///
/// # Safety
/// `buf` is NULL or valid for writes of `len` bytes; `needed` is NULL or valid for one write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vt_last_error_message(
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> vt_result {
    ffi_call_or(vt_result::VT_PANIC, || {
        let message = last_error().map(|e| e.message).unwrap_or_default();
        let bytes = message.as_bytes();
        if let Some(needed) = unsafe { crate::args::optional_out(needed) } {
            *needed = bytes.len() + 1;
        }
        if buf.is_null() {
            return if len == 0 {
                vt_result::VT_BUFFER_TOO_SMALL
            } else {
                vt_result::VT_NULL_ARGUMENT
            };
        }
        if len == 0 {
            return vt_result::VT_BUFFER_TOO_SMALL;
        }
        let fits = bytes.len() < len;
        let mut take = bytes.len().min(len - 1);
        while !message.is_char_boundary(take) {
            take -= 1;
        }
        // SAFETY: `buf` is valid for `len` bytes and `take + 1 <= len`.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), take);
            *buf.add(take) = 0;
        }
        if fits {
            vt_result::VT_OK
        } else {
            vt_result::VT_BUFFER_TOO_SMALL
        }
    })
}
