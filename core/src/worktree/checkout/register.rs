//! The worktree's registration (`.git/worktrees/<name>`): its files written exactly as
//! `git worktree add` writes them, by us (libgit2's `git_worktree_add` costs time in the number
//! of worktrees); the lock our processes take to register one at a time; the sweep of
//! registrations left half-written by a killed process of ours (also inside libgit2, which older
//! versions registered with); the files `git worktree add` leaves beside HEAD; and [`unregister`], which undoes
//! what [`register`] and the writer made.
//!
//! Owns: the registration folder and the registration lock. Must not touch: the worktree's files
//! (except removing the folder in [`unregister`], which this creation made), branches, other
//! tools' registrations (only half-written ones of our own are swept).

use crate::{Error, Result};
use git2::{Oid, Repository};
use std::os::unix::ffi::OsStrExt;
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
            // ours, written by `register` (reason first, `gitdir` last): no `gitdir`, unusable
            Ok(_) => !dir.join("gitdir").exists(),
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
/// Registers the worktree `path` on local branch `branch`: writes the files `git worktree add`
/// writes (`.git/worktrees/<name>/` with `locked` holding `lock_reason`, `HEAD`, `commondir`,
/// `gitdir`, and the worktree's `.git` file), with the git CLI's naming (the folder's basename,
/// then `<base>1`, `<base>2`, ... when taken). `path` must not exist (its parent must). Returns
/// the registration's name. On failure nothing of it is left.
///
/// Written here rather than by libgit2's `git_worktree_add`, which opens every registered
/// worktree as a repository to see whether the branch is checked out (about 0.2 ms each: a
/// creation beside 200 worktrees took 44 ms to register instead of 2). The same check here reads
/// one `HEAD` file per worktree, as the git CLI does. Order: `locked` first and `gitdir` last, so a
/// registration cut short by a kill has no `gitdir`, and [`sweep_unfinished_registrations`]
/// (by our marker) removes it.
pub fn register(repo: &Repository, path: &Path, branch: &str, lock_reason: &str) -> Result<String> {
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| plain_name(n))
        .ok_or_else(|| {
            Error::InvalidArgument(format!("worktree folder name of {}", path.display()))
        })?;
    repo.find_branch(branch, git2::BranchType::Local)
        .map_err(|e| Error::git(format!("branch {branch:?}"), e))?;
    let common = std::fs::canonicalize(repo.commondir())
        .map_err(|e| Error::io_path("resolve", repo.commondir(), e))?;
    let worktrees = common.join("worktrees");
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
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(refused(format!("{} already exists", path.display())));
    }
    std::fs::create_dir_all(&worktrees).map_err(|e| Error::io_path("create", &worktrees, e))?;
    let registering = common.join(REGISTERING);
    let (name, gitdir) = (0u32..10_000)
        .map(|n| match n {
            0 => base.to_string(),
            n => format!("{base}{n}"),
        })
        .find_map(|name| {
            let gitdir = worktrees.join(&name);
            if std::fs::symlink_metadata(&gitdir).is_ok() {
                return None;
            }
            std::fs::write(&registering, format!("{name}\n")).ok()?;
            // another tool (the git CLI) may take the name in between: then the next one
            std::fs::create_dir(&gitdir).ok().map(|()| (name, gitdir))
        })
        .ok_or_else(|| {
            let _ = std::fs::remove_file(&registering);
            refused(format!("no free registration name for {base:?}"))
        })?;
    let written = (|| -> std::io::Result<()> {
        std::fs::create_dir(path)?;
        let wt = std::fs::canonicalize(path)?;
        replace(
            &gitdir.join("locked"),
            format!("{lock_reason}\n").as_bytes(),
        )?;
        replace(
            &gitdir.join("HEAD"),
            format!("ref: refs/heads/{branch}\n").as_bytes(),
        )?;
        replace(&gitdir.join("commondir"), b"../..\n")?;
        let mut d = std::ffi::OsString::from("gitdir: ");
        d.push(gitdir.as_os_str());
        d.push("\n");
        replace(&wt.join(".git"), d.as_bytes())?;
        let mut g = wt.join(".git").into_os_string();
        g.push("\n");
        replace(&gitdir.join("gitdir"), g.as_bytes())
    })();
    if let Err(e) = written {
        let path_was_ours = e.kind() != std::io::ErrorKind::AlreadyExists;
        let _ = std::fs::remove_dir_all(&gitdir);
        if path_was_ours {
            let _ = std::fs::remove_dir_all(path);
        }
        let _ = std::fs::remove_file(&registering);
        return Err(if path_was_ours {
            Error::io_path("write worktree registration", &gitdir, e)
        } else {
            refused(format!("{} already exists", path.display()))
        });
    }
    let _ = std::fs::remove_file(&registering);
    Ok(name)
}

/// Writes `bytes` to `file` through a temporary file renamed over it: a reader (git, libgit2)
/// never sees it empty or half-written.
fn replace(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".vibetrees-tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

/// Where local `branch` is checked out, if anywhere: the main worktree (unless the repository is
/// bare) or a registered one, read from each `HEAD` file (a symbolic `ref: refs/heads/<branch>`),
/// as `git worktree add` checks. Costs one small read per worktree.
pub fn checked_out_at(
    repo: &Repository,
    common: &Path,
    branch: &str,
) -> Option<std::path::PathBuf> {
    let wanted = format!("ref: refs/heads/{branch}");
    let on = |head: &Path| {
        std::fs::read_to_string(head).is_ok_and(|h| h.trim_end_matches(['\n', '\r']) == wanted)
    };
    if !repo.is_bare() && on(&common.join("HEAD")) {
        return Some(
            repo.workdir()
                .map_or_else(|| common.to_path_buf(), Path::to_path_buf),
        );
    }
    let rd = std::fs::read_dir(common.join("worktrees")).ok()?;
    rd.flatten().find_map(|e| {
        let dir = e.path();
        on(&dir.join("HEAD")).then(|| {
            std::fs::read_to_string(dir.join("gitdir"))
                .ok()
                .and_then(|g| Path::new(g.trim_end()).parent().map(Path::to_path_buf))
                .unwrap_or(dir)
        })
    })
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
