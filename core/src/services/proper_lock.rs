//! A cross-process lock compatible with the npm package `proper-lockfile`, as the VibeTrees Node
//! server uses it on the ports registry.
//!
//! The protocol, shared with `proper-lockfile`:
//! - the lock of `FILE` is a **directory** `<realpath of FILE>.lock`, created with `mkdir` (atomic);
//! - the holder refreshes the directory's mtime every few seconds (here a background thread, every
//!   `stale / 2`), and checks the mtime is still the one it set (else the lock was taken over);
//! - a lock whose mtime is older than `stale` (10 s) is stale: another process may remove it
//!   (`rmdir`) and take it;
//! - release is `rmdir`.
//!
//! Taking over a stale lock happens under a takeover mutex, a directory `<lock>.takeover` made
//! with `mkdir`: only its holder re-checks the lock (still the stale mtime that was observed, so a
//! holder that refreshed it keeps it), removes it and makes its own; the others wait. Two of our
//! processes therefore never both remove one stale lock (the second would remove the first's fresh
//! lock). A takeover mutex older than `stale` was left by a killed process and is removed.

use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How a [`FileLock`] is taken and kept.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// A lock whose mtime is older than this is stale and may be taken over (proper-lockfile: 10 s).
    pub stale: Duration,
    /// How often the holder refreshes the mtime (proper-lockfile: `stale / 2`).
    pub update: Duration,
    /// How long [`FileLock::acquire`] keeps retrying before it fails with [`Error::Lock`].
    pub timeout: Duration,
    /// First wait between two attempts; doubles up to [`LockOptions::max_backoff`].
    pub min_backoff: Duration,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            stale: Duration::from_secs(10),
            update: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(250),
        }
    }
}

/// The lock directory path for `file`: `<realpath of file>.lock`.
///
/// When `file` does not exist yet, its parent folder is resolved instead (the same path
/// proper-lockfile computes once the file exists, unless the file itself becomes a symlink).
pub fn lock_path_for(file: &Path) -> Result<PathBuf> {
    let real = match std::fs::canonicalize(file) {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let name = file.file_name().ok_or_else(|| {
                Error::InvalidArgument(format!("lock target has no file name: {}", file.display()))
            })?;
            let parent = match file.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let parent = std::fs::canonicalize(parent)
                .map_err(|e| Error::io_path("resolve the folder of", file, e))?;
            parent.join(name)
        }
        Err(e) => return Err(Error::io_path("resolve", file, e)),
    };
    let mut s = real.into_os_string();
    s.push(".lock");
    Ok(PathBuf::from(s))
}

/// State shared between the lock and its refresher thread.
struct Shared {
    /// Set when the lock is released; guarded by a mutex so the refresher can wait on it.
    released: Mutex<bool>,
    wake: Condvar,
    /// Set when the refresher found the lock taken over or removed by someone else.
    compromised: AtomicBool,
}

/// A held lock on a file, proper-lockfile style. Released (its directory removed) on drop.
pub struct FileLock {
    lock_dir: PathBuf,
    shared: Arc<Shared>,
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FileLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLock")
            .field("lock_dir", &self.lock_dir)
            .field("compromised", &self.is_compromised())
            .finish()
    }
}

/// Outcome of one attempt to take the lock.
enum Attempt {
    Taken(SystemTime),
    Held,
}

/// Sets `dir`'s mtime (and atime) to `t`.
fn set_mtime(dir: &Path, t: SystemTime) -> std::io::Result<()> {
    let f = std::fs::File::open(dir)?;
    f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
}

