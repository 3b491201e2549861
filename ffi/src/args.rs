//! Checked conversions of C arguments: NULL and invalid UTF-8 become failures, never crashes.

use crate::boundary::{Failure, FfiResult};
use crate::result::vt_result;
use std::ffi::{CStr, CString, c_char};

/// A required C string argument as `&str`: NULL gives `VT_NULL_ARGUMENT`, bad UTF-8 `VT_INVALID_UTF8`,
/// both naming the argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the returned slice.
pub unsafe fn required_str<'a>(ptr: *const c_char, name: &str) -> FfiResult<&'a str> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes.to_str().map_err(|e| {
        Failure::new(
            vt_result::VT_INVALID_UTF8,
            format!(
                "argument '{name}' is not valid UTF-8 (first bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// An optional C string argument: NULL is `None`; otherwise as [`required_str`].
///
/// # Safety
/// As [`required_str`].
pub unsafe fn optional_str<'a>(ptr: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { required_str(ptr, name) }.map(Some)
    }
}

/// A required handle or input pointer as a shared reference.
///
/// # Safety
/// `ptr` is NULL or a valid pointer to a live `T` for `'a`.
pub unsafe fn required_ref<'a, T>(ptr: *const T, name: &str) -> FfiResult<&'a T> {
    // SAFETY: caller's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(name))
}

/// A required output pointer, checked before any work is done so a NULL `*_out` changes nothing.
///
/// # Safety
/// `ptr` is NULL or valid for writes of a `T`.
pub unsafe fn required_out<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(name))
}

/// An optional output pointer (NULL means "not wanted").
///
/// # Safety
/// `ptr` is NULL or valid for writes of a `T`.
pub unsafe fn optional_out<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: caller's contract.
    unsafe { ptr.as_mut() }
}

/// A required array of `len` items; `len == 0` accepts any pointer, NULL included.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` items for `'a`.
pub unsafe fn required_slice<'a, T>(ptr: *const T, len: usize, name: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL, `len` readable items by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Moves `s` into a newly allocated C string (freed with `vt_string_free`).
pub fn into_c_string(s: String) -> FfiResult<*mut c_char> {
    CString::new(s).map(CString::into_raw).map_err(|e| {
        Failure::new(
            vt_result::VT_INTERNAL,
            format!(
                "internal error: a returned string holds a NUL byte at offset {}",
                e.nul_position()
            ),
        )
    })
}

/// Serializes `value` as JSON into a newly allocated C string.
pub fn json_c_string<T: serde::Serialize + ?Sized>(value: &T) -> FfiResult<*mut c_char> {
    let s = serde_json::to_string(value).map_err(|e| {
        Failure::new(
            vt_result::VT_INTERNAL,
            format!("internal error: cannot serialize a result as JSON: {e}"),
        )
    })?;
    into_c_string(s)
}

/// Parses a JSON argument (`what` names it in the message) into `T`; NULL means `T::default()`.
///
/// # Safety
/// As [`required_str`].
pub unsafe fn optional_json<T: serde::de::DeserializeOwned + Default>(
    ptr: *const c_char,
    what: &str,
) -> FfiResult<T> {
    // SAFETY: forwarded contract.
    match unsafe { optional_str(ptr, what) }? {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Failure::from(vibetrees_core::Error::Parse {
                what: format!("argument '{what}'"),
                message: e.to_string(),
            })
        }),
    }
}
