//! Progress events, as the VibeTrees server broadcasts them (`worktree:progress`).

use serde::Serialize;
use std::sync::Arc;

/// One progress event: `{ name, step, message }`. A message starting with `✓` marks the step done.
///
/// Steps the UI knows: `git`, `ports`, `mcp`, `install`, `bootstrap`, `containers`, `database`,
/// `complete`, `error`; others (`cache`, host steps) are shown as they come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ProgressEvent {
    /// The worktree's name (its slug).
    pub name: String,
    /// The step the event belongs to.
    pub step: String,
    /// Human-readable text.
    pub message: String,
}

impl ProgressEvent {
    /// A new event.
    pub fn new(
        name: impl Into<String>,
        step: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            step: step.into(),
            message: message.into(),
        }
    }
}

/// Where progress events go. Called from worker threads, never concurrently for one creation's
/// ordering guarantees beyond "events of one step arrive in order"; must not block for long.
pub type ProgressSink = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// Counts of work done, for long file operations: `(done, total)`. Called at a bounded rate.
pub type CountProgress = Arc<dyn Fn(u64, u64) + Send + Sync>;
