//! Verify: find entries whose files were changed after caching (a write through a hardlink in a
//! worktree changes the cache and every sibling), and evict them if asked.

use super::fsops;
use super::key::CacheKey;
use super::listing::{Listing, NodeKind};
use super::phases::Phases;
use super::restore::mutation;
use super::store::NodeModulesCache;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd};
use serde::{Deserialize, Serialize};

/// At most this many problems are listed per entry (all are counted).
const MAX_LISTED: usize = 20;

/// One entry that failed verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BadEntry {
    /// The entry's key.
    pub key: CacheKey,
    /// How many files differ from the listing.
    pub problem_count: u64,
    /// The first problems, as `path: what changed`.
    pub problems: Vec<String>,
    /// Whether it was evicted.
    pub evicted: bool,
}

/// The report of `verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Entries checked.
    pub entries_checked: u64,
    /// Files checked.
    pub files_checked: u64,
    /// Entries with changed, missing or unreadable files.
    pub bad: Vec<BadEntry>,
}

impl NodeModulesCache {
    /// Checks every file of every entry against its listing (size, mtime, mode); with `evict_bad`
    /// the bad entries are evicted.
    pub fn verify(&self, evict_bad: bool) -> Result<VerifyReport> {
        self.verify_each("cache-verify", evict_bad, Self::verify_one)
    }

    /// Runs `check` on every entry under the span `span`, collecting (and with `evict_bad`
    /// evicting) the bad ones.
    fn verify_each(
        &self,
        span: &str,
        evict_bad: bool,
        check: impl Fn(&Self, &CacheKey, &mut VerifyReport) -> Result<Option<BadEntry>>,
    ) -> Result<VerifyReport> {
        let mut phases = Phases::start(self.profiler.as_deref(), span, None);
        let mut report = VerifyReport {
            entries_checked: 0,
            files_checked: 0,
            bad: Vec::new(),
        };
        for name in self.entry_names()? {
            let key = CacheKey::parse(&name)?;
            let bad = phases.run("cache-verify-entry", || check(self, &key, &mut report))?;
            if let Some(mut bad) = bad {
                if evict_bad {
                    bad.evicted = self.evict(&key)?;
                }
                report.bad.push(bad);
            }
        }
        phases.finish(None);
        Ok(report)
    }

    /// Re-hashes every file of every entry and compares it with the content digests taken when
    /// the entry was populated: finds a file changed in place even when its size and mtime were
    /// kept. An entry without digests (populated by an older version, or with unreadable files)
    /// is reported bad ("no content digests"). With `evict_bad` the bad entries are evicted.
    pub fn verify_content(&self, evict_bad: bool) -> Result<VerifyReport> {
        self.verify_each("cache-verify-content", evict_bad, Self::verify_content_one)
    }