/// Now, truncated to whole milliseconds (the precision proper-lockfile compares with).
fn now_ms() -> SystemTime {
    let now = SystemTime::now();
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

fn mtime_of(dir: &Path) -> std::io::Result<SystemTime> {
    std::fs::metadata(dir)?.modified()
}

fn is_stale(mtime: SystemTime, stale: Duration) -> bool {
    match SystemTime::now().duration_since(mtime) {
        Ok(age) => age > stale,
        Err(_) => false, // mtime in the future (proper-lockfile's precision probe): fresh
    }
}

/// `mkdir` of the lock and its mtime set: `Some(mtime)` when we made it, `None` when it exists.
fn make_lock(lock_dir: &Path) -> Result<Option<SystemTime>> {
    match std::fs::create_dir(lock_dir) {
        Ok(()) => {
            let t = now_ms();
            if let Err(e) = set_mtime(lock_dir, t) {
                let _ = std::fs::remove_dir(lock_dir);
                return Err(Error::io_path("set the mtime of lock", lock_dir, e));
            }
            // Keep what the filesystem stored (a coarse-timestamp filesystem rounds it), so
            // the refresher's "is the mtime still ours" check compares like with like.
            Ok(Some(mtime_of(lock_dir).unwrap_or(t)))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(Error::io_path("create lock directory", lock_dir, e)),
    }
}

/// The takeover mutex of `lock_dir`: a directory `<lock>.takeover`, held (made with `mkdir`) by
/// the one process that replaces a stale lock.
pub fn takeover_path_for(lock_dir: &Path) -> PathBuf {
    let mut s = lock_dir.as_os_str().to_owned();
    s.push(".takeover");
    PathBuf::from(s)
}

/// Removes the takeover mutex when the takeover is over, whatever its outcome.
struct TakeoverGuard(PathBuf);

impl Drop for TakeoverGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn try_once(lock_dir: &Path, stale: Duration) -> Result<Attempt> {
    // At most a few rounds: mkdir, (lock vanished | stale lock replaced), mkdir again.
    for _ in 0..3 {
        if let Some(t) = make_lock(lock_dir)? {
            return Ok(Attempt::Taken(t));
        }
        let seen = match mtime_of(lock_dir) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => continue, // released meanwhile: retry now
            Err(e) => return Err(Error::io_path("stat lock", lock_dir, e)),
        };
        if !is_stale(seen, stale) {
            return Ok(Attempt::Held);
        }
        // Stale. Only the holder of the takeover mutex replaces it, after re-checking under the
        // mutex, so two of our processes never both remove a lock and one of them the fresh one.
        let takeover = takeover_path_for(lock_dir);
        match std::fs::create_dir(&takeover) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                // Someone is taking it over. A takeover mutex as old as a stale lock was left by a
                // killed process: clear it, and the next attempt decides.
                if mtime_of(&takeover).is_ok_and(|m| is_stale(m, stale)) {
                    let _ = std::fs::remove_dir(&takeover);
                }
                return Ok(Attempt::Held);
            }
            Err(e) => return Err(Error::io_path("create takeover mutex", &takeover, e)),
        }
        let _guard = TakeoverGuard(takeover);
        match mtime_of(lock_dir) {
            Ok(again) if again == seen && is_stale(again, stale) => {}
            Ok(_) => return Ok(Attempt::Held), // refreshed or replaced meanwhile
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io_path("stat lock", lock_dir, e)),
        }
        match std::fs::remove_dir(lock_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io_path("remove stale lock", lock_dir, e)),
        }
        // Made while the mutex is held: a proper-lockfile process may still win this mkdir.
        return Ok(match make_lock(lock_dir)? {
            Some(t) => Attempt::Taken(t),
            None => Attempt::Held,
        });
    }
    Ok(Attempt::Held)
}

