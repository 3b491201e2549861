//! The C boundary: every exported function runs its body through [`ffi_call`] or [`ffi_call_or`].
//!
//! Inside, the body returns a Rust `Result`; a failure (or a caught panic) becomes a `vt_result`
//! and its message is stored as the calling thread's last error. No panic unwinds into C.

use crate::result::vt_result;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A failure to report to C: the status to return and the message for `vt_last_error_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status the call returns.
    pub code: vt_result,
    /// The whole message, with its cause chain.
    pub message: String,
}

impl Failure {
    /// A failure with this status and message.
    pub fn new(code: vt_result, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A NULL pointer where the argument `name` must not be NULL.
    pub fn null(name: &str) -> Self {
        Failure::new(
            vt_result::VT_NULL_ARGUMENT,
            format!("argument '{name}' is NULL"),
        )
    }
}

impl From<vibetrees_core::Error> for Failure {
    fn from(err: vibetrees_core::Error) -> Self {
        Failure::new(vt_result::from_core_error(&err), err.full_message())
    }
}

impl From<serde_json::Error> for Failure {
    fn from(err: serde_json::Error) -> Self {
        Failure::from(vibetrees_core::Error::from(err))
    }
}

/// Result type of an export's body.
pub type FfiResult<T> = Result<T, Failure>;

/// The last failure of this thread, as C sees it.
#[derive(Debug, Clone)]
pub(crate) struct LastError {
    /// The status that was returned.
    pub code: vt_result,
    /// Its message.
    pub message: String,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Records `failure` as this thread's last error.
pub(crate) fn set_last_error(failure: &Failure) {
    LAST_ERROR.with(|slot| {
        *slot.borrow_mut() = Some(LastError {
            code: failure.code,
            message: failure.message.clone(),
        })
    });
}

/// This thread's last error, if any call on it failed.
pub(crate) fn last_error() -> Option<LastError> {
    LAST_ERROR.with(|slot| slot.borrow().clone())
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs the body of a `vt_` function that returns a `vt_result`: `Ok` is `VT_OK`; an error is
/// recorded as the thread's last error and its status returned; a panic becomes `VT_PANIC`.
/// A successful call leaves the last error as it was (like `errno`).
pub fn ffi_call(body: impl FnOnce() -> FfiResult<()>) -> vt_result {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return vt_result::VT_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::new(
            vt_result::VT_PANIC,
            format!(
                "internal error: a panic was caught at the C boundary (a bug in vibetrees): {}",
                panic_text(payload.as_ref())
            ),
        ),
    };
    // Recording the error allocates; keep even that from unwinding into C.
    let code = failure.code;
    let _ = catch_unwind(AssertUnwindSafe(|| set_last_error(&failure)));
    code
}

/// Runs the body of a `vt_` function that returns something other than a `vt_result` (a pointer,
/// a bool, nothing): a panic is recorded as `VT_PANIC` in the last error and `fallback` returned.
pub fn ffi_call_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                set_last_error(&Failure::new(
                    vt_result::VT_PANIC,
                    format!(
                        "internal error: a panic was caught at the C boundary (a bug in vibetrees): {}",
                        panic_text(payload.as_ref())
                    ),
                ))
            }));
            fallback
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_vt_panic_with_its_message() {
        let r = ffi_call(|| panic!("boom {}", 42));
        assert_eq!(r, vt_result::VT_PANIC);
        let e = last_error().unwrap();
        assert_eq!(e.code, vt_result::VT_PANIC);
        assert!(e.message.contains("boom 42"), "{}", e.message);
    }

    #[test]
    fn an_error_is_recorded_and_success_keeps_it() {
        let r = ffi_call(|| Err(vibetrees_core::Error::NotFound("op-9".into()).into()));
        assert_eq!(r, vt_result::VT_NOT_FOUND);
        assert_eq!(ffi_call(|| Ok(())), vt_result::VT_OK);
        let e = last_error().unwrap();
        assert_eq!(e.code, vt_result::VT_NOT_FOUND);
        assert_eq!(e.message, "not found: op-9");
    }

    #[test]
    fn ffi_call_or_returns_the_fallback_on_panic() {
        let v: i32 = ffi_call_or(-1, || panic!("nope"));
        assert_eq!(v, -1);
        assert_eq!(last_error().unwrap().code, vt_result::VT_PANIC);
    }
}
