//! Timing of the phases of a cache operation: kept in the operation's report, and given to the
//! profiler as nested spans when the cache has one.

use crate::profiler::Profiler;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How long one phase of a cache operation took.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTime {
    /// The phase's span name, e.g. `cache-restore-place`.
    pub name: String,
    /// Milliseconds.
    pub ms: f64,
}

/// The phases of one operation, under one root span.
pub(crate) struct Phases<'a> {
    profiler: Option<&'a Profiler>,
    root_id: Option<String>,
    start: Instant,
    pub times: Vec<PhaseTime>,
}

impl<'a> Phases<'a> {
    /// Starts the operation's root span `name` (a child of `parent` when given).
    pub fn start(profiler: Option<&'a Profiler>, name: &str, parent: Option<&str>) -> Self {
        let root_id = profiler.and_then(|p| p.start(name, parent).ok());
        Phases {
            profiler,
            root_id,
            start: Instant::now(),
            times: Vec::new(),
        }
    }

    /// Runs one phase as a child span of the root.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
        let id = self
            .profiler
            .and_then(|p| p.start(name, self.root_id.as_deref()).ok());
        let t = Instant::now();
        let r = f();
        self.times.push(PhaseTime {
            name: name.to_string(),
            ms: t.elapsed().as_secs_f64() * 1e3,
        });
        if let (Some(p), Some(id)) = (self.profiler, id) {
            let _ = match &r {
                Ok(_) => p.end(&id),
                Err(e) => p.end_failed(&id, &e.to_string()),
            };
        }
        r
    }

    /// Milliseconds since the start.
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1e3
    }

    /// Ends the root span (failed when `error` is given).
    pub fn finish(&mut self, error: Option<&crate::Error>) {
        if let (Some(p), Some(id)) = (self.profiler, self.root_id.take()) {
            let _ = match error {
                None => p.end(&id),
                Some(e) => p.end_failed(&id, &e.to_string()),
            };
        }
    }
}

impl Drop for Phases<'_> {
    fn drop(&mut self) {
        if let (Some(p), Some(id)) = (self.profiler, self.root_id.take()) {
            let _ = p.end(&id);
        }
    }
}
