//! Scoped spans: a guard that ends its operation when dropped.

use std::ops::Deref;
use std::sync::Arc;

use super::types::OperationResult;
use super::{Profiler, ids};
use crate::Result;

/// A running operation that ends when the guard is dropped (as succeeded), or explicitly with
/// [`Span::end`] / [`Span::fail`]. `P` is how the guard holds the profiler: a borrow
/// ([`SpanGuard`]) or an `Arc` ([`OwnedSpanGuard`], for `'static` futures and threads).
#[must_use = "a span ends as soon as its guard is dropped"]
pub struct Span<P: Deref<Target = Profiler>> {
    profiler: P,
    num: u64,
    id: String,
    active: bool,
}

/// A span guard borrowing its profiler; see [`Profiler::span`].
pub type SpanGuard<'a> = Span<&'a Profiler>;

/// A span guard owning an `Arc` of its profiler; see [`Profiler::span_owned`].
pub type OwnedSpanGuard = Span<Arc<Profiler>>;

impl<P: Deref<Target = Profiler>> Span<P> {
    pub(crate) fn new(profiler: P, num: u64) -> Self {
        Self {
            profiler,
            num,
            id: ids::format_id(num),
            active: true,
        }
    }

    /// The operation's id, for `end`, `get_result` or as a parent id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The profiler this span records into.
    pub fn profiler(&self) -> &Profiler {
        &self.profiler
    }

    /// Starts a child operation of this span, itself guarded.
    pub fn child(&self, name: &str) -> Result<SpanGuard<'_>> {
        self.profiler.span(name, Some(&self.id))
    }

    /// Ends the operation now as succeeded and returns its result.
    /// Fails with `NotFound` if it was already ended through the profiler by its id.
    pub fn end(mut self) -> Result<OperationResult> {
        self.active = false;
        self.profiler.finish(&self.id, self.num, None)
    }

    /// Ends the operation now as failed with `message` and returns its result.
    pub fn fail(mut self, message: &str) -> Result<OperationResult> {
        self.active = false;
        self.profiler.finish(&self.id, self.num, Some(message))
    }
}

impl<P: Deref<Target = Profiler>> Drop for Span<P> {
    fn drop(&mut self) {
        if self.active {
            // Ended elsewhere by id already: nothing left to do, and a drop cannot report it.
            let _ = self.profiler.finish_quiet(self.num, None);
        }
    }
}

impl<P: Deref<Target = Profiler>> std::fmt::Debug for Span<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("id", &self.id)
            .field("active", &self.active)
            .finish()
    }
}