impl FileLock {
    /// Takes the lock of `file`, retrying with backoff up to `opts.timeout`.
    ///
    /// Fails with [`Error::Lock`] naming the lock path when it stays held (not stale) past the
    /// timeout, or with [`Error::Io`] when the folder cannot be written.
    pub fn acquire(file: &Path, opts: &LockOptions) -> Result<FileLock> {
        let lock_dir = lock_path_for(file)?;
        let start = Instant::now();
        let mut backoff = opts.min_backoff.max(Duration::from_millis(1));
        loop {
            if let Attempt::Taken(t) = try_once(&lock_dir, opts.stale)? {
                return Ok(Self::hold(lock_dir, t, opts));
            }
            let elapsed = start.elapsed();
            if elapsed >= opts.timeout {
                return Err(Error::Lock(format!(
                    "{} is held by another process (waited {} ms; a lock is stale after {} ms)",
                    lock_dir.display(),
                    elapsed.as_millis(),
                    opts.stale.as_millis()
                )));
            }
            std::thread::sleep(backoff.min(opts.timeout - elapsed));
            backoff = (backoff * 2).min(opts.max_backoff.max(opts.min_backoff));
        }
    }

    /// One attempt: the lock if it was free (or stale), `None` if another process holds it.
    pub fn try_acquire(file: &Path, opts: &LockOptions) -> Result<Option<FileLock>> {
        let lock_dir = lock_path_for(file)?;
        Ok(match try_once(&lock_dir, opts.stale)? {
            Attempt::Taken(t) => Some(Self::hold(lock_dir, t, opts)),
            Attempt::Held => None,
        })
    }

    fn hold(lock_dir: PathBuf, mtime: SystemTime, opts: &LockOptions) -> FileLock {
        let shared = Arc::new(Shared {
            released: Mutex::new(false),
            wake: Condvar::new(),
            compromised: AtomicBool::new(false),
        });
        let update = opts.update.max(Duration::from_millis(100));
        let refresher = {
            let shared = shared.clone();
            let dir = lock_dir.clone();
            std::thread::Builder::new()
                .name("vibetrees-lock".into())
                .spawn(move || refresh_loop(&dir, mtime, update, &shared))
                .ok()
        };
        FileLock {
            lock_dir,
            shared,
            refresher,
        }
    }

    /// The lock directory (`<realpath>.lock`).
    pub fn lock_path(&self) -> &Path {
        &self.lock_dir
    }

    /// True when the lock was found taken over or removed by someone else while held.
    pub fn is_compromised(&self) -> bool {
        self.shared.compromised.load(Ordering::SeqCst)
    }

    /// Releases the lock now (removes its directory), reporting a failure to remove it.
    pub fn release(mut self) -> Result<()> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<()> {
        {
            let mut released = self.shared.released.lock();
            if *released {
                return Ok(());
            }
            *released = true;
            self.shared.wake.notify_all();
        }
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        if self.is_compromised() {
            // Someone else owns the directory now: leave it alone.
            return Ok(());
        }
        match std::fs::remove_dir(&self.lock_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io_path("remove lock", &self.lock_dir, e)),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.release_inner();
    }
}

