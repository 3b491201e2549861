//! Files opened beneath a folder and never through a symbolic link: what the core uses for the
//! files it reads or writes inside a worktree whose content an agent controls (`.env`,
//! `.claude/settings.json`, the compose file, `package.json`). A committed `.claude -> /home/me`
//! or `.env -> ~/.ssh/id_rsa` must make the operation fail with a clear error, never reach the
//! link's target.
//!
//! Resolution: Linux `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, macOS 11+ `O_NOFOLLOW_ANY`,
//! and elsewhere (and where those are refused: old kernels, seccomp) one `openat(O_NOFOLLOW)` per
//! component relative to the previous one. Paths must be plain relative names: `..` and absolute
//! paths are refused before any call. Owns only the resolution; what is read or written, and
//! when, is the caller's.

use super::{FileStat, native};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How the components of a path are resolved without following links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resolver {
    /// The platform's one-call way (`openat2`, `O_NOFOLLOW_ANY`), else [`Resolver::PerComponent`].
    #[default]
    Native,
    /// One `openat(O_NOFOLLOW)` per component: the portable way. Tests choose it to run on Linux
    /// what other platforms run.
    PerComponent,
}

/// How [`ConfinedDir::open_file`] opens a file (the final component is never followed either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenBeneath {
    write: bool,
    create: bool,
    truncate: bool,
    exclusive: bool,
    append: bool,
    mode: u32,
}

impl OpenBeneath {
    /// Read an existing file.
    pub fn read() -> Self {
        Self {
            write: false,
            create: false,
            truncate: false,
            exclusive: false,
            append: false,
            mode: 0,
        }
    }

    /// Write, creating the file with `mode` (less the umask) if missing, truncating it if not.
    pub fn create(mode: u32) -> Self {
        Self {
            write: true,
            create: true,
            truncate: true,
            ..Self::read()
        }
        .with_mode(mode)
    }

    /// Write a new file with `mode` (less the umask); fails if the name exists (as anything).
    pub fn create_new(mode: u32) -> Self {
        Self {
            write: true,
            create: true,
            exclusive: true,
            ..Self::read()
        }
        .with_mode(mode)
    }

    /// Append to the file, creating it with `mode` (less the umask) if missing.
    pub fn append(mode: u32) -> Self {
        Self {
            write: true,
            create: true,
            append: true,
            ..Self::read()
        }
        .with_mode(mode)
    }

    fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    fn flags(&self) -> OFlags {
        let mut f = if self.write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        for (on, flag) in [
            (self.create, OFlags::CREATE),
            (self.truncate, OFlags::TRUNC),
            (self.exclusive, OFlags::EXCL),
            (self.append, OFlags::APPEND),
        ] {
            if on {
                f |= flag;
            }
        }
        f
    }
}

/// A folder whose files are opened beneath it, never through a symbolic link (in any component,
/// the last included), and never outside it.
#[derive(Debug)]
pub struct ConfinedDir {
    fd: OwnedFd,
    path: PathBuf,
    resolver: Resolver,
}

/// A relative path checked to stay beneath its root: its plain components.
struct Rel<'a> {
    text: &'a Path,
    parts: Vec<CString>,
}

impl<'a> Rel<'a> {
    fn parse(text: &'a Path, root: &Path) -> Result<Self> {
        let mut parts = Vec::new();
        for c in text.components() {
            match c {
                Component::Normal(name) => parts.push(
                    CString::new(name.as_bytes()).map_err(|_| invalid(text, root, "a NUL byte"))?,
                ),
                Component::CurDir => {}
                Component::ParentDir => return Err(invalid(text, root, "`..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(invalid(text, root, "an absolute path"));
                }
            }
        }
        if parts.is_empty() {
            return Err(invalid(text, root, "no file name"));
        }
        Ok(Rel { text, parts })
    }

    /// The components joined by `/` (`.` and repeated slashes dropped).
    fn joined(&self) -> CString {
        let mut b = Vec::new();
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                b.push(b'/');
            }
            b.extend_from_slice(p.as_bytes());
        }
        CString::new(b).expect("components hold no NUL")
    }
}

fn invalid(rel: &Path, root: &Path, what: &str) -> Error {
    Error::InvalidArgument(format!(
        "path `{}` beneath {} has {what}: only plain relative names are opened there",
        rel.display(),
        root.display()
    ))
}

