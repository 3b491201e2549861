//! The worktree's registration (`.git/worktrees/<name>`): made by libgit2's `git_worktree_add`
//! (locked, its checkout a dry run), then its files rewritten exactly as `git worktree add`
//! writes them; [`register_claimed`], the same files for a folder that already holds its files
//! and index (a claimed pool spare); the lock our processes take to register one at a time; the sweep of
//! registrations left half-written by a killed process of ours; the files `git worktree add`
//! leaves beside HEAD; and [`unregister`], which undoes what [`register`] and the writer made.
//!
//! Owns: the registration folder and the registration lock. Must not touch: the worktree's files
//! (except removing the folder in [`unregister`], which this creation made), branches, other
//! tools' registrations (only half-written ones of our own are swept).

use crate::{Error, Result};
use git2::{Binding, Oid, Repository};
use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// True if `base` can be a registration name exactly as the git CLI would name it (the CLI
/// sanitizes other names; those go through the CLI).
pub fn plain_name(base: &str) -> bool {
    !base.is_empty()
        && !base.starts_with('.')
        && !base.ends_with(".lock")
        && !base.contains("..")
        && base
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Our own marker of a registration being written: `<common dir>/vibetrees-registering` holds
/// the name of the registration that [`register`] is asking libgit2 for, written before that
/// call and removed after the registration's files are ours. Found while holding
/// [`registration_lock`], it was left by a process of ours killed in between.
const REGISTERING: &str = "vibetrees-registering";

/// The registration a process of ours was writing when it died, by our own marker: `Some(name)`
/// only when [`REGISTERING`] names it and no live process holds [`registration_lock`] (one
/// that does may be writing it right now).
pub fn left_registering(common: &Path) -> Option<String> {
    let name = std::fs::read_to_string(common.join(REGISTERING)).ok()?;
    let lock_path = common.join("vibetrees-worktree-add.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .ok()?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(name.trim().to_string())
}

/// Removes the registration libgit2 was writing for one of our processes when it was killed,
/// and only that one (named by [`REGISTERING`]): when it has an empty `locked` (our reason is
/// written right after libgit2 returns, under the same lock) with libgit2's absolute
/// `commondir`, or no `gitdir`. Call it holding [`registration_lock`]: no live process of ours
/// is writing one then. Registrations without our marker (other tools', the git CLI's, a
/// worktree locked by its user with no reason) are never touched.
fn sweep_unfinished_registrations(common: &Path) {
    let marker = common.join(REGISTERING);
    let Ok(named) = std::fs::read_to_string(&marker) else {
        return;
    };
    let name = named.trim();
    let worktrees = common.join("worktrees");
    let ours = plain_name(name)
        .then(|| worktrees.join(name))
        .and_then(|d| std::fs::symlink_metadata(&d).ok().map(|m| (d, m)));
    if let Some((dir, meta)) = ours
        && meta.is_dir()
    {
        let unfinished = match std::fs::read(dir.join("locked")) {
            // killed right after libgit2's mkdir
            Err(_) => !dir.join("gitdir").exists(),
            Ok(lock) if lock.iter().all(u8::is_ascii_whitespace) => {
                let commondir_absolute = std::fs::read(dir.join("commondir"))
                    .map(|c| c.is_empty() || c.starts_with(b"/"))
                    .unwrap_or(true);
                let no_gitdir = std::fs::read(dir.join("gitdir"))
                    .map(|g| g.iter().all(u8::is_ascii_whitespace))
                    .unwrap_or(true);
                commondir_absolute || no_gitdir
            }
            Ok(_) => false,
        };
        if unfinished {
            tracing::warn!(
                "removing {} (a registration left half-written)",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let _ = std::fs::remove_file(&marker);
}

/// The lock our processes take to create a branch or register a worktree, one at a time
/// (`<common dir>/vibetrees-worktree-add.lock`, an flock: released when the holder exits, even
/// killed). Held until the returned file is dropped; a second take in the same process blocks.
pub fn registration_lock(common: &Path) -> Result<std::fs::File> {
    let lock_path = common.join("vibetrees-worktree-add.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .and_then(|f| {
            rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)?;
            Ok(f)
        })
        .map_err(|e| Error::io_path("lock", &lock_path, e))
}
/// Registers the worktree `path` on local branch `branch` through libgit2 (`git_worktree_add`,
/// locked, checkout as a dry run) with the git CLI's naming (the folder's basename, then
/// `<base>1`, `<base>2`, ... when taken) and rewrites the registration's files the way the git CLI
/// writes them; `lock_reason` goes into its `locked` file. `path` must not exist (its parent must).
/// Returns the registration's name. On failure nothing of it is left.
pub fn register(repo: &Repository, path: &Path, branch: &str, lock_reason: &str) -> Result<String> {
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| plain_name(n))
        .ok_or_else(|| {
            Error::InvalidArgument(format!("worktree folder name of {}", path.display()))
        })?;
    let reference = repo
        .find_branch(branch, git2::BranchType::Local)
        .map_err(|e| Error::git(format!("branch {branch:?}"), e))?
        .into_reference();
    let common = std::fs::canonicalize(repo.commondir())
        .map_err(|e| Error::io_path("resolve", repo.commondir(), e))?;
    let worktrees = common.join("worktrees");
    // One registration at a time among our processes: libgit2's "is the branch checked out
    // elsewhere" reads every registration, and one that another process is writing at that
    // instant made it see a branch as checked out. Held until this function returns.
    let _registering = registration_lock(&common)?;
    sweep_unfinished_registrations(&common);
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("path {}", path.display())))?;
    let mut counter = 0u32;
    loop {
        let name = if counter == 0 {
            base.to_string()
        } else {
            format!("{base}{counter}")
        };
        counter += 1;
        let gitdir = worktrees.join(&name);
        if std::fs::symlink_metadata(&gitdir).is_ok() {
            continue;
        }
        let c_name = CString::new(name.as_bytes()).expect("plain name");
        let registering = common.join(REGISTERING);
        std::fs::write(&registering, format!("{name}\n"))
            .map_err(|e| Error::io_path("write", &registering, e))?;
        let no_path = c"\x01vibetrees-no-path";
        let no_paths = [no_path.as_ptr()];
        // SAFETY: options initialised by libgit2's own init function, then filled with pointers
        // (the reference) that outlive the call; `out` is freed right after.
        let rc = unsafe {
            let mut opts: libgit2_sys::git_worktree_add_options = std::mem::zeroed();
            let rc = libgit2_sys::git_worktree_add_options_init(
                &mut opts,
                libgit2_sys::GIT_WORKTREE_ADD_OPTIONS_VERSION,
            );
            if rc != 0 {
                let _ = std::fs::remove_file(&registering);
                return Err(Error::git(
                    "worktree add options",
                    git2::Error::last_error(rc),
                ));
            }
            opts.lock = 1;
            opts.reference = reference.raw();
            // Dry run: libgit2 only diffs (no file, no index); the files are ours to write. The
            // diff is limited to a path that sorts before any tree entry, so libgit2 reads only
            // the root tree instead of walking the whole tree (~25 ms for 4k files).
            opts.checkout_options.checkout_strategy =
                GIT_CHECKOUT_DRY_RUN | GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
            opts.checkout_options.paths = libgit2_sys::git_strarray {
                strings: no_paths.as_ptr() as *mut *mut std::ffi::c_char,
                count: 1,
            };
            let mut out: *mut libgit2_sys::git_worktree = std::ptr::null_mut();
            let rc = libgit2_sys::git_worktree_add(
                &mut out,
                repo.raw(),
                c_name.as_ptr(),
                c_path.as_ptr(),
                &opts,
            );
            if !out.is_null() {
                libgit2_sys::git_worktree_free(out);
            }
            rc
        };
        if rc != 0 {
            let err = git2::Error::last_error(rc);
            let gitdir_taken = err.message().contains(&*gitdir.to_string_lossy())
                && err.message().contains("exists");
            if gitdir_taken && counter < 10_000 {
                continue; // another process took this name in between
            }
            // libgit2 made `.git/worktrees/<name>` before it failed on the folder: remove it
            // (it did not exist a moment ago; no other process would use a registration
            // without its `gitdir` file).
            if !gitdir_taken && !gitdir.join("gitdir").exists() {
                let _ = std::fs::remove_dir_all(&gitdir);
            }
            let _ = std::fs::remove_file(&registering);
            return Err(Error::git(
                format!("register worktree {}", path.display()),
                err,
            ));
        }
        // Rewritten by rename, never truncated in place: a reader (git, libgit2) never sees
        // an empty file.
        let replace = |file: &Path, bytes: &[u8]| -> std::io::Result<()> {
            let mut tmp = file.as_os_str().to_owned();
            tmp.push(".vibetrees-tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, file)
        };
        let written = (|| -> std::io::Result<()> {
            let wt = std::fs::canonicalize(path)?;
            for (file, bytes) in cli_registration_files(&wt, lock_reason) {
                replace(&gitdir.join(file), &bytes)?;
            }
            replace(&wt.join(".git"), &dot_git_file(&gitdir))?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&gitdir);
            let _ = std::fs::remove_dir_all(path);
            let _ = std::fs::remove_file(&registering);
            return Err(Error::io_path("write worktree registration", &gitdir, e));
        }
        let _ = std::fs::remove_file(&registering);
        return Ok(name);
    }
}

/// The files of a registration as `git worktree add --lock --reason <lock_reason>` writes them
/// besides `HEAD` and the index, for the worktree at `wt` (canonical): `locked`, `commondir`
/// (relative) and `gitdir` (the worktree's `.git` file).
fn cli_registration_files(wt: &Path, lock_reason: &str) -> [(&'static str, Vec<u8>); 3] {
    let mut g = wt.join(".git").into_os_string().into_vec();
    g.push(b'\n');
    [
        ("locked", format!("{lock_reason}\n").into_bytes()),
        ("commondir", b"../..\n".to_vec()),
        ("gitdir", g),
    ]
}

/// The worktree's `.git` file pointing at its registration `gitdir`, as the git CLI writes it.
fn dot_git_file(gitdir: &Path) -> Vec<u8> {
    let mut d = b"gitdir: ".to_vec();
    d.extend_from_slice(gitdir.as_os_str().as_bytes());
    d.push(b'\n');
    d
}

/// Where [`register_claimed`] builds a registration before publishing it with one rename
/// (`<common dir>/vibetrees-claiming/`): never read by git. What a killed process left there is
/// removed by the next [`register_claimed`], under the registration lock.
const CLAIMING: &str = "vibetrees-claiming";

/// Registers the folder `path`, already holding the files and index of `branch`'s commit (a
/// claimed pool spare, `worktree/pool/`), exactly as `git worktree add --lock --reason
/// <lock_reason>` would have: `locked`, `commondir`, `gitdir`, `HEAD` on `branch`, the index
/// moved in from `index`, then whatever `fill` adds (the files beside HEAD, our marker), and the
/// worktree's `.git` file. Named as the git CLI names it (the folder's basename, then `<base>1`,
/// ...). The registration is built aside and published by one rename under
/// [`registration_lock`]: git never sees half of it. The caller checks that no worktree has
/// `branch` checked out (a branch it just created). Returns the registration's name.
pub fn register_claimed(
    repo: &Repository,
    path: &Path,
    branch: &str,
    lock_reason: &str,
    index: &Path,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<String> {
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| plain_name(n))
        .ok_or_else(|| {
            Error::InvalidArgument(format!("worktree folder name of {}", path.display()))
        })?;
    let common = std::fs::canonicalize(repo.commondir())
        .map_err(|e| Error::io_path("resolve", repo.commondir(), e))?;
    let wt = std::fs::canonicalize(path).map_err(|e| Error::io_path("resolve", path, e))?;
    let worktrees = common.join("worktrees");
    let _registering = registration_lock(&common)?;
    sweep_unfinished_registrations(&common);
    let aside = common.join(CLAIMING);
    // nothing of ours is building one now (we hold the lock): what is there was left by a kill
    let _ = std::fs::remove_dir_all(&aside);
    let tmp = aside.join(base);
    let io = |what: &str, p: &Path, e| Error::io_path(what, p, e);
    std::fs::create_dir_all(&tmp).map_err(|e| io("create directory", &tmp, e))?;
    std::fs::create_dir_all(&worktrees).map_err(|e| io("create directory", &worktrees, e))?;
    let built = (|| -> Result<()> {
        for (file, bytes) in cli_registration_files(&wt, lock_reason) {
            let f = tmp.join(file);
            std::fs::write(&f, bytes).map_err(|e| io("write", &f, e))?;
        }
        let head = tmp.join("HEAD");
        std::fs::write(&head, format!("ref: refs/heads/{branch}\n"))
            .map_err(|e| io("write", &head, e))?;
        let to = tmp.join("index");
        if std::fs::rename(index, &to).is_err() {
            // another filesystem: copied, then the spare's copy removed
            std::fs::copy(index, &to).map_err(|e| io("copy the index to", &to, e))?;
            let _ = std::fs::remove_file(index);
        }
        fill(&tmp)
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&aside);
        return Err(e);
    }
    let dot_git = wt.join(".git");
    for counter in 0u32..10_000 {
        let name = if counter == 0 {
            base.to_string()
        } else {
            format!("{base}{counter}")
        };
        let gitdir = worktrees.join(&name);
        if std::fs::symlink_metadata(&gitdir).is_ok() {
            continue;
        }
        std::fs::write(&dot_git, dot_git_file(&gitdir)).map_err(|e| io("write", &dot_git, e))?;
        match crate::platform::rename_no_replace(&tmp, &gitdir) {
            Ok(()) => {
                let _ = std::fs::remove_dir(&aside);
                return Ok(name);
            }
            // another tool took the name in between
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    || e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {}
            Err(e) => {
                let _ = std::fs::remove_file(&dot_git);
                let _ = std::fs::remove_dir_all(&aside);
                return Err(io("publish the registration", &gitdir, e));
            }
        }
    }
    let _ = std::fs::remove_file(&dot_git);
    let _ = std::fs::remove_dir_all(&aside);
    Err(Error::AlreadyExists(format!(
        "no free registration name for {}",
        path.display()
    )))
}

/// Removes what [`register`] and [`super::checkout_tree`] made: the folder `path` (made by them, so
/// entirely theirs) and the registration `name`.
pub fn unregister(repo: &Repository, path: &Path, name: &str) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        std::fs::remove_dir_all(path).map_err(|e| Error::io_path("remove", path, e))?;
    }
    let gitdir = repo.commondir().join("worktrees").join(name);
    if gitdir.exists() {
        std::fs::remove_dir_all(&gitdir).map_err(|e| Error::io_path("remove", &gitdir, e))?;
    }
    Ok(())
}

