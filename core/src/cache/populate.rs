//! Populate: copy an installed node_modules into a new entry, atomically.
//!
//! The tree is made in `<cacheDir>/node_modules/.staging-<key>-<pid>-<n>/` (locked by its maker),
//! with its listing and manifest, then renamed to `<key>` with `RENAME_NOREPLACE`: a crash leaves
//! only a staging folder no restore looks at, and of two processes populating one key the second
//! rename fails, so exactly one entry remains. Files are hardlinked from the source when both are on
//! one filesystem, else cloned, else copied.

use super::fsops::{self, Placed, Plan, RestoreMethod};
use super::key::{CacheKey, KeyInputs};
use super::listing::ListingWriter;
use super::manifest::{ENTRY_FORMAT, Manifest, now_ms};
use super::phases::{PhaseTime, Phases};
use super::store::{NodeModulesCache, cstr, io_err, unique_name};
use crate::platform;
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What a populate did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PopulateOutcome {
    /// A new entry was made.
    Created,
    /// An entry for the key existed already (maybe made meanwhile by another process); nothing
    /// was changed.
    AlreadyPresent,
}

/// Options of [`NodeModulesCache::populate_with`].
#[derive(Clone, Debug, Default)]
pub struct PopulateOptions {
    /// The inputs of the key, recorded in the manifest (so `status` can explain an entry).
    pub inputs: Option<KeyInputs>,
    /// Profiler span id to nest this operation's spans under.
    pub parent_span: Option<String>,
}

/// The report of one populate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PopulateReport {
    /// The entry's key.
    pub key: CacheKey,
    /// Created, or already present.
    pub outcome: PopulateOutcome,
    /// Regular files.
    pub files: u64,
    /// Folders, the root included.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Special files skipped.
    pub special_skipped: u64,
    /// Bytes of regular files.
    pub bytes: u64,
    /// Files hardlinked from the source.
    pub linked: u64,
    /// Files cloned from the source.
    pub cloned: u64,
    /// Files copied from the source.
    pub copied: u64,
    /// Wall time in milliseconds.
    pub duration_ms: f64,
    /// Time of each phase.
    pub phases: Vec<PhaseTime>,
}

#[derive(Default)]
struct Counts {
    files: u64,
    dirs: u64,
    symlinks: u64,
    special: u64,
    bytes: u64,
    linked: u64,
    cloned: u64,
    copied: u64,
}

struct Walker<'a> {
    plan: Plan,
    listing: ListingWriter,
    counts: Counts,
    fixups: Vec<(PathBuf, u32)>,
    source: &'a Path,
}

impl NodeModulesCache {
    /// Copies the node_modules folder `source` into the entry `key`, unless that entry exists.
    pub fn populate(&self, key: &CacheKey, source: &Path) -> Result<PopulateReport> {
        self.populate_with(key, source, &PopulateOptions::default())
    }

    /// Runs [`populate_with`](Self::populate_with) on a new thread (a worktree is usable at once;
    /// the cache fills behind it). Join the handle for the report, or drop it.
    pub fn populate_in_background(
        self: &std::sync::Arc<Self>,
        key: CacheKey,
        source: PathBuf,
        opts: PopulateOptions,
    ) -> std::thread::JoinHandle<Result<PopulateReport>> {
        let cache = self.clone();
        std::thread::Builder::new()
            .name("vibetrees-cache-populate".into())
            .spawn(move || cache.populate_with(&key, &source, &opts))
            .expect("spawn the cache populate thread")
    }

    /// [`populate`](Self::populate) with options.
    pub fn populate_with(
        &self,
        key: &CacheKey,
        source: &Path,
        opts: &PopulateOptions,
    ) -> Result<PopulateReport> {
        let mut phases = Phases::start(
            self.profiler.as_deref(),
            "cache-populate",
            opts.parent_span.as_deref(),
        );
        let r = self.populate_inner(key, source, opts, &mut phases);
        phases.finish(r.as_ref().err());
        r.map(|(outcome, c)| PopulateReport {
            key: key.clone(),
            outcome,
            files: c.files,
            dirs: c.dirs,
            symlinks: c.symlinks,
            special_skipped: c.special,
            bytes: c.bytes,
            linked: c.linked,
            cloned: c.cloned,
            copied: c.copied,
            duration_ms: phases.elapsed_ms(),
            phases: std::mem::take(&mut phases.times),
        })
    }