impl ConfinedDir {
    /// Opens the folder `path` (the caller's own, trusted path: links in it are followed) as the
    /// root everything else is opened beneath.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Resolver::Native)
    }

    /// [`open`](Self::open) with an explicit [`Resolver`].
    pub fn open_with(path: impl AsRef<Path>, resolver: Resolver) -> Result<Self> {
        let path = path.as_ref();
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(format!("open folder {}", path.display()), e))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
            resolver,
        })
    }

    /// The root's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root's descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the file `rel` as `how` says.
    pub fn open_file(&self, rel: impl AsRef<Path>, how: OpenBeneath) -> Result<std::fs::File> {
        let rel = Rel::parse(rel.as_ref(), &self.path)?;
        let fd = self
            .resolve(&rel, how.flags(), super::mode(how.mode))
            .map_err(|e| self.error("open", &rel, e))?;
        Ok(std::fs::File::from(fd))
    }

    /// Opens the folder `rel` as a confined folder of its own.
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<ConfinedDir> {
        let rel = Rel::parse(rel.as_ref(), &self.path)?;
        let fd = self
            .resolve(&rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| self.error("open folder", &rel, e))?;
        Ok(ConfinedDir {
            fd,
            path: self.path.join(rel.text),
            resolver: self.resolver,
        })
    }

    /// The whole content of the file `rel`.
    pub fn read(&self, rel: impl AsRef<Path>) -> Result<Vec<u8>> {
        let rel = rel.as_ref();
        let mut f = self.open_file(rel, OpenBeneath::read())?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut out)
            .map_err(|e| Error::io_path("read", self.path.join(rel), e))?;
        Ok(out)
    }

    /// The content of the file `rel`, or `None` if there is no such file (a missing folder on
    /// the way counts as missing; a link anywhere is still an error).
    pub fn read_if_exists(&self, rel: impl AsRef<Path>) -> Result<Option<Vec<u8>>> {
        match self.read(rel) {
            Ok(b) => Ok(Some(b)),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The metadata of `rel` itself (a link at `rel` is reported as a link, not followed), or
    /// `None` if it does not exist.
    pub fn stat(&self, rel: impl AsRef<Path>) -> Result<Option<FileStat>> {
        let rel = Rel::parse(rel.as_ref(), &self.path)?;
        let (parents, last) = rel.parts.split_at(rel.parts.len() - 1);
        let parent = match self.walk_dirs(parents, false) {
            Ok(p) => p,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.error("stat", &rel, e)),
        };
        let at = parent.as_ref().map_or(self.fd.as_fd(), |p| p.as_fd());
        match super::stat_at(at, &last[0]) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.error("stat", &rel, e)),
        }
    }

    /// Replaces the file `rel` with `bytes`, atomically (a temporary file beside it renamed over
    /// it), creating missing folders on the way. A new file gets `mode` (less the umask); an
    /// existing one keeps its mode. Refused if `rel` is a symbolic link or a folder: the link is
    /// left as it is and its target is never touched.
    pub fn write(&self, rel: impl AsRef<Path>, bytes: &[u8], mode: u32) -> Result<()> {
        let rel = Rel::parse(rel.as_ref(), &self.path)?;
        let (parents, last) = rel.parts.split_at(rel.parts.len() - 1);
        let last = &last[0];
        let parent = self
            .walk_dirs(parents, true)
            .map_err(|e| self.error("create folders for", &rel, e))?;
        let at = parent.as_ref().map_or(self.fd.as_fd(), |p| p.as_fd());
        let keep_mode = match super::stat_at(at, last) {
            Ok(st) if st.file_type() == FileType::Symlink => {
                return Err(self.error("write", &rel, Errno::LOOP));
            }
            Ok(st) if st.file_type() == FileType::Directory => {
                return Err(self.error("write", &rel, Errno::ISDIR));
            }
            Ok(st) => Some(st.permissions()),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(self.error("write", &rel, e)),
        };
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = CString::new(format!(
            ".{}.vt-tmp-{}-{}",
            String::from_utf8_lossy(last.as_bytes()),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ))
        .expect("no NUL in a temporary name");
        let file = rustix::fs::openat(
            at,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            super::mode(mode),
        )
        .map_err(|e| self.error("create a temporary file for", &rel, e))?;
        let unlink_tmp = || {
            let _ = rustix::fs::unlinkat(at, &tmp, AtFlags::empty());
        };
        let mut file = std::fs::File::from(file);
        let written = std::io::Write::write_all(&mut file, bytes)
            .map_err(|e| Error::io_path("write", self.path.join(rel.text), e));
        let written = written.and_then(|()| match keep_mode {
            Some(m) => rustix::fs::fchmod(&file, super::mode(m))
                .map_err(|e| self.error("set the mode of", &rel, e)),
            None => Ok(()),
        });
        drop(file);
        if let Err(e) = written {
            unlink_tmp();
            return Err(e);
        }
        rustix::fs::renameat(at, &tmp, at, last).map_err(|e| {
            unlink_tmp();
            self.error("replace", &rel, e)
        })
    }

    /// Creates the folder `rel` and any missing folder on the way (`mode` less the umask).
    pub fn create_dir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<()> {
        let rel = Rel::parse(rel.as_ref(), &self.path)?;
        self.walk_dirs_mode(&rel.parts, true, mode)
            .map(drop)
            .map_err(|e| self.error("create folder", &rel, e))
    }

    /// The first component of `rel` (the last included) that is a symbolic link, relative to the
    /// root: what a caller names when it skips a step because a link is in the way. `None` when
    /// no component is a link (or the path stops existing before one is found). A `rel` that is
    /// not a plain relative name is an [`Error::InvalidArgument`].
    pub fn link_on_path(&self, rel: impl AsRef<Path>) -> Result<Option<PathBuf>> {
        let rel = Rel::parse(rel.as_ref(), &self.path)?;
        Ok(self.first_link(&rel))
    }

    /// Opens `rel` with `flags`, never through a link.
    fn resolve(
        &self,
        rel: &Rel<'_>,
        flags: OFlags,
        mode: Mode,
    ) -> std::result::Result<OwnedFd, Errno> {
        if self.resolver == Resolver::Native {
            if let Some(r) = native::open_beneath(self.fd.as_fd(), &rel.joined(), flags, mode) {
                return r;
            }
        }
        let (parents, last) = rel.parts.split_at(rel.parts.len() - 1);
        let parent = self.walk_dirs(parents, false)?;
        let at = parent.as_ref().map_or(self.fd.as_fd(), |p| p.as_fd());
        rustix::fs::openat(
            at,
            &last[0],
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
    }

    /// Opens the folders `parts` one below the other (`None`: no parts, the root itself),
    /// creating missing ones if `create`.
    fn walk_dirs(
        &self,
        parts: &[CString],
        create: bool,
    ) -> std::result::Result<Option<OwnedFd>, Errno> {
        self.walk_dirs_mode(parts, create, 0o777)
    }

    fn walk_dirs_mode(
        &self,
        parts: &[CString],
        create: bool,
        mode: u32,
    ) -> std::result::Result<Option<OwnedFd>, Errno> {
        let mut cur: Option<OwnedFd> = None;
        for part in parts {
            let at = cur.as_ref().map_or(self.fd.as_fd(), |c| c.as_fd());
            if create {
                match rustix::fs::mkdirat(at, part, super::mode(mode)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            cur = Some(rustix::fs::openat(
                at,
                part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
        }
        Ok(cur)
    }

    /// The error for `op` on `rel`: when the failure may come from a link (`ELOOP`, `ENOTDIR`,
    /// `EXDEV`), the message names the component that is one.
    fn error(&self, op: &str, rel: &Rel<'_>, e: Errno) -> Error {
        let full = self.path.join(rel.text);
        if matches!(e, Errno::LOOP | Errno::NOTDIR | Errno::XDEV) {
            if let Some(link) = self.first_link(rel) {
                return io_error(
                    format!(
                        "{op} {}: refused, `{}` is a symbolic link (links are never followed \
                         beneath {})",
                        full.display(),
                        link.display(),
                        self.path.display()
                    ),
                    Errno::LOOP,
                );
            }
        }
        io_error(format!("{op} {}", full.display()), e)
    }

    /// The first component of `rel` that is a symbolic link, as a path relative to the root.
    fn first_link(&self, rel: &Rel<'_>) -> Option<PathBuf> {
        let mut cur: Option<OwnedFd> = None;
        let mut so_far = PathBuf::new();
        for part in &rel.parts {
            let at = cur.as_ref().map_or(self.fd.as_fd(), |c| c.as_fd());
            so_far.push(OsStr::from_bytes(part.as_bytes()));
            let st = super::stat_at(at, part).ok()?;
            match st.file_type() {
                FileType::Symlink => return Some(so_far),
                FileType::Directory => {
                    cur = Some(native::open_dir_handle(at, part).ok()?);
                }
                _ => return None,
            }
        }
        None
    }
}

fn io_error(context: String, e: Errno) -> Error {
    Error::Io {
        context,
        source: std::io::Error::from_raw_os_error(e.raw_os_error()),
    }
}
