//! A content-addressed node_modules cache, restored by hardlink, reflink or copy.
//!
//! - [`CacheKey`]: a digest of the lockfiles, package.json's dependency sections, the Node ABI,
//!   the platform and the architecture; from a folder or from the blobs of a git tree.
//! - [`NodeModulesCache`]: entries in `<cacheDir>/node_modules/<key>/`, made atomically by
//!   [`populate`](NodeModulesCache::populate), served by [`restore`](NodeModulesCache::restore)
//!   (parallel, relative to open folders, all-or-nothing at the target), checked by
//!   [`verify`](NodeModulesCache::verify), evicted by [`prune`](NodeModulesCache::prune).
//! - [`CacheManager`]: the original VibeTrees API on top.
//!
//! Every call blocks (restore uses its own worker threads); async callers use `spawn_blocking`.
//! docs/cache.md explains the design, the shared-inode trade-off and the benchmark.

mod content;
mod evict;
pub(crate) mod fsops;
mod key;
pub(crate) mod listing;
mod manager;
mod manifest;
mod phases;
mod populate;
mod restore;
mod stats;
pub(crate) mod store;
mod target;
pub(crate) mod treecopy;
mod verify;

pub use evict::PruneReport;
pub use fsops::RestoreMethod;
pub use key::{
    CacheKey, DEPENDENCY_SECTIONS, KeyInputs, LOCKFILES, LockfileDigest, UNKNOWN_NODE_ABI,
    node_abi, node_arch, node_platform,
};
pub use manager::{CacheManager, CacheManagerOptions, RestoreOutcome};
pub use manifest::{ENTRY_FORMAT, EntryInfo, Manifest};
pub use phases::PhaseTime;
pub use populate::{PopulateOptions, PopulateOutcome, PopulateReport};
pub use restore::{RestoreOptions, RestoreStats};
pub use stats::{CacheStats, HitCounts};
pub use store::{CacheOptions, NodeModulesCache, default_cache_dir};
pub use target::check_target;
pub use verify::{BadEntry, VerifyReport};
