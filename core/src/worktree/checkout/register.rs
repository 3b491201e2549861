//! The worktree's registration (`.git/worktrees/<name>`): its files written exactly as
//! `git worktree add` writes them, by us ([`register`] for a new folder, [`register_claimed`] for
//! a folder that already holds its files and index: a claimed pool spare), built aside and
//! published by one rename so git never sees half of one; the lock our processes take to
//! register one at a time; the sweep of registrations that older versions left half-written
//! inside libgit2's `git_worktree_add`; the files `git worktree add` leaves beside HEAD; and
//! [`unregister`], which undoes what [`register`] and the writer made.
//!
//! Written by us rather than by libgit2's `git_worktree_add`, which opens every registered
//! worktree as a repository to see whether the branch is checked out: beside 200 worktrees it
//! took 44 ms to register instead of 2 (debug build). The same check here reads one `HEAD` file
//! per worktree, as the git CLI does.
//!
//! Owns: the registration folder and the registration lock. Must not touch: the worktree's files
//! (except removing the folder in [`unregister`], which this creation made), branches, other
//! tools' registrations (only half-written ones of our own are swept).

use crate::{Error, Result};
use git2::{Oid, Repository};
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

/// The marker older versions wrote while libgit2's `git_worktree_add` registered a worktree for
/// them: `<common dir>/vibetrees-registering` holds the registration's name, written before that
/// call and removed after the registration's files were rewritten. Found while holding
/// [`registration_lock`], it was left by a process of ours killed in between. (Registrations are
/// now built aside and published by one rename: [`publish`].)
const REGISTERING: &str = "vibetrees-registering";

/// The registration a process of ours was writing when it died, by our own marker: `Some(name)`
/// only when `vibetrees-registering` names it and no live process holds [`registration_lock`] (one
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

/// Removes the registration libgit2 was writing for one of our (older) processes when it was killed,
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
/// Registers the new worktree `path` on local branch `branch`, as `git worktree add --lock
/// --reason <lock_reason>` does: refused when the branch is checked out in another worktree
/// (`checked_out_at`) or `path` exists (its parent must); then the folder is made and the
/// registration (`locked`, `commondir`, `gitdir`, `HEAD`) published with the worktree's `.git`
/// file (`publish`). Named as the git CLI names it (the folder's basename, then `<base>1`,
/// `<base>2`, ... when taken). Returns the registration's name. On failure nothing of it is left.
pub fn register(repo: &Repository, path: &Path, branch: &str, lock_reason: &str) -> Result<String> {
    let base = folder_name(path)?;
    repo.find_branch(branch, git2::BranchType::Local)
        .map_err(|e| Error::git(format!("branch {branch:?}"), e))?;
    let common = std::fs::canonicalize(repo.commondir())
        .map_err(|e| Error::io_path("resolve", repo.commondir(), e))?;
    let refused = |message: String| Error::Git {
        context: format!("register worktree {}", path.display()),
        message,
    };
    // One registration at a time among our processes: the "is the branch checked out" check
    // and the name must not race another process's registration.
    let _registering = registration_lock(&common)?;
    sweep_unfinished_registrations(&common);
    if let Some(at) = checked_out_at(repo, &common, branch) {
        return Err(refused(format!(
            "branch {branch:?} is already checked out at {}",
            at.display()
        )));
    }
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(refused(format!("{} already exists", path.display())));
        }
        Err(e) => return Err(Error::io_path("create directory", path, e)),
    }
    let published = std::fs::canonicalize(path)
        .map_err(|e| Error::io_path("resolve", path, e))
        .and_then(|wt| {
            publish(&common, base, &wt, |tmp| {
                write_files(tmp, &cli_registration_files(&wt, lock_reason))?;
                write_files(tmp, &[("HEAD", head_file(branch))])
            })
        });
    if published.is_err() {
        // made above by this call, so entirely ours
        let _ = std::fs::remove_dir_all(path);
    }
    published
}

/// Where local `branch` is checked out, if anywhere: the main worktree (unless the repository is
/// bare) or a registered one, read from each `HEAD` file (a symbolic `ref: refs/heads/<branch>`),
/// as `git worktree add` checks. Costs one small read per worktree.
pub fn checked_out_at(
    repo: &Repository,
    common: &Path,
    branch: &str,
) -> Option<std::path::PathBuf> {
    let wanted = head_file(branch);
    if !repo.is_bare()
        && std::fs::File::open(common).is_ok_and(|d| holds(&d, Path::new("HEAD"), &wanted))
    {
        return Some(
            repo.workdir()
                .map_or_else(|| common.to_path_buf(), Path::to_path_buf),
        );
    }
    let worktrees = common.join("worktrees");
    let folder = std::fs::File::open(&worktrees).ok()?;
    let rd = std::fs::read_dir(&worktrees).ok()?;
    rd.flatten().find_map(|e| {
        holds(&folder, &Path::new(&e.file_name()).join("HEAD"), &wanted).then(|| {
            let dir = e.path();
            std::fs::read_to_string(dir.join("gitdir"))
                .ok()
                .and_then(|g| Path::new(g.trim_end()).parent().map(Path::to_path_buf))
                .unwrap_or(dir)
        })
    })
}

