//! The git side of a worktree: refs and reading objects through git2; registration through
//! libgit2 and the checkout by our own parallel writer ([`super::checkout`]) when that is safe,
//! else `git worktree add` (run with arguments, never a shell). Must not decide anything about
//! debris (that is `recovery.rs`) nor read the environment: how to check out comes in
//! [`AddOptions`], from the manager's settings.
//!
//! Why not libgit2's own checkout: measured here it is 1.5–2.3× slower than the git CLI's for
//! thousands of files. Ours beats the git CLI's (numbers in docs/worktree.md); both stay
//! reachable with the `checkout` setting (`"git2"` or `"cli"`).
//!
//! A worktree being created carries a git worktree lock whose reason starts with
//! [`CREATING_REASON`]; it is removed when the worktree is ready. A creation killed half-way
//! leaves that lock behind, which is how the next attempt knows to clear the debris.

use super::checkout::{self, CheckoutError, CheckoutMethod};
use crate::{Error, Result};
use git2::{BranchType, Oid, Repository, WorktreeLockStatus, WorktreePruneOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use super::phases::CheckoutPhases;
pub use super::recovery::{CREATING_REASON, creating_pid};

/// Tree size from which the checkout runs with `checkout.workers=2` (measured: parallel
/// checkout only pays off on large trees on this 2-core machine).
pub const PARALLEL_CHECKOUT_FROM_FILES: usize = 10_000;

/// Opens the repository at `root` (its main worktree).
pub fn open(root: &Path) -> Result<Repository> {
    Repository::open(root).map_err(|e| Error::git(format!("open repository {}", root.display()), e))
}

/// The `from` ref resolved to a commit: its full ref name and the commit and tree ids.
#[derive(Debug, Clone)]
pub struct ResolvedFrom {
    /// The full reference name, e.g. `refs/heads/main`.
    pub ref_name: String,
    /// The commit it points to.
    pub commit: Oid,
    /// That commit's tree.
    pub tree: Oid,
}

/// Resolves `from` as a ref name only (`main`, `origin/main`, `v1.0`, `refs/heads/x`), never as
/// an option, a revision expression or a shell word. Unknown -> [`Error::NotFound`] naming it.
pub fn resolve_from(repo: &Repository, from: &str) -> Result<ResolvedFrom> {
    let not_found = || Error::NotFound(format!("ref {from:?} (the 'from' of the new worktree)"));
    if from.is_empty() || from.starts_with('-') || from.contains('\0') {
        return Err(not_found());
    }
    let reference = repo
        .resolve_reference_from_short_name(from)
        .map_err(|_| not_found())?;
    let ref_name = reference.name().unwrap_or(from).to_string();
    let commit = reference
        .peel_to_commit()
        .map_err(|e| Error::git(format!("ref {from:?} does not point to a commit"), e))?;
    Ok(ResolvedFrom {
        ref_name,
        commit: commit.id(),
        tree: commit.tree_id(),
    })
}

/// Creates branch `name` at `commit` unless it exists. Returns the commit the branch points to
/// and whether it was created.
///
/// Runs under [`checkout::registration_lock`]. A `refs/heads/<name>.lock` in the way is removed
/// only when it is stale ([`super::recovery::stale_lock`]): older than `started` (when the creation that retries
/// began) and held open by no process; one a live git process may hold is left alone and the
/// creation fails with [`Error::Lock`] naming it.
pub fn ensure_branch(
    repo: &Repository,
    name: &str,
    commit: Oid,
    started: std::time::SystemTime,
) -> Result<(Oid, bool)> {
    let _lock = checkout::registration_lock(repo.commondir())?;
    match create_branch(repo, name, commit) {
        Err(Error::Git { message, .. }) if message.contains("failed to lock file") => {
            let lock = repo
                .commondir()
                .join("refs/heads")
                .join(format!("{name}.lock"));
            if !super::recovery::stale_lock(&lock, started) {
                return Err(Error::Lock(format!(
                    "{} exists and may be held by a running git process; remove it if no git \
                     command is running",
                    lock.display()
                )));
            }
            if std::fs::remove_file(&lock).is_ok() {
                tracing::warn!("removed {} left by a killed process", lock.display());
            }
            create_branch(repo, name, commit)
        }
        other => other,
    }
}

fn create_branch(repo: &Repository, name: &str, commit: Oid) -> Result<(Oid, bool)> {
    match repo.find_branch(name, BranchType::Local) {
        Ok(b) => {
            let c = b
                .get()
                .peel_to_commit()
                .map_err(|e| Error::git(format!("branch {name:?}"), e))?;
            Ok((c.id(), false))
        }
        Err(_) => {
            let c = repo
                .find_commit(commit)
                .map_err(|e| Error::git(format!("commit {commit}"), e))?;
            match repo.branch(name, &c, false) {
                Ok(_) => Ok((commit, true)),
                // another process made it in between: reuse it
                Err(e) if e.code() == git2::ErrorCode::Exists => create_branch(repo, name, commit),
                Err(e) => Err(Error::git(format!("create branch {name:?}"), e)),
            }
        }
    }
}

/// True if local branch `name` exists.
pub fn branch_exists(repo: &Repository, name: &str) -> bool {
    repo.find_branch(name, BranchType::Local).is_ok()
}

/// One registered worktree of the repository.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Its name under `.git/worktrees/`.
    pub name: String,
    /// Its folder as registered.
    pub path: PathBuf,
    /// Whether that folder exists.
    pub folder_exists: bool,
    /// The lock reason, if locked.
    pub lock: Option<String>,
    /// The branch checked out there (short name), if any.
    pub branch: Option<String>,
}

