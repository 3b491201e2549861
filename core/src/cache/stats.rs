//! Cache-wide statistics: entries, bytes (shared inodes counted once), hits and misses.
//!
//! Hits and misses are kept in `<cacheDir>/stats.json`, updated under an exclusive flock of
//! `<cacheDir>/stats.lock`, so every process using the cache adds to the same counts.

use super::listing::{Listing, NodeKind};
use super::store::NodeModulesCache;
use crate::{Error, Result};
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::os::fd::AsFd;

/// Persistent counters of restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HitCounts {
    /// Restores served from an entry.
    pub hits: u64,
    /// Restores asked for a key that had no entry.
    pub misses: u64,
}

/// What `stats()` reports about the whole cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// The cache folder.
    pub cache_dir: String,
    /// Complete entries.
    pub entries: u64,
    /// Regular files over all entries.
    pub files: u64,
    /// Bytes of all entries, each inode counted once (entries share inodes with each other and with
    /// the node_modules they were populated from or restored to).
    pub bytes: u64,
    /// Bytes as the entries' manifests add them up (shared inodes counted once per entry).
    pub apparent_bytes: u64,
    /// Restores served from an entry.
    pub hits: u64,
    /// Restores asked for a key that had no entry.
    pub misses: u64,
}

impl NodeModulesCache {
    /// Adds one hit or one miss to the persistent counters (best effort: a counter that cannot be
    /// written never fails a restore).
    pub(crate) fn record_outcome(&self, hit: bool) {
        let _ = self.update_counts(|c| if hit { c.hits += 1 } else { c.misses += 1 });
    }

    fn update_counts(&self, f: impl FnOnce(&mut HitCounts)) -> Result<HitCounts> {
        let lock_path = self.root.join("stats.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io_path("open", &lock_path, e))?;
        rustix::fs::flock(lock.as_fd(), FlockOperation::LockExclusive)
            .map_err(|e| super::store::io_err("lock", &lock_path, e))?;
        let mut counts = self.hit_counts();
        f(&mut counts);
        let path = self.root.join("stats.json");
        let tmp = self.root.join(super::store::unique_name(".stats.json.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&counts)?)
            .map_err(|e| Error::io_path("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io_path("write", &path, e))?;
        Ok(counts)
    }

    /// The persistent hit and miss counts.
    pub fn hit_counts(&self) -> HitCounts {
        std::fs::read(self.root.join("stats.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Entries, bytes (shared inodes counted once), hits and misses.
    pub fn stats(&self) -> Result<CacheStats> {
        let entries = self.entries()?;
        let mut seen: HashSet<u64> = HashSet::new();
        let (mut bytes, mut apparent, mut files) = (0u64, 0u64, 0u64);
        for e in &entries {
            apparent += e.manifest.bytes;
            files += e.manifest.files;
            let lpath = std::path::Path::new(&e.path).join("listing.bin");
            let Ok(listing) = std::fs::read(&lpath)
                .map_err(|_| ())
                .and_then(|b| Listing::parse(b).map_err(|_| ()))
            else {
                continue;
            };
            for n in &listing.nodes {
                if n.kind == NodeKind::File && seen.insert(n.ino) {
                    bytes += n.size;
                }
            }
        }
        let counts = self.hit_counts();
        Ok(CacheStats {
            cache_dir: self.root.display().to_string(),
            entries: entries.len() as u64,
            files,
            bytes,
            apparent_bytes: apparent,
            hits: counts.hits,
            misses: counts.misses,
        })
    }
}
