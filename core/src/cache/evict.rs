//! Eviction: by a size budget, least recently used first, and `clear`. An entry being restored
//! (its lock held shared) is never removed: it is skipped and reported as busy.

use super::key::CacheKey;
use super::listing::{Listing, NodeKind};
use super::phases::Phases;
use super::store::NodeModulesCache;
use crate::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The report of `prune` or `clear`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    /// Entries removed.
    pub evicted: Vec<CacheKey>,
    /// Entries that should have gone but were being restored.
    pub busy: Vec<CacheKey>,
    /// Bytes freed in the cache (inodes no remaining entry shares; a worktree may still hold them).
    pub bytes_freed: u64,
    /// Bytes left (each inode counted once).
    pub bytes_left: u64,
    /// Abandoned staging and trash folders deleted.
    pub abandoned_removed: u64,
}

impl NodeModulesCache {
    /// Evicts least recently used entries until the cache holds at most `budget_bytes`
    /// (each inode counted once), and deletes what crashed processes left.
    pub fn prune(&self, budget_bytes: u64) -> Result<PruneReport> {
        let mut phases = Phases::start(self.profiler.as_deref(), "cache-prune", None);
        let r = self.prune_inner(Some(budget_bytes), &mut phases);
        phases.finish(r.as_ref().err());
        r
    }

    /// Evicts every entry not being restored, and what crashed processes left.
    pub fn clear(&self) -> Result<PruneReport> {
        let mut phases = Phases::start(self.profiler.as_deref(), "cache-clear", None);
        let r = self.prune_inner(None, &mut phases);
        phases.finish(r.as_ref().err());
        r
    }

    fn prune_inner(&self, budget: Option<u64>, phases: &mut Phases<'_>) -> Result<PruneReport> {
        let mut report = PruneReport {
            abandoned_removed: phases
                .run("cache-prune-abandoned", || Ok(self.clean_abandoned()))?,
            ..Default::default()
        };
        let mut entries = self.entries()?;
        // Least recently used first.
        entries.sort_by_key(|e| e.last_used_ms);
        // Inode -> (size, entries holding it).
        let mut inodes: HashMap<u64, (u64, u32)> = HashMap::new();
        let mut per_entry: Vec<Vec<u64>> = Vec::with_capacity(entries.len());
        phases.run("cache-prune-measure", || {
            for e in &entries {
                let lpath = std::path::Path::new(&e.path).join("listing.bin");
                let mut inos = Vec::new();
                if let Ok(l) = std::fs::read(&lpath)
                    .map_err(|_| ())
                    .and_then(|b| Listing::parse(b).map_err(|_| ()))
                {
                    for n in &l.nodes {
                        if n.kind == NodeKind::File {
                            let slot = inodes.entry(n.ino).or_insert((n.size, 0));
                            slot.1 += 1;
                            inos.push(n.ino);
                        }
                    }
                }
                inos.sort_unstable();
                inos.dedup();
                per_entry.push(inos);
            }
            Ok(())
        })?;
        let mut total: u64 = inodes.values().map(|(s, _)| *s).sum();
        phases.run("cache-prune-evict", || {
            for (e, inos) in entries.iter().zip(&per_entry) {
                if let Some(b) = budget {
                    if total <= b {
                        break;
                    }
                }
                let key = e.manifest.key.clone();
                if self.evict(&key)? {
                    for ino in inos {
                        if let Some(slot) = inodes.get_mut(ino) {
                            slot.1 -= 1;
                            if slot.1 == 0 {
                                total -= slot.0;
                                report.bytes_freed += slot.0;
                            }
                        }
                    }
                    report.evicted.push(key);
                } else if self.contains(&key) {
                    report.busy.push(key);
                }
            }
            Ok(())
        })?;
        report.bytes_left = total;
        Ok(report)
    }
}
