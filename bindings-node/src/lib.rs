//! `@vibetrees/native`: the Node.js binding of `vibetrees-core`, built with napi-rs v3.
//!
//! The core knows nothing of Node. This crate only converts values, maps errors to JS `Error`s
//! carrying the core's stable `code`, and implements the core's callback traits with threadsafe
//! functions. The thin JavaScript layer (`index.js`) keeps JavaScript values (task results) on the
//! JavaScript side; the native side passes only names.
#![deny(clippy::all)]
// napi-rs registers the `#[napi]` exports only in non-test builds, so the test build (which
// `cargo clippy --all-targets` checks) sees them as dead code.
#![cfg_attr(test, allow(dead_code))]

mod cache;
mod errors;
mod history;
mod optimizer;
mod profiler;
mod worktree;

use napi_derive::napi;

/// The version of the native core (`vibetrees-core`) this addon was built from.
#[napi]
pub fn core_version() -> &'static str {
    vibetrees_core::VERSION
}

/// Every error code a rejected promise or thrown error of this package can carry in `err.code`.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    vibetrees_core::Error::ALL_CODES.to_vec()
}