fn refresh_loop(dir: &Path, first_mtime: SystemTime, update: Duration, shared: &Shared) {
    let mut ours = first_mtime;
    let mut released = shared.released.lock();
    loop {
        let deadline = Instant::now() + update;
        while !*released {
            if shared.wake.wait_until(&mut released, deadline).timed_out() {
                break;
            }
        }
        if *released {
            return;
        }
        match mtime_of(dir) {
            Ok(m) if m == ours => {}
            _ => {
                shared.compromised.store(true, Ordering::SeqCst);
                return;
            }
        }
        let t = now_ms();
        match set_mtime(dir, t) {
            Ok(()) => ours = mtime_of(dir).unwrap_or(t),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                shared.compromised.store(true, Ordering::SeqCst);
                return;
            }
            Err(_) => {} // transient: retry at the next tick
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_a_directory_next_to_the_real_path_and_released_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("ports.json");
        let lock = FileLock::acquire(&file, &LockOptions::default()).unwrap();
        let expect = std::fs::canonicalize(d.path())
            .unwrap()
            .join("ports.json.lock");
        assert_eq!(lock.lock_path(), expect);
        assert!(expect.is_dir());
        assert!(
            FileLock::try_acquire(&file, &LockOptions::default())
                .unwrap()
                .is_none()
        );
        drop(lock);
        assert!(!expect.exists());
    }

    #[test]
    fn a_stale_lock_is_taken_over_and_a_fresh_one_times_out() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("ports.json");
        std::fs::write(&file, "{}").unwrap();
        let dir = lock_path_for(&file).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let opts = LockOptions {
            timeout: Duration::from_millis(200),
            ..LockOptions::default()
        };
        let err = FileLock::acquire(&file, &opts).unwrap_err();
        assert_eq!(err.code(), "LOCK");
        assert!(err.to_string().contains("ports.json.lock"), "{err}");
        set_mtime(&dir, SystemTime::now() - Duration::from_secs(11)).unwrap();
        let lock = FileLock::acquire(&file, &opts).unwrap();
        assert!(is_stale(
            SystemTime::now() - Duration::from_secs(11),
            opts.stale
        ));
        assert!(!is_stale(mtime_of(&dir).unwrap(), opts.stale));
        lock.release().unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn the_holder_refreshes_the_mtime() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        let opts = LockOptions {
            update: Duration::from_millis(100),
            ..LockOptions::default()
        };
        let lock = FileLock::acquire(&file, &opts).unwrap();
        let old = SystemTime::now() - Duration::from_secs(60);
        // Pretend a long pause: the refresher sees a foreign mtime and flags the lock compromised.
        set_mtime(lock.lock_path(), old).unwrap();
        let t0 = Instant::now();
        while !lock.is_compromised() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(lock.is_compromised());
        drop(lock);
        // A compromised lock's directory is left to whoever owns it now.
        assert!(lock_path_for(&file).unwrap().exists());

        std::fs::remove_dir(lock_path_for(&file).unwrap()).unwrap();
        let lock = FileLock::acquire(&file, &opts).unwrap();
        let first = mtime_of(lock.lock_path()).unwrap();
        let t0 = Instant::now();
        while mtime_of(lock.lock_path()).unwrap() == first && t0.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(mtime_of(lock.lock_path()).unwrap() > first);
        assert!(!lock.is_compromised());
    }

    #[test]
    fn a_stale_lock_is_taken_over_only_under_the_takeover_mutex() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("ports.json");
        std::fs::write(&file, "{}").unwrap();
        let dir = lock_path_for(&file).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let old = SystemTime::now() - Duration::from_secs(11);
        set_mtime(&dir, old).unwrap();
        // another process is taking it over right now: we neither remove it nor take it
        let takeover = takeover_path_for(&dir);
        std::fs::create_dir(&takeover).unwrap();
        let opts = LockOptions::default();
        assert!(FileLock::try_acquire(&file, &opts).unwrap().is_none());
        assert!(dir.is_dir() && takeover.is_dir());
        assert!(is_stale(mtime_of(&dir).unwrap(), opts.stale));
        // its takeover finished (the mutex is gone): now the stale lock is ours
        std::fs::remove_dir(&takeover).unwrap();
        let lock = FileLock::try_acquire(&file, &opts).unwrap().unwrap();
        assert!(!is_stale(mtime_of(&dir).unwrap(), opts.stale));
        assert!(
            !takeover.exists(),
            "the mutex is released after the takeover"
        );
        drop(lock);
        // a takeover mutex left by a killed process (as old as a stale lock) is cleared
        std::fs::create_dir(&dir).unwrap();
        set_mtime(&dir, old).unwrap();
        std::fs::create_dir(&takeover).unwrap();
        set_mtime(&takeover, old).unwrap();
        assert!(FileLock::try_acquire(&file, &opts).unwrap().is_none());
        assert!(!takeover.exists());
        assert!(FileLock::try_acquire(&file, &opts).unwrap().is_some());
    }
}
