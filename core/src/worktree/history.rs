//! The history of creations: every creation's step timings, critical path, cache outcome and
//! Chrome trace, in SQLite (`~/.vibetrees/history.sqlite`), so `vibetrees metrics` can show p50/p95
//! per step over the last N creations and give advice, across restarts. Owns the database file
//! only; must not time anything itself (creations hand it their records: `create/result.rs`,
//! `create/background.rs`).

use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `~/.vibetrees` (from `HOME`), where the ports registry, the cache and the history live.
pub fn vibetrees_home() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(".vibetrees")
}

/// Default history file: `~/.vibetrees/history.sqlite`.
pub fn default_history_path() -> PathBuf {
    vibetrees_home().join("history.sqlite")
}

/// One step of a recorded creation.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The step (span) name, e.g. `git-worktree-add`.
    pub step: String,
    /// Its duration in ms.
    pub duration_ms: f64,
    /// Whether it lay on the creation's critical path.
    pub critical: bool,
}

/// One creation, as stored.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationRecord {
    /// Row id (assigned when recorded).
    pub id: i64,
    /// Worktree name (slug).
    pub name: String,
    /// Project root.
    pub repo: String,
    /// Start, ms since the Unix epoch.
    pub started_at_ms: i64,
    /// Time to ready, ms.
    pub ready_ms: f64,
    /// `hit`, `near`, `miss` or `none`.
    pub cache_outcome: String,
    /// Step names of the critical path, first to last.
    pub critical_path: Vec<String>,
    /// Per-step timings.
    pub steps: Vec<StepRecord>,
}

/// p50/p95 of one step over recent creations.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    /// Step name.
    pub step: String,
    /// Number of creations that ran it.
    pub count: usize,
    /// Median duration, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// How many of those creations had it on the critical path.
    pub critical_count: usize,
}

/// What `vibetrees metrics` advises.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Advice {
    /// The step that most often set the time to ready: per creation, the longest step of its
    /// critical path (and in how many creations).
    pub most_critical: Option<(String, usize)>,
    /// Steps whose p95 over the newer half of the window is worse than over the older half by
    /// more than 20%: `(step, older p95, newer p95)`.
    pub regressed: Vec<(String, f64, f64)>,
}

/// The history store. One connection; open one per thread or share behind a mutex.
pub struct History {
    conn: Connection,
}

