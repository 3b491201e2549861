//! The process-wide tokio runtime used by blocking entry points (CLI, C, Python).
//!
//! Async callers (the Node binding, Rust async code) never need it: every async API of the core runs
//! on whatever runtime polls it. Blocking callers use [`block_on`], which runs the future on a shared
//! multi-thread runtime created on first use, so no binding builds a runtime of its own.

use std::future::Future;
use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The shared runtime, created on first use with one worker per core (at least two).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("vibetrees-worker")
            .enable_all()
            .build()
            .expect("vibetrees: cannot start the tokio runtime")
    })
}

/// Runs `fut` to completion from synchronous code.
///
/// Called from inside a tokio runtime (a worker thread), it moves the wait off the async worker
/// with `block_in_place` instead of panicking; on a current-thread runtime it runs the future on
/// the shared runtime from a fresh thread.
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    match tokio::runtime::Handle::try_current() {
        Err(_) => runtime().block_on(fut),
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        Ok(_) => std::thread::scope(|s| s.spawn(|| runtime().block_on(fut)).join())
            .unwrap_or_else(|p| std::panic::resume_unwind(p)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn block_on_outside_and_inside_a_runtime() {
        assert_eq!(super::block_on(async { 1 + 1 }), 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(async { super::block_on(async { 3 }) }), 3);
    }
}