    fn populate_inner(
        &self,
        key: &CacheKey,
        source: &Path,
        opts: &PopulateOptions,
        phases: &mut Phases<'_>,
    ) -> Result<(PopulateOutcome, Counts)> {
        let src_root = match rustix::fs::open(
            source,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => {
                return Err(Error::NotFound(format!(
                    "node_modules folder {} to cache",
                    source.display()
                )));
            }
            Err(e) => return Err(io_err("open", source, e)),
        };
        if self.contains(key) {
            return Ok((PopulateOutcome::AlreadyPresent, Counts::default()));
        }
        self.clean_abandoned();

        // Staging folder with its lock held for the whole populate.
        let staging_name = unique_name(&format!(".staging-{}", key.as_str()));
        let staging = self.entries_dir.join(&staging_name);
        std::fs::create_dir(&staging)
            .map_err(|e| Error::io_path("create staging folder", &staging, e))?;
        let guard = StagingGuard(Some(staging.clone()));
        let lock = rustix::fs::open(
            staging.join("lock"),
            OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| io_err("create lock in", &staging, e))?;
        rustix::fs::flock(&lock, FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &staging, e))?;

        let counts = phases.run("cache-populate-copy", || {
            let staging_fd =
                fsops::open_path_dir(&staging).map_err(|e| Error::io_path("open", &staging, e))?;
            let root_stat =
                platform::fstat(src_root.as_fd()).map_err(|e| io_err("stat", source, e))?;
            let root_mode = root_stat.permissions();
            let tree_name = cstr("tree");
            let tree_fixup = fsops::make_dir(staging_fd.as_fd(), &tree_name, root_mode)
                .map_err(|e| io_err("create", &staging.join("tree"), e))?;
            let tree_fd = fsops::open_dir_path(staging_fd.as_fd(), &tree_name)
                .map_err(|e| io_err("open", &staging.join("tree"), e))?;
            let staging_stat =
                platform::fstat(staging_fd.as_fd()).map_err(|e| io_err("stat", &staging, e))?;
            let same_fs = staging_stat.dev == root_stat.dev;
            let mut plan = Plan::new(
                RestoreMethod::Auto,
                fsops::Probe {
                    link: same_fs,
                    clone: true,
                },
            );
            if !same_fs {
                plan.link = false;
            }
            let mut w = Walker {
                plan,
                listing: ListingWriter::new(),
                counts: Counts::default(),
                fixups: Vec::new(),
                source,
            };
            w.listing.enter_dir(b"", root_mode);
            w.counts.dirs += 1;
            let mut rel = PathBuf::new();
            w.walk(&src_root, &tree_fd, &mut rel)?;
            w.listing.leave_dir();
            for (rel, mode) in w.fixups.iter().rev() {
                let p = super::store::path_cstr(rel)?;
                rustix::fs::chmodat(
                    &tree_fd,
                    p.as_c_str(),
                    platform::mode(*mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("set mode of", &staging.join("tree").join(rel), e))?;
            }
            if tree_fixup {
                rustix::fs::chmodat(
                    &staging_fd,
                    tree_name.as_c_str(),
                    platform::mode(root_mode),
                    AtFlags::empty(),
                )
                .map_err(|e| io_err("set mode of", &staging.join("tree"), e))?;
            }
            let manifest = Manifest {
                format: ENTRY_FORMAT,
                key: key.clone(),
                inputs: opts.inputs.clone(),
                source: source.display().to_string(),
                created_ms: now_ms(),
                files: w.counts.files,
                dirs: w.counts.dirs,
                symlinks: w.counts.symlinks,
                special_skipped: w.counts.special,
                bytes: w.counts.bytes,
                linked_from_source: w.counts.linked,
                cloned_from_source: w.counts.cloned,
                copied_from_source: w.counts.copied,
            };
            let write = |name: &str, bytes: &[u8]| {
                let p = staging.join(name);
                std::fs::write(&p, bytes).map_err(|e| Error::io_path("write", &p, e))
            };
            let listing = w.listing.into_bytes();
            write("listing.bin", &listing)?;
            // content digests for `verify --content`; an entry whose files cannot all be read
            // is kept without them (that verify then says so)
            if let Ok(digests) = super::listing::Listing::parse(listing)
                .and_then(|l| super::content::digest_tree(&l, tree_fd.as_fd()))
            {
                write(super::content::DIGESTS_FILE, &digests)?;
            }
            write("last-used", b"")?;
            write("manifest.json", &serde_json::to_vec_pretty(&manifest)?)?;
            Ok(w.counts)
        })?;

        let outcome = phases.run("cache-populate-commit", || {
            let dir = fsops::open_path_dir(&self.entries_dir)
                .map_err(|e| Error::io_path("open", &self.entries_dir, e))?;
            let staging_c = cstr(&staging_name);
            let key_c = cstr(key.as_str());
            match rustix::fs::renameat_with(&dir, &staging_c, &dir, &key_c, RenameFlags::NOREPLACE)
            {
                Ok(()) => {
                    guard.disarm();
                    Ok(PopulateOutcome::Created)
                }
                Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Ok(PopulateOutcome::AlreadyPresent),
                Err(e) => Err(io_err("move staging folder into place:", &staging, e)),
            }
        })?;
        drop(lock);
        Ok((outcome, counts))
    }
}