/// Whether the file `rel` under the folder `dir` holds exactly `wanted`: one `openat`, reads
/// that stop at the first differing byte, no `stat` (this runs once per registered worktree on
/// every creation, so it is kept to the fewest system calls).
fn holds(dir: &std::fs::File, rel: &Path, wanted: &[u8]) -> bool {
    use rustix::fs::{Mode, OFlags};
    let Ok(fd) = rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
    else {
        return false;
    };
    // one byte more than `wanted`, to see a longer file
    let mut buf = vec![0u8; wanted.len() + 1];
    let mut got = 0;
    loop {
        match rustix::io::read(&fd, &mut buf[got..]) {
            Ok(0) => return got == wanted.len(),
            Ok(n) => {
                got += n;
                if got > wanted.len() || buf[..got] != wanted[..got] {
                    return false;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return false,
        }
    }
}

/// The folder name of `path` when it can be a registration name as the git CLI would make it.
fn folder_name(path: &Path) -> Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| plain_name(n))
        .ok_or_else(|| {
            Error::InvalidArgument(format!("worktree folder name of {}", path.display()))
        })
}

/// A registration's `HEAD` on local `branch`.
fn head_file(branch: &str) -> Vec<u8> {
    format!("ref: refs/heads/{branch}\n").into_bytes()
}

/// Writes each `(name, bytes)` into the folder `dir`.
fn write_files(dir: &Path, files: &[(&str, Vec<u8>)]) -> Result<()> {
    for (name, bytes) in files {
        let f = dir.join(name);
        std::fs::write(&f, bytes).map_err(|e| Error::io_path("write", &f, e))?;
    }
    Ok(())
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

/// Where [`publish`] builds a registration before renaming it into `worktrees/`
/// (`<common dir>/vibetrees-claiming/`): never read by git. What a killed process left there is
/// removed by the next registration, under the registration lock.
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
    let base = folder_name(path)?;
    let common = std::fs::canonicalize(repo.commondir())
        .map_err(|e| Error::io_path("resolve", repo.commondir(), e))?;
    let wt = std::fs::canonicalize(path).map_err(|e| Error::io_path("resolve", path, e))?;
    let _registering = registration_lock(&common)?;
    sweep_unfinished_registrations(&common);
    publish(&common, base, &wt, |tmp| {
        write_files(tmp, &cli_registration_files(&wt, lock_reason))?;
        write_files(tmp, &[("HEAD", head_file(branch))])?;
        let to = tmp.join("index");
        if std::fs::rename(index, &to).is_err() {
            // another filesystem: copied, then the spare's copy removed
            std::fs::copy(index, &to).map_err(|e| Error::io_path("copy the index to", &to, e))?;
            let _ = std::fs::remove_file(index);
        }
        fill(tmp)
    })
}

/// Builds a registration for the worktree `wt` (canonical) aside, in
/// `<common>/vibetrees-claiming/<base>` (never read by git), with `build`, then publishes it:
/// the worktree's `.git` file written and the folder renamed (never over an existing one) to
/// `.git/worktrees/<name>`, `name` the first of `<base>`, `<base>1`, ... that is free. Git never
/// sees half a registration; what a killed process left aside is removed here, by the next one.
/// Call it holding [`registration_lock`].
fn publish(
    common: &Path,
    base: &str,
    wt: &Path,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<String> {
    let io = |what: &str, p: &Path, e| Error::io_path(what, p, e);
    let aside = common.join(CLAIMING);
    // nothing of ours is building one now (the caller holds the lock): what is there was left
    // by a kill
    let _ = std::fs::remove_dir_all(&aside);
    let tmp = aside.join(base);
    let worktrees = common.join("worktrees");
    std::fs::create_dir_all(&tmp).map_err(|e| io("create directory", &tmp, e))?;
    std::fs::create_dir_all(&worktrees).map_err(|e| io("create directory", &worktrees, e))?;
    if let Err(e) = build(&tmp) {
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
        wt.display()
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

#[cfg(test)]
mod tests {
    use super::holds;
    use std::path::Path;

    #[test]
    fn holds_is_exact_equality_of_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = std::fs::File::open(dir.path()).unwrap();
        let wanted = b"ref: refs/heads/feature\n";
        let cases: [(&str, &[u8], bool); 5] = [
            ("same", wanted, true),
            ("longer", b"ref: refs/heads/feature\nmore", false),
            ("shorter", b"ref: refs/heads/feat", false),
            ("other", b"ref: refs/heads/main\n", false),
            ("empty", b"", false),
        ];
        for (name, text, expected) in cases {
            std::fs::write(dir.path().join(name), text).unwrap();
            assert_eq!(holds(&folder, Path::new(name), wanted), expected, "{name}");
        }
        assert!(!holds(&folder, Path::new("missing"), wanted));
        // a branch name longer than any small buffer
        let long = format!("ref: refs/heads/{}\n", "x".repeat(2000));
        std::fs::write(dir.path().join("long"), &long).unwrap();
        assert!(holds(&folder, Path::new("long"), long.as_bytes()));
        assert!(!holds(&folder, Path::new("long"), &long.as_bytes()[1..]));
    }
}