impl Registration {
    /// True if this worktree's creation started and never finished.
    pub fn half_made(&self) -> bool {
        self.lock
            .as_deref()
            .is_some_and(|r| r.starts_with(CREATING_REASON))
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    let ca = std::fs::canonicalize(a).unwrap_or_else(|_| a.to_path_buf());
    let cb = std::fs::canonicalize(b).unwrap_or_else(|_| b.to_path_buf());
    ca == cb || a == b
}

/// True for a registration that libgit2's `git_worktree_add` (lock on; older versions registered
/// with it) made and [`checkout::register`] did not finish (its creator was killed in that
/// millisecond): an empty `locked` file and libgit2's absolute `commondir`, which the git CLI
/// never writes, and named by our own marker of a registration in progress
/// ([`checkout::left_registering`]): another tool's worktree locked without a reason is never
/// taken for ours.
fn libgit2_registration_unfinished(repo: &Repository, name: &str, gitdir: &Path) -> bool {
    std::fs::read(gitdir.join("commondir")).is_ok_and(|c| c.starts_with(b"/"))
        && checkout::left_registering(repo.commondir()).as_deref() == Some(name)
}

/// Every linked worktree registered in the repository: each `.git/worktrees/<name>` with a
/// `gitdir` file. Read from those files directly (`gitdir`, `locked`, `HEAD`), a few small reads
/// each: libgit2's lookup opens each worktree, and a creation reads this list twice, so with
/// dozens of worktrees it cost more than the rest of the registration.
pub fn registrations(repo: &Repository) -> Result<Vec<Registration>> {
    let worktrees = repo.commondir().join("worktrees");
    let rd = match std::fs::read_dir(&worktrees) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io_path("list", &worktrees, e)),
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(r) = read_registration(repo, &entry.path(), name) {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The registration in the folder `gitdir` (`.git/worktrees/<name>`), from its files; `None`
/// without a readable `gitdir` file.
fn read_registration(repo: &Repository, gitdir: &Path, name: String) -> Option<Registration> {
    // the worktree's `.git`, absolute or (worktree.useRelativePaths) relative to `gitdir`
    let path = std::fs::read_to_string(gitdir.join("gitdir"))
        .ok()
        .map(|g| gitdir.join(g.trim_end_matches(['\n', '\r'])))
        .and_then(|dot_git| dot_git.parent().map(normalize))?;
    let lock = match std::fs::read_to_string(gitdir.join("locked")) {
        Ok(r) if r.trim().is_empty() && libgit2_registration_unfinished(repo, &name, gitdir) => {
            Some(format!(
                "{CREATING_REASON} (libgit2 registration unfinished)"
            ))
        }
        Ok(r) => Some(r),
        Err(_) => None,
    };
    let branch = std::fs::read_to_string(gitdir.join("HEAD"))
        .ok()
        .and_then(|h| {
            h.trim()
                .strip_prefix("ref: refs/heads/")
                .map(|s| s.to_string())
        });
    Some(Registration {
        folder_exists: path.join(".git").exists(),
        name,
        path,
        lock,
        branch,
    })
}

/// The registration the worktree at `path` names in its `.git` file (`gitdir:
/// <common>/worktrees/<name>`), when that registration names `path` back: one registration read
/// instead of all of them (a creation asks this a few times; with 200 worktrees the scan cost
/// ~1.5 ms each). `None` when there is no such pair (no `.git` file, a link, another
/// repository's, a registration that points elsewhere): the caller scans.
fn registration_named_by(repo: &Repository, path: &Path) -> Option<Registration> {
    let dot_git = path.join(".git");
    if !std::fs::symlink_metadata(&dot_git).ok()?.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&dot_git).ok()?;
    let target = Path::new(
        text.strip_prefix("gitdir: ")?
            .trim_end_matches(['\n', '\r']),
    );
    let gitdir = normalize(&path.join(target));
    let name = gitdir.file_name()?.to_str()?.to_string();
    let worktrees = repo.commondir().join("worktrees");
    if name.starts_with('.') || !same_path(gitdir.parent()?, &worktrees) {
        return None;
    }
    let r = read_registration(repo, &worktrees.join(&name), name)?;
    same_path(&r.path, path).then_some(r)
}

/// `path` with its `.` and `..` components folded lexically (a relative `gitdir` is joined to
/// the registration's folder), without resolving links.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The registration whose folder is `path`, if any.
pub fn registration_at(repo: &Repository, path: &Path) -> Result<Option<Registration>> {
    if let Some(r) = registration_named_by(repo, path) {
        return Ok(Some(r));
    }
    Ok(registrations(repo)?
        .into_iter()
        .find(|r| same_path(&r.path, path)))
}

/// Removes the registration `name` (its `.git/worktrees/<name>` folder), locked or not, whether or
/// not its folder exists. Never touches the worktree's folder.
pub fn prune_registration(repo: &Repository, name: &str) -> Result<()> {
    let pruned = repo.find_worktree(name).and_then(|wt| {
        let mut opts = WorktreePruneOptions::new();
        opts.valid(true).locked(true).working_tree(false);
        wt.prune(Some(&mut opts))
    });
    match pruned {
        Ok(()) => Ok(()),
        // A registration half-written by a process killed inside libgit2's worktree add (no
        // `commondir` yet, ...) cannot be opened, so libgit2 cannot prune it: its folder goes.
        Err(e) => {
            let dir = repo.commondir().join("worktrees").join(name);
            if name.is_empty() || name.contains('/') || !dir.is_dir() {
                return Err(Error::git(format!("prune worktree {name:?}"), e));
            }
            std::fs::remove_dir_all(&dir).map_err(|io| Error::io_path("remove", &dir, io))
        }
    }
}

/// Removes the lock of the worktree registered at `path` (its registration's name may differ
/// from the folder's: `<name>1`, ... when the name was taken).
pub fn unlock_at(repo: &Repository, path: &Path) -> Result<()> {
    match registration_at(repo, path)? {
        Some(r) => unlock(repo, &r.name),
        None => Err(Error::NotFound(format!(
            "worktree registration of {}",
            path.display()
        ))),
    }
}

/// Removes the lock of worktree `name` (the mark of a creation in progress).
pub fn unlock(repo: &Repository, name: &str) -> Result<()> {
    let wt = repo
        .find_worktree(name)
        .map_err(|e| Error::git(format!("find worktree {name:?}"), e))?;
    match wt.is_locked() {
        Ok(WorktreeLockStatus::Locked(_)) => wt
            .unlock()
            .map_err(|e| Error::git(format!("unlock worktree {name:?}"), e)),
        _ => Ok(()),
    }
}

/// Number of files in `tree` (recursively), to choose the checkout's parallelism.
pub fn count_files(repo: &Repository, tree: Oid) -> Result<usize> {
    let tree = repo
        .find_tree(tree)
        .map_err(|e| Error::git(format!("tree {tree}"), e))?;
    let mut n = 0usize;
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        if entry.kind() != Some(git2::ObjectType::Tree) {
            n += 1;
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(|e| Error::git("walk tree", e))?;
    Ok(n)
}

/// The content of the regular file at `path` in `tree`, or `None` if absent or not a regular
/// file. A committed symbolic link (mode 120000) is `None` too: its blob is the link's target,
/// not a file's content, and reading it as `package.json` or the compose file would let a branch
/// pass a link off as the file that `docker compose` and npm then follow out of the worktree.
pub fn read_blob(repo: &Repository, tree: Oid, path: &str) -> Result<Option<Vec<u8>>> {
    let tree = repo
        .find_tree(tree)
        .map_err(|e| Error::git(format!("tree {tree}"), e))?;
    let entry = match tree.get_path(Path::new(path)) {
        Ok(e) => e,
        Err(_) => return Ok(None),
    };
    if entry.kind() != Some(git2::ObjectType::Blob) || entry.filemode() == 0o120000 {
        return Ok(None);
    }
    let blob = repo
        .find_blob(entry.id())
        .map_err(|e| Error::git(format!("read {path}"), e))?;
    Ok(Some(blob.content().to_vec()))
}

/// How [`add_worktree_with`] makes a worktree: the manager's settings for it
/// ([`super::WorktreeSettings`]'s `checkout`, `checkoutThreads` and `gitProgram`), passed down, never
/// read from the environment.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// The checkout asked for: ours ([`CheckoutMethod::Git2Parallel`], falling back to the CLI
    /// when the repository needs it) or always the git CLI.
    pub method: CheckoutMethod,
    /// Threads of our checkout.
    pub threads: usize,
    /// `checkout.workers` of the git CLI's checkout, when it runs.
    pub cli_workers: usize,
    /// The git program for `git worktree add`.
    pub git_program: PathBuf,
}

impl AddOptions {
    /// The defaults: our checkout with one thread per core (at most
    /// [`super::settings::MAX_DEFAULT_CHECKOUT_THREADS`]), `git` from `PATH`, and `cli_workers`.
    pub fn defaults(cli_workers: usize) -> Self {
        Self {
            method: CheckoutMethod::Git2Parallel,
            threads: super::settings::default_checkout_threads(),
            cli_workers,
            git_program: PathBuf::from("git"),
        }
    }