/// Removes the staging folder unless disarmed (on error, or when another entry won the race).
struct StagingGuard(Option<PathBuf>);

impl StagingGuard {
    /// Keeps the staging folder (it was renamed into place): the drop removes nothing.
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else { return };
        let _ = fsops::remove_tree(&path);
    }
}

impl Walker<'_> {
    fn err(&self, op: &str, rel: &Path, e: Errno) -> Error {
        io_err(op, &self.source.join(rel), e)
    }

    fn walk(&mut self, src: &OwnedFd, dst: &OwnedFd, rel: &mut PathBuf) -> Result<()> {
        let mut names: Vec<(CString, FileType)> = Vec::new();
        {
            let mut dir =
                rustix::fs::Dir::read_from(src).map_err(|e| self.err("read folder", rel, e))?;
            while let Some(ent) = dir.read() {
                let ent = ent.map_err(|e| self.err("read folder", rel, e))?;
                let name = ent.file_name();
                if name.to_bytes() == b"." || name.to_bytes() == b".." {
                    continue;
                }
                names.push((name.to_owned(), ent.file_type()));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut ftype) in names {
            // node_modules/.cache holds tools' run-time caches (babel, eslint, webpack), not what
            // the install made; they rewrite its files in place, so it is never cached.
            if rel.as_os_str().is_empty() && name.to_bytes() == b".cache" {
                continue;
            }
            rel.push(std::ffi::OsStr::from_bytes(name.to_bytes()));
            let r = self.entry(src.as_fd(), dst.as_fd(), &name, &mut ftype, rel);
            rel.pop();
            r?;
        }
        Ok(())
    }

    fn entry(
        &mut self,
        src: BorrowedFd<'_>,
        dst: BorrowedFd<'_>,
        name: &CStr,
        ftype: &mut FileType,
        rel: &mut PathBuf,
    ) -> Result<()> {
        let mut st = None;
        if *ftype == FileType::Unknown
            || *ftype == FileType::Directory
            || *ftype == FileType::RegularFile
        {
            let s = platform::stat_at(src, name).map_err(|e| self.err("stat", rel, e))?;
            *ftype = s.file_type();
            st = Some(s);
        }
        match *ftype {
            FileType::Directory => {
                let mode = st.as_ref().unwrap().permissions();
                if fsops::make_dir(dst, name, mode)
                    .map_err(|e| self.err("create folder for", rel, e))?
                {
                    self.fixups.push((rel.clone(), mode));
                }
                let s = fsops::open_dir_read(src, name).map_err(|e| self.err("open", rel, e))?;
                let d = fsops::open_dir_path(dst, name)
                    .map_err(|e| self.err("open copy of", rel, e))?;
                self.listing.enter_dir(name.to_bytes(), mode);
                self.counts.dirs += 1;
                self.walk(&s, &d, rel)?;
                self.listing.leave_dir();
            }
            FileType::RegularFile => {
                let s = st.unwrap();
                let mtime = (s.mtime_sec, s.mtime_nsec);
                // Files directly in node_modules (`.package-lock.json`, `.yarn-integrity`, ...)
                // are rewritten in place by package managers: never share their inode.
                let plan = if rel.components().count() == 1 {
                    self.plan.private(self.plan.clone)
                } else {
                    self.plan
                };
                let placed = fsops::place_file(src, dst, name, s.mode, mtime, plan)
                    .map_err(|e| self.err("cache file", rel, e))?;
                let (size, mtime, ino, mode) = match placed {
                    Placed::Linked => {
                        self.counts.linked += 1;
                        (s.size, mtime, s.ino, s.mode)
                    }
                    other => {
                        if matches!(other, Placed::Copied | Placed::CopiedDirect) {
                            self.counts.copied += 1;
                            // Clone did not work here: do not try it again for every file.
                            self.plan.clone = false;
                        } else {
                            self.counts.cloned += 1;
                        }
                        let d = platform::stat_at(dst, name)
                            .map_err(|e| self.err("stat cached copy of", rel, e))?;
                        (d.size, (d.mtime_sec, d.mtime_nsec), d.ino, d.mode)
                    }
                };
                self.listing
                    .file(name.to_bytes(), mode & 0o7777, size, mtime, ino);
                self.counts.files += 1;
                self.counts.bytes += size;
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(src, name, Vec::new())
                    .map_err(|e| self.err("read symlink", rel, e))?;
                rustix::fs::symlinkat(target.as_c_str(), dst, name)
                    .map_err(|e| self.err("create symlink for", rel, e))?;
                self.listing.symlink(name.to_bytes(), target.to_bytes());
                self.counts.symlinks += 1;
            }
            _ => self.counts.special += 1,
        }
        Ok(())
    }
}
