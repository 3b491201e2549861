//! The manifest of a cache entry (`manifest.json`): the inputs of its key, when it was made, what
//! it holds. Last use is the mtime of the entry's `last-used` file, so a restore never rewrites
//! the manifest.

use super::key::{CacheKey, KeyInputs};
use serde::{Deserialize, Serialize};

/// Version of the entry layout; entries of another version are ignored (and pruned).
pub const ENTRY_FORMAT: u32 = 1;

/// What one entry holds, as written in its `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Layout version ([`ENTRY_FORMAT`]).
    pub format: u32,
    /// The entry's key.
    pub key: CacheKey,
    /// What the key was made of, when the populating caller knew it.
    pub inputs: Option<KeyInputs>,
    /// The node_modules it was populated from.
    pub source: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// Regular files.
    pub files: u64,
    /// Folders, the root included.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Special files (sockets, fifos, devices) found in the source and skipped.
    pub special_skipped: u64,
    /// Sum of the regular files' sizes.
    pub bytes: u64,
    /// Files hardlinked from the source when populating (they share inodes with it).
    pub linked_from_source: u64,
    /// Files cloned (reflink) from the source.
    pub cloned_from_source: u64,
    /// Files copied from the source.
    pub copied_from_source: u64,
}

/// An entry as `lookup` and `entries` report it: its manifest and its last use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryInfo {
    /// The manifest.
    #[serde(flatten)]
    pub manifest: Manifest,
    /// Last restore (or creation), milliseconds since the Unix epoch.
    pub last_used_ms: u64,
    /// The entry's folder.
    pub path: String,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