    /// The options a manager's settings give, for a repository of `tracked_files` files.
    pub fn from_settings(settings: &super::WorktreeSettings, tracked_files: usize) -> Self {
        Self {
            method: settings.checkout.method(),
            threads: settings.checkout_threads(),
            cli_workers: cli_checkout_workers(tracked_files),
            git_program: settings.git_program.clone(),
        }
    }
}

/// `checkout.workers` for the git CLI's checkout of `tracked_files` files: 1 below
/// [`PARALLEL_CHECKOUT_FROM_FILES`] (git's parallel checkout did not pay off on smaller trees),
/// else one per core, at most 8 (2 on the 2-core machine it was measured on).
pub fn cli_checkout_workers(tracked_files: usize) -> usize {
    if tracked_files >= PARALLEL_CHECKOUT_FROM_FILES {
        super::settings::machine_cores().clamp(1, 8)
    } else {
        1
    }
}

/// What [`add_worktree`] did.
#[derive(Debug, Clone)]
pub struct AddedWorktree {
    /// The checkout that wrote the files.
    pub method: CheckoutMethod,
    /// Its threads (ours) or `checkout.workers` (the git CLI's).
    pub workers: usize,
    /// Why the git CLI was used although ours was chosen (attributes, a hook, ...), if it was.
    pub cli_because: Option<String>,
    /// Our checkout's phases and their wall time in ms, in order (`register`, `files`,
    /// `index`, `hook`); empty when the git CLI did it all.
    pub phases: Vec<(&'static str, f64)>,
}

/// [`add_worktree_with`] with [`AddOptions::defaults`].
pub async fn add_worktree(
    root: &Path,
    path: &Path,
    branch: &str,
    cli_workers: usize,
) -> Result<AddedWorktree> {
    add_worktree_with(root, path, branch, &AddOptions::defaults(cli_workers)).await
}

/// Adds the worktree `path` on existing branch `branch`, locked with reason
/// `"<CREATING_REASON> (pid N)"` until [`unlock`]: registration through libgit2 and our parallel
/// checkout with `opts.threads` threads ([`checkout`]) when `opts.method` asks for it and the
/// repository allows it, else `git worktree add` with `checkout.workers=<opts.cli_workers>`.
/// `path` must not exist; its parent must. On failure neither the folder nor a registration is
/// left.
pub async fn add_worktree_with(
    root: &Path,
    path: &Path,
    branch: &str,
    opts: &AddOptions,
) -> Result<AddedWorktree> {
    let reason = super::recovery::creating_reason();
    let mut cli_because = None;
    let cli_workers = opts.cli_workers;
    if opts.method == CheckoutMethod::Git2Parallel {
        let (r, p, b, why) = (
            root.to_path_buf(),
            path.to_path_buf(),
            branch.to_string(),
            reason.clone(),
        );
        let threads = opts.threads;
        let git_program = opts.git_program.clone();
        // inside a creation's graph: the phases become child spans of its step
        let span = crate::optimizer::current_span();
        let done = tokio::task::spawn_blocking(move || {
            let mut phases = CheckoutPhases::under(span);
            let done = add_worktree_git2(&r, &p, &b, &why, threads, &git_program, &mut phases);
            phases.finish(done.as_ref().err());
            done.map(|d| (d, phases.times))
        })
        .await
        .map_err(|e| Error::Internal(format!("checkout thread panicked: {e}")))??;
        match done {
            (None, phases) => {
                return Ok(AddedWorktree {
                    method: CheckoutMethod::Git2Parallel,
                    workers: threads,
                    cli_because: None,
                    phases,
                });
            }
            (Some(why), _) => cli_because = Some(why),
        }
    }
    add_worktree_cli_with(&opts.git_program, root, path, branch, cli_workers, &reason).await?;
    Ok(AddedWorktree {
        method: CheckoutMethod::GitCli,
        workers: cli_workers,
        cli_because,
        phases: Vec::new(),
    })
}

/// Registration ([`checkout::register`]) + our checkout + the index. `Ok(None)` when done, `Ok(Some(why))` when
/// the git CLI must do it instead (nothing left behind then). Each phase is recorded in `phases`
/// (the caller finishes the last one).
pub fn add_worktree_git2(
    root: &Path,
    path: &Path,
    branch: &str,
    lock_reason: &str,
    workers: usize,
    git_program: &Path,
    phases: &mut CheckoutPhases,
) -> Result<Option<String>> {
    phases.begin("register");
    let repo = open(root)?;
    let commit = repo
        .find_branch(branch, BranchType::Local)
        .and_then(|b| b.get().peel_to_commit())
        .map_err(|e| Error::git(format!("branch {branch:?}"), e))?;
    let tree = commit.tree_id();
    if let Some(why) = checkout::cli_reason(&repo, tree)? {
        return Ok(Some(why));
    }
    if !path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(checkout::plain_name)
    {
        return Ok(Some("folder name needs the git CLI's sanitizing".into()));
    }
    let name = checkout::register(&repo, path, branch, lock_reason)?;
    phases.begin("files");
    let options = checkout::CheckoutOptions {
        workers,
        folding: None,
        git_program: Some(git_program.to_path_buf()),
    };
    let written =
        checkout::checkout_tree_with(repo.commondir(), tree, path, &options).and_then(|written| {
            phases.begin("index");
            let gitdir = repo.commondir().join("worktrees").join(&name);
            checkout::write_index(&gitdir.join("index"), &written)
                .and_then(|()| checkout::write_head_files(&repo, &gitdir, commit.id()))
                .and_then(|()| match checkout::post_checkout_hook(&repo) {
                    Some(hook) => {
                        phases.begin("hook");
                        checkout::run_post_checkout_hook(&hook, path, commit.id())
                    }
                    None => Ok(()),
                })
                .map_err(CheckoutError::Failed)
        });
    match written {
        Ok(()) => Ok(None),
        Err(CheckoutError::NeedsCli(why)) => {
            checkout::unregister(&repo, path, &name)?;
            Ok(Some(why))
        }
        Err(CheckoutError::Failed(e)) => {
            let _ = checkout::unregister(&repo, path, &name);
            Err(e)
        }
    }
}

/// [`add_worktree_cli_with`] running `git` from `PATH`.
pub async fn add_worktree_cli(
    root: &Path,
    path: &Path,
    branch: &str,
    workers: usize,
    lock_reason: &str,
) -> Result<()> {
    add_worktree_cli_with(Path::new("git"), root, path, branch, workers, lock_reason).await
}

/// Runs `<git> worktree add --lock --reason <lock_reason> -- <path> <branch>` in `root`:
/// registration and checkout in one go. `workers` sets `checkout.workers`.
pub async fn add_worktree_cli_with(
    git: &Path,
    root: &Path,
    path: &Path,
    branch: &str,
    workers: usize,
    lock_reason: &str,
) -> Result<()> {
    let mut attempt = 0u64;
    loop {
        let mut cmd = super::git_env::git_command_async(git);
        cmd.current_dir(root)
            .arg("-c")
            .arg(format!("checkout.workers={workers}"))
            .args(["worktree", "add", "--quiet", "--lock", "--reason"])
            .arg(lock_reason)
            .arg("--")
            .arg(path)
            .arg(branch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(false);
        match run_git(cmd, "worktree add").await {
            // `git worktree add` reads every registration; one that another process is writing
            // at that instant (folder made, `commondir` not yet) makes it die before it touched
            // anything of its own. Try again shortly.
            Err(Error::Git { message, .. })
                if attempt < 8
                    && message.contains("failed to read")
                    && message.contains("worktrees/")
                    && std::fs::symlink_metadata(path).is_err() =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Runs a prepared git command; a non-zero exit is [`Error::Git`] with git's message.
pub async fn run_git(mut cmd: tokio::process::Command, what: &str) -> Result<()> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let out = cmd.output().await.map_err(|e| Error::Process {
        program,
        message: format!("cannot start git for {what}: {e}"),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(Error::Git {
            context: what.to_string(),
            message: if msg.is_empty() {
                format!("exit status {}", out.status)
            } else {
                msg
            },
        })
    }
}

/// Deletes local branch `name` if it exists (a cancelled creation's own branch; nothing may
/// have it checked out any more).
pub fn delete_branch(repo: &Repository, name: &str) -> Result<()> {
    match repo.find_branch(name, BranchType::Local) {
        Ok(mut b) => b
            .delete()
            .map_err(|e| Error::git(format!("delete branch {name:?}"), e)),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creating_lock_reason_names_the_pid() {
        assert_eq!(creating_pid("vibetrees: creating (pid 4242)"), Some(4242));
        assert_eq!(creating_pid("initializing"), None);
        assert_eq!(creating_pid("vibetrees: creating"), None);
        let r = Registration {
            name: "x".into(),
            path: "/x".into(),
            folder_exists: true,
            lock: Some(format!("{CREATING_REASON} (pid 1)")),
            branch: None,
        };
        assert!(r.half_made());
        let r = Registration {
            lock: Some("moved to a USB disk".into()),
            ..r
        };
        assert!(!r.half_made());
    }

    #[test]
    fn from_resolves_refs_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        let r = resolve_from(&repo, "main").unwrap();
        assert_eq!(r.ref_name, "refs/heads/main");
        for bad in ["--help", "main~1", "HEAD@{0}", "", "nope"] {
            assert_eq!(
                resolve_from(&repo, bad).unwrap_err().code(),
                "NOT_FOUND",
                "{bad}"
            );
        }
        let (_, created) =
            ensure_branch(&repo, "feat", r.commit, std::time::SystemTime::now()).unwrap();
        assert!(created);
        let (_, created) =
            ensure_branch(&repo, "feat", r.commit, std::time::SystemTime::now()).unwrap();
        assert!(!created);
    }
}
