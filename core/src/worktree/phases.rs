//! [`CheckoutPhases`]: the wall time of each phase of our checkout (`register`, `files`,
//! `index`, `hook`) and, inside a creation, a child span of its `git-worktree-add` step for each.
//! Owns only the timing; must not do any of the checkout's work.

use crate::Error;

/// The phases of our checkout (`register`, `files`, `index`, `hook`): their wall times, and, when
/// given a profiler span (the creation's `git-worktree-add` step), child spans under it named
/// `checkout-<phase>`, so a creation's trace shows where the checkout's time went.
#[derive(Default)]
pub struct CheckoutPhases {
    /// Each finished phase and its wall time in ms, in order.
    pub times: Vec<(&'static str, f64)>,
    span: Option<(std::sync::Arc<crate::profiler::Profiler>, String)>,
    open: Option<(&'static str, std::time::Instant, Option<String>)>,
}

impl CheckoutPhases {
    /// Phases recorded as child spans of `span` (a profiler and a running span's id), if given.
    pub fn under(span: Option<(std::sync::Arc<crate::profiler::Profiler>, String)>) -> Self {
        Self {
            span,
            ..Self::default()
        }
    }

    /// Ends the running phase, if any, and starts `name`.
    pub fn begin(&mut self, name: &'static str) {
        self.finish(None);
        let id = self
            .span
            .as_ref()
            .and_then(|(p, parent)| p.start(&format!("checkout-{name}"), Some(parent)).ok());
        self.open = Some((name, std::time::Instant::now(), id));
    }

    /// Ends the running phase (as failed with `error`, if given).
    pub fn finish(&mut self, error: Option<&Error>) {
        let Some((name, start, id)) = self.open.take() else {
            return;
        };
        self.times.push((name, start.elapsed().as_secs_f64() * 1e3));
        if let (Some((p, _)), Some(id)) = (&self.span, id) {
            let _ = match error {
                None => p.end(&id),
                Some(e) => p.end_failed(&id, &e.to_string()),
            };
        }
    }
}