/// libgit2 1.9's `GIT_CHECKOUT_DRY_RUN` (checkout.h; libgit2-sys 0.18 does not name it): the
/// checkout computes what it would do and writes nothing, neither files nor index.
const GIT_CHECKOUT_DRY_RUN: u32 = 1 << 24;
/// libgit2's `GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH`: the checkout's paths are exact paths.
const GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH: u32 = 1 << 13;

/// Writes what `git worktree add` leaves beside HEAD in the registration `gitdir` after its
/// internal `reset --hard`: `ORIG_HEAD`, an empty `refs/`, and (unless `core.logAllRefUpdates` is
/// false) HEAD's reflog with the CLI's two entries. The reflog needs a committer identity
/// (`GIT_COMMITTER_NAME`/`EMAIL` or `user.name`/`user.email`); without one it is left out.
pub fn write_head_files(repo: &Repository, gitdir: &Path, commit: Oid) -> Result<()> {
    let io = |what: &str, p: &Path, e| Error::io_path(what, p, e);
    let orig = gitdir.join("ORIG_HEAD");
    std::fs::write(&orig, format!("{commit}\n")).map_err(|e| io("write", &orig, e))?;
    let refs = gitdir.join("refs");
    std::fs::create_dir_all(&refs).map_err(|e| io("create directory", &refs, e))?;
    let log_refs = repo
        .config()
        .and_then(|c| c.get_bool("core.logAllRefUpdates"))
        .unwrap_or(true);
    let ident = {
        let cfg = repo.config().ok();
        let get = |env: &str, key: &str| {
            std::env::var(env)
                .ok()
                .or_else(|| cfg.as_ref().and_then(|c| c.get_string(key).ok()))
        };
        match (
            get("GIT_COMMITTER_NAME", "user.name"),
            get("GIT_COMMITTER_EMAIL", "user.email"),
        ) {
            (Some(n), Some(m)) => git2::Signature::now(&n, &m).ok(),
            _ => None,
        }
    };
    if let (true, Some(sig)) = (log_refs, ident) {
        let t = sig.when();
        let off = t.offset_minutes();
        let sign = if off < 0 { '-' } else { '+' };
        let who = format!(
            "{} <{}> {} {sign}{:02}{:02}",
            String::from_utf8_lossy(sig.name_bytes()),
            String::from_utf8_lossy(sig.email_bytes()),
            t.seconds(),
            off.abs() / 60,
            off.abs() % 60
        );
        let zero = Oid::ZERO_SHA1;
        let logs = gitdir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| io("create directory", &logs, e))?;
        let log = logs.join("HEAD");
        std::fs::write(
            &log,
            format!("{zero} {commit} {who}\n{commit} {commit} {who}\treset: moving to HEAD\n"),
        )
        .map_err(|e| io("write", &log, e))?;
    }
    Ok(())
}