    fn verify_content_one(
        &self,
        key: &CacheKey,
        report: &mut VerifyReport,
    ) -> Result<Option<BadEntry>> {
        let Some(entry) = self.lock_entry(key, false, true)? else {
            return Ok(None);
        };
        report.entries_checked += 1;
        let mut bad = BadEntry {
            key: key.clone(),
            problem_count: 0,
            problems: Vec::new(),
            evicted: false,
        };
        let mut note = |what: String| {
            bad.problem_count += 1;
            if bad.problems.len() < MAX_LISTED {
                bad.problems.push(what);
            }
        };
        let lpath = entry.path.join("listing.bin");
        let dpath = entry.path.join(super::content::DIGESTS_FILE);
        let listing = std::fs::read(&lpath)
            .map_err(|e| Error::io_path("read", &lpath, e))
            .and_then(Listing::parse);
        let digests = std::fs::read(&dpath);
        let tree = fsops::open_dir_path(entry.dir.as_fd(), c"tree");
        match (listing, digests, tree) {
            (Err(e), _, _) => note(format!("listing.bin: {e}")),
            (_, Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => note(format!(
                "no content digests ({} missing: populated before they were kept)",
                super::content::DIGESTS_FILE
            )),
            (_, Err(e), _) => note(format!("{}: {e}", super::content::DIGESTS_FILE)),
            (_, _, Err(e)) => note(format!("tree: {e}")),
            (Ok(listing), Ok(digests), Ok(tree)) => {
                match super::content::changed_files(
                    &listing,
                    tree.as_fd(),
                    &digests,
                    &mut report.files_checked,
                ) {
                    Ok(problems) => problems.into_iter().for_each(&mut note),
                    Err(e) => note(e.to_string()),
                }
            }
        }
        Ok((bad.problem_count > 0).then_some(bad))
    }

    /// Checks the entry `key`; `Ok(None)` when it is sound (or gone).
    pub fn verify_entry(&self, key: &CacheKey) -> Result<Option<BadEntry>> {
        let mut report = VerifyReport {
            entries_checked: 0,
            files_checked: 0,
            bad: Vec::new(),
        };
        self.verify_one(key, &mut report)
    }

    fn verify_one(&self, key: &CacheKey, report: &mut VerifyReport) -> Result<Option<BadEntry>> {
        let Some(entry) = self.lock_entry(key, false, true)? else {
            return Ok(None);
        };
        report.entries_checked += 1;
        let mut bad = BadEntry {
            key: key.clone(),
            problem_count: 0,
            problems: Vec::new(),
            evicted: false,
        };
        let note = |bad: &mut BadEntry, what: String| {
            bad.problem_count += 1;
            if bad.problems.len() < MAX_LISTED {
                bad.problems.push(what);
            }
        };
        let lpath = entry.path.join("listing.bin");
        let listing = match std::fs::read(&lpath)
            .map_err(|e| Error::io_path("read", &lpath, e))
            .and_then(Listing::parse)
        {
            Ok(l) => l,
            Err(e) => {
                note(&mut bad, format!("listing.bin: {e}"));
                return Ok(Some(bad));
            }
        };
        let tree = match fsops::open_dir_path(entry.dir.as_fd(), c"tree") {
            Ok(fd) => fd,
            Err(e) => {
                note(&mut bad, format!("tree: {e}"));
                return Ok(Some(bad));
            }
        };
        let mut problems = Vec::new();
        check_dir(
            &listing,
            tree.as_fd(),
            0,
            &mut problems,
            &mut report.files_checked,
        );
        for p in problems {
            note(&mut bad, p);
        }
        Ok((bad.problem_count > 0).then_some(bad))
    }

    /// Evicts entry `key` unless a restore holds it; returns whether it was evicted.
    pub fn evict(&self, key: &CacheKey) -> Result<bool> {
        let Some(entry) = self.lock_entry(key, true, false)? else {
            return Ok(false);
        };
        let trash = self.move_to_trash(&entry.path, key)?;
        fsops::remove_tree(&trash).map_err(|e| Error::io_path("delete", &trash, e))?;
        drop(entry);
        Ok(true)
    }
}

fn check_dir(
    listing: &Listing,
    dir: BorrowedFd<'_>,
    d: usize,
    problems: &mut Vec<String>,
    files: &mut u64,
) {
    for c in listing.children(d) {
        let node = &listing.nodes[c];
        let name = listing.name(c);
        match node.kind {
            NodeKind::File => {
                *files += 1;
                match mutation(dir, name, node) {
                    Ok(None) => {}
                    Ok(Some(what)) => {
                        problems.push(format!("{}: {what}", listing.rel_path(c).display()))
                    }
                    Err(e) => problems.push(format!("{}: {e}", listing.rel_path(c).display())),
                }
            }
            NodeKind::Dir => match fsops::open_dir_path(dir, name) {
                Ok(fd) => check_dir(listing, fd.as_fd(), c, problems, files),
                Err(e) => problems.push(format!("{}: {e}", listing.rel_path(c).display())),
            },
            NodeKind::Symlink => {}
        }
    }
}
