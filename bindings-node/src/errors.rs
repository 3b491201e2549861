//! Core errors as JavaScript `Error`s: `err.code` is [`vibetrees_core::Error::code`] and
//! `err.message` the full message with its cause chain.

use std::future::Future;
use std::ptr;

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{Env, Unknown, sys};

/// A JS `Error` value with `code` and `message`, created on the JS thread.
pub(crate) fn js_error_value(
    env: sys::napi_env,
    code: &str,
    message: &str,
) -> napi::Result<sys::napi_value> {
    let mut code_value = ptr::null_mut();
    let mut message_value = ptr::null_mut();
    let mut error = ptr::null_mut();
    // SAFETY: `env` is the live environment of the current JS-thread call; the strings are
    // passed with their byte lengths.
    unsafe {
        napi::check_status!(sys::napi_create_string_utf8(
            env,
            code.as_ptr().cast(),
            code.len() as isize,
            &mut code_value
        ))?;
        napi::check_status!(sys::napi_create_string_utf8(
            env,
            message.as_ptr().cast(),
            message.len() as isize,
            &mut message_value
        ))?;
        napi::check_status!(sys::napi_create_error(
            env,
            code_value,
            message_value,
            &mut error
        ))?;
    }
    Ok(error)
}

/// A `napi::Error` that, thrown or used to reject, becomes a JS `Error` with `code` and message.
pub(crate) fn coded_error(env: &Env, code: &str, message: &str) -> napi::Error {
    match js_error_value(env.raw(), code, message) {
        // SAFETY: the value was just created in this environment.
        Ok(value) => napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), value) }),
        Err(e) => e,
    }
}

/// The JS form of a core error.
pub(crate) fn core_error(env: &Env, err: &vibetrees_core::Error) -> napi::Error {
    coded_error(env, err.code(), &err.full_message())
}

/// A programmer error (wrong argument type or value): a JS `TypeError`-like error with code
/// `INVALID_ARGUMENT`, thrown synchronously.
pub(crate) fn invalid_argument(env: &Env, message: impl AsRef<str>) -> napi::Error {
    coded_error(env, "INVALID_ARGUMENT", message.as_ref())
}

/// Runs `fut` off the JS thread and returns a Promise: resolved with `convert(value)` on the JS
/// thread, or rejected with a JS `Error` carrying the core error's `code` and full message.
pub(crate) fn spawn<'env, T, V, F, C>(
    env: &'env Env,
    fut: F,
    convert: C,
) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    F: Future<Output = vibetrees_core::Result<T>> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<V> + 'static,
{
    env.spawn_future_with_callback(
        async move { Ok(fut.await) },
        move |env, result| match result {
            Ok(value) => convert(env, value),
            Err(err) => Err(core_error(env, &err)),
        },
    )
}

/// Runs blocking `work` on a blocking thread of the async runtime (never the JS thread) and
/// returns a Promise of its result, like [`spawn`].
pub(crate) fn spawn_blocking<'env, T, V, W, C>(
    env: &'env Env,
    work: W,
    convert: C,
) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue,
    W: FnOnce() -> vibetrees_core::Result<T> + Send + 'static,
    C: FnOnce(&Env, T) -> napi::Result<V> + 'static,
{
    spawn(
        env,
        async move {
            match tokio::task::spawn_blocking(work).await {
                Ok(result) => result,
                Err(join) => Err(vibetrees_core::Error::Internal(format!(
                    "blocking task failed: {join}"
                ))),
            }
        },
        convert,
    )
}
