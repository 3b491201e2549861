//! `vt_version`: the library's version.

use crate::boundary::ffi_call_or;
use std::ffi::c_char;

/// The version, NUL-terminated (the same as `vibetrees_core::VERSION`: the whole workspace shares it).
const VERSION_CSTR: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version as a static NUL-terminated string, e.g. `"0.1.0"`. Never free it.
#[unsafe(no_mangle)]
pub extern "C" fn vt_version() -> *const c_char {
    ffi_call_or(c"".as_ptr(), || VERSION_CSTR.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_the_core_version() {
        let v = unsafe { std::ffi::CStr::from_ptr(super::vt_version()) };
        assert_eq!(v.to_str().unwrap(), vibetrees_core::VERSION);
    }
}