impl History {
    /// Opens (creating if needed) the history at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io_path("create directory", dir, e))?;
        }
        Self::open_conn(path).map_err(|e| sql(path, e))
    }

    /// Opens the history at `path` for a manager, where history is best-effort: a file that is
    /// not a database or is damaged (SQLite's `NOTADB`, `CORRUPT`) is moved aside to
    /// `<name>.corrupt-<ms since the epoch>` (with its `-wal`/`-shm` files) and a new one is
    /// started. Returns the history (`None` when even a new one cannot be opened) and a warning
    /// saying what happened, if anything did; never an error.
    pub fn open_or_recover(path: &Path) -> (Option<Self>, Option<String>) {
        let first = match Self::open(path) {
            Ok(h) => return (Some(h), None),
            Err(e) => e,
        };
        let damaged = match Self::open_conn(path) {
            Ok(h) => return (Some(h), None),
            Err(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            ),
        };
        if !damaged {
            return (
                None,
                Some(format!("⚠ history not recorded: {}", first.full_message())),
            );
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(".corrupt-{stamp}"));
        let aside = PathBuf::from(name);
        if let Err(e) = std::fs::rename(path, &aside) {
            return (
                None,
                Some(format!(
                    "⚠ history not recorded: {} is damaged and cannot be moved aside: {e}",
                    path.display()
                )),
            );
        }
        for suffix in ["-wal", "-shm"] {
            let mut from = path.as_os_str().to_os_string();
            from.push(suffix);
            let mut to = aside.as_os_str().to_os_string();
            to.push(suffix);
            let _ = std::fs::rename(from, to);
        }
        match Self::open(path) {
            Ok(h) => (
                Some(h),
                Some(format!(
                    "⚠ history {} was damaged ({}): moved aside to {}, a new one was started",
                    path.display(),
                    first.full_message(),
                    aside.display()
                )),
            ),
            Err(e) => (
                None,
                Some(format!("⚠ history not recorded: {}", e.full_message())),
            ),
        }
    }

    fn open_conn(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Several processes opening a new history at once: the switch to WAL can answer "locked"
        // without waiting for the busy timeout. Retry a little.
        let mut attempt = 0u64;
        while let Err(e) = conn.execute_batch("PRAGMA journal_mode=WAL;") {
            attempt += 1;
            let busy = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            );
            if attempt > 40 || !busy {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(5 * attempt.min(10)));
        }
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS creations(
               id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, repo TEXT NOT NULL,
               started_at_ms INTEGER NOT NULL, ready_ms REAL NOT NULL, cache_outcome TEXT NOT NULL,
               critical_path TEXT NOT NULL, trace TEXT);
             CREATE TABLE IF NOT EXISTS steps(
               creation_id INTEGER NOT NULL REFERENCES creations(id), step TEXT NOT NULL,
               duration_ms REAL NOT NULL, critical INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS steps_by_creation ON steps(creation_id);",
        )?;
        Ok(Self { conn })
    }

    /// Opens the default history (`~/.vibetrees/history.sqlite`).
    pub fn open_default() -> Result<Self> {
        Self::open(&default_history_path())
    }

    /// Records a creation and its Chrome trace; returns its id.
    pub fn record(&mut self, rec: &CreationRecord, trace: Option<&str>) -> Result<i64> {
        let tx = self.conn.transaction().map_err(|e| sql_ctx("record", e))?;
        tx.execute(
            "INSERT INTO creations(name, repo, started_at_ms, ready_ms, cache_outcome, critical_path, trace)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                rec.name,
                rec.repo,
                rec.started_at_ms,
                rec.ready_ms,
                rec.cache_outcome,
                serde_json::to_string(&rec.critical_path)?,
                trace
            ],
        )
        .map_err(|e| sql_ctx("record", e))?;
        let id = tx.last_insert_rowid();
        for s in &rec.steps {
            tx.execute(
                "INSERT INTO steps(creation_id, step, duration_ms, critical) VALUES (?1, ?2, ?3, ?4)",
                params![id, s.step, s.duration_ms, s.critical as i64],
            )
            .map_err(|e| sql_ctx("record", e))?;
        }
        tx.commit().map_err(|e| sql_ctx("record", e))?;
        Ok(id)
    }

    /// Adds the background steps of creation `id` once they have all finished (cache populate,
    /// services, push: they end after "ready", so after [`History::record`]) and replaces its
    /// Chrome trace with one that shows them.
    pub fn record_background(&mut self, id: i64, steps: &[StepRecord], trace: &str) -> Result<()> {
        let tx = self.conn.transaction().map_err(|e| sql_ctx("record", e))?;
        for s in steps {
            tx.execute(
                "INSERT INTO steps(creation_id, step, duration_ms, critical) VALUES (?1, ?2, ?3, ?4)",
                params![id, s.step, s.duration_ms, s.critical as i64],
            )
            .map_err(|e| sql_ctx("record", e))?;
        }
        tx.execute(
            "UPDATE creations SET trace = ?2 WHERE id = ?1",
            params![id, trace],
        )
        .map_err(|e| sql_ctx("record", e))?;
        tx.commit().map_err(|e| sql_ctx("record", e))
    }

    /// The last `n` creations, newest first.
    pub fn recent(&self, n: usize) -> Result<Vec<CreationRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, name, repo, started_at_ms, ready_ms, cache_outcome, critical_path
                 FROM creations ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| sql_ctx("read history", e))?;
        let rows = stmt
            .query_map(params![n as i64], |r| {
                let cp: String = r.get(6)?;
                Ok(CreationRecord {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    repo: r.get(2)?,
                    started_at_ms: r.get(3)?,
                    ready_ms: r.get(4)?,
                    cache_outcome: r.get(5)?,
                    critical_path: serde_json::from_str(&cp).unwrap_or_default(),
                    steps: Vec::new(),
                })
            })
            .map_err(|e| sql_ctx("read history", e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(|e| sql_ctx("read history", e))?);
        }
        let mut steps = self
            .conn
            .prepare("SELECT step, duration_ms, critical FROM steps WHERE creation_id = ?1")
            .map_err(|e| sql_ctx("read history", e))?;
        for rec in &mut out {
            let rows = steps
                .query_map(params![rec.id], |r| {
                    Ok(StepRecord {
                        step: r.get(0)?,
                        duration_ms: r.get(1)?,
                        critical: r.get::<_, i64>(2)? != 0,
                    })
                })
                .map_err(|e| sql_ctx("read history", e))?;
            for s in rows {
                rec.steps.push(s.map_err(|e| sql_ctx("read history", e))?);
            }
        }
        Ok(out)
    }

    /// The Chrome trace of creation `which`: a row id, or a worktree name (its latest creation).
    pub fn trace(&self, which: &str) -> Result<Option<String>> {
        let q = if let Ok(id) = which.parse::<i64>() {
            self.conn
                .query_row(
                    "SELECT trace FROM creations WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
        } else {
            self.conn
                .query_row(
                    "SELECT trace FROM creations WHERE name = ?1 ORDER BY id DESC LIMIT 1",
                    params![which],
                    |r| r.get(0),
                )
                .optional()
        };
        Ok(q.map_err(|e| sql_ctx("read trace", e))?.flatten())
    }

    /// p50/p95 per step over the last `n` creations, slowest p95 first.
    pub fn step_summaries(&self, n: usize) -> Result<Vec<StepSummary>> {
        Ok(summarize(&self.recent(n)?))
    }

    /// Advice over the last `n` creations.
    pub fn advice(&self, n: usize) -> Result<Advice> {
        Ok(advise(&self.recent(n)?))
    }
}

