//! The thread an operation started on ([`ThreadInfo`]), named once per thread, for the Chrome
//! trace's tracks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The thread an operation started on, for the Chrome trace's tracks.
pub(crate) struct ThreadInfo {
    /// A process-wide number, distinct for every thread that ever started an operation.
    pub(crate) ordinal: u64,
    /// The thread's name, or `thread-<ordinal>` for unnamed threads.
    pub(crate) name: Arc<str>,
}

static NEXT_THREAD_ORDINAL: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD: Arc<ThreadInfo> = {
        let ordinal = NEXT_THREAD_ORDINAL.fetch_add(1, Ordering::Relaxed);
        let name: Arc<str> = match std::thread::current().name() {
            Some(n) => Arc::from(n),
            None => Arc::from(format!("thread-{ordinal}")),
        };
        Arc::new(ThreadInfo { ordinal, name })
    };
}

pub(super) fn current_thread() -> Arc<ThreadInfo> {
    THREAD.with(Arc::clone)
}