/// p50/p95 per step of these creations, slowest p95 first.
pub fn summarize(recs: &[CreationRecord]) -> Vec<StepSummary> {
    let mut by: BTreeMap<&str, (Vec<f64>, usize)> = BTreeMap::new();
    for r in recs {
        for s in &r.steps {
            let e = by.entry(&s.step).or_default();
            e.0.push(s.duration_ms);
            if s.critical {
                e.1 += 1;
            }
        }
    }
    let mut out: Vec<StepSummary> = by
        .into_iter()
        .map(|(step, (mut d, crit))| {
            d.sort_by(f64::total_cmp);
            StepSummary {
                step: step.to_string(),
                count: d.len(),
                p50: percentile(&d, 0.50),
                p95: percentile(&d, 0.95),
                critical_count: crit,
            }
        })
        .collect();
    out.sort_by(|a, b| b.p95.total_cmp(&a.p95));
    out
}

/// Advice from these creations (newest first, as [`History::recent`] returns them).
pub fn advise(recs: &[CreationRecord]) -> Advice {
    // per creation, the step of its critical path that took longest: the one setting the time
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in recs {
        if let Some(s) = r
            .steps
            .iter()
            .filter(|s| s.critical)
            .max_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms))
        {
            *counts.entry(&s.step).or_default() += 1;
        }
    }
    let most_critical = counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(s, n)| (s.to_string(), n));
    let mut regressed = Vec::new();
    if recs.len() >= 4 {
        let (newer, older) = recs.split_at(recs.len() / 2);
        let old = summarize(older);
        for n in summarize(newer) {
            if let Some(o) = old.iter().find(|o| o.step == n.step)
                && n.p95 > o.p95 * 1.2
                && n.p95 - o.p95 > 1.0
            {
                regressed.push((n.step.clone(), o.p95, n.p95));
            }
        }
    }
    Advice {
        most_critical,
        regressed,
    }
}

/// Nearest-rank percentile of sorted data (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sql(path: &Path, e: rusqlite::Error) -> Error {
    Error::Internal(format!("history database {}: {e}", path.display()))
}

fn sql_ctx(what: &str, e: rusqlite::Error) -> Error {
    Error::Internal(format!("history database ({what}): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, git: f64, npm: f64) -> CreationRecord {
        let crit = if git > npm {
            "git-worktree-add"
        } else {
            "npm-bootstrap"
        };
        CreationRecord {
            id: 0,
            name: name.into(),
            repo: "/r".into(),
            started_at_ms: 1,
            ready_ms: git.max(npm),
            cache_outcome: "hit".into(),
            critical_path: vec![crit.into()],
            steps: vec![
                StepRecord {
                    step: "git-worktree-add".into(),
                    duration_ms: git,
                    critical: crit == "git-worktree-add",
                },
                StepRecord {
                    step: "npm-bootstrap".into(),
                    duration_ms: npm,
                    critical: crit == "npm-bootstrap",
                },
            ],
        }
    }

    #[test]
    fn records_survive_reopen_and_summaries_and_advice_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        {
            let mut h = History::open(&path).unwrap();
            for i in 0..5 {
                h.record(
                    &rec(&format!("a{i}"), 10.0, 5.0),
                    Some("{\"traceEvents\":[]}"),
                )
                .unwrap();
            }
            for i in 0..4 {
                h.record(&rec(&format!("b{i}"), 10.0, 50.0), None).unwrap();
            }
        }
        let h = History::open(&path).unwrap();
        let recent = h.recent(9).unwrap();
        assert_eq!(recent.len(), 9);
        assert_eq!(recent[0].name, "b3");
        assert_eq!(recent[0].steps.len(), 2);
        let s = h.step_summaries(9).unwrap();
        assert_eq!(s[0].step, "npm-bootstrap");
        assert_eq!((s[0].count, s[0].p50, s[0].p95), (9, 5.0, 50.0));
        let a = h.advice(9).unwrap();
        assert_eq!(a.most_critical, Some(("git-worktree-add".to_string(), 5)));
        assert_eq!(a.regressed, vec![("npm-bootstrap".to_string(), 5.0, 50.0)]);
        assert_eq!(
            h.trace("a0").unwrap().as_deref(),
            Some("{\"traceEvents\":[]}")
        );
        assert_eq!(h.trace("b0").unwrap(), None);
        assert_eq!(h.trace("nope").unwrap(), None);
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.95), 4.0);
    }
}
