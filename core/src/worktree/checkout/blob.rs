//! The objects one writer thread reads, and how a blob gets into its file with bounded memory:
//!
//! - a loose blob is inflated [`WRITE_CHUNK`] bytes at a time straight into the file
//!   ([`super::loose`]); a blob declared bigger than `core.bigFileThreshold` (git's own streaming
//!   threshold, 512 MiB by default) is written sparse: a chunk of zeros becomes a hole, so it
//!   reads back the same and takes no disk;
//! - a packed blob (or one in an alternate) is read through git2 when its header says it is at
//!   most that threshold; a bigger one is streamed into the file by `git cat-file blob` (libgit2
//!   reads whole objects into memory, and cannot stream a packed one);
//! - trees, link targets and `.gitattributes` are read whole, and refused above the threshold.
//!
//! So no declared size is ever reserved up front: a 2 GiB blob of zeros (2 MB as a loose
//! object) costs a chunk of memory, not 2 GiB (whose failed allocation would abort the process).
//! An object that cannot be read fails the checkout with an error naming its path.
//!
//! Owns: reading objects for the writer and writing one blob's bytes into a file it is given.
//! Must not touch: any other file; it never opens a path (the writer hands it an open fd).

use super::loose::{LooseObjects, ObjectKind};
use crate::{Error, Result};
use git2::Oid;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Bytes of content inflated and written at a time.
pub const WRITE_CHUNK: usize = 128 * 1024;

/// A chunk of zeros, to find the chunks of a big blob that can be holes (a slice comparison is a
/// `memcmp`, fast even in a debug build).
static ZEROS: [u8; WRITE_CHUNK] = [0; WRITE_CHUNK];

/// `core.bigFileThreshold`'s default in git (512 MiB): above it, git streams a blob instead of
/// reading it whole.
pub const DEFAULT_BIG_FILE_THRESHOLD: u64 = 512 << 20;

/// One writer thread's access to the objects.
pub struct Objects<'r> {
    odb: git2::Odb<'r>,
    /// Loose objects read by us; `None` when the objects folder did not open.
    loose: Option<LooseObjects>,
    /// The common dir, for `git cat-file` (big packed blobs).
    git_dir: &'r Path,
    /// The git program that runs `git cat-file`.
    git_program: &'r Path,
    /// `core.bigFileThreshold`.
    big: u64,
    /// A chunk of content on its way to a file.
    chunk: Vec<u8>,
}

impl<'r> Objects<'r> {
    /// Reads the objects of `repo` (whose common dir is `git_dir`), streaming blobs bigger than
    /// `big_file_threshold` bytes.
    pub fn new(
        repo: &'r git2::Repository,
        git_dir: &'r Path,
        git_program: &'r Path,
        big_file_threshold: u64,
    ) -> Result<Self> {
        let odb = repo.odb().map_err(|e| Error::git("object database", e))?;
        Ok(Self {
            odb,
            loose: LooseObjects::open(&repo.commondir().join("objects")).ok(),
            git_dir,
            git_program,
            big: big_file_threshold,
            chunk: Vec::with_capacity(WRITE_CHUNK),
        })
    }

    /// Reads object `id`, which must be a `kind`, whole into `buf` (trees, link targets,
    /// attributes): a loose object by ourselves, anything else (packed, in an alternate,
    /// damaged) through git2, which names the error. One bigger than `core.bigFileThreshold` is
    /// refused.
    pub fn read(
        &mut self,
        id: Oid,
        kind: ObjectKind,
        buf: &mut Vec<u8>,
        what: impl Fn() -> String,
    ) -> Result<()> {
        if let Some(loose) = self.loose.as_mut()
            && let Some((k, size)) = loose.begin(id)
            && k == kind
        {
            if size > self.big {
                return Err(too_big(what(), id, size, self.big));
            }
            if loose.read_rest(buf).is_some() {
                return Ok(());
            }
        }
        self.header(id, kind, &what)?;
        let obj = self.odb.read(id).map_err(|e| Error::git(what(), e))?;
        buf.clear();
        buf.extend_from_slice(obj.data());
        Ok(())
    }

    /// Writes blob `id`'s content into `file` (new, empty, opened for writing); `path` names the
    /// file in errors. See the module doc for how each kind of object gets there.
    pub fn write_blob(&mut self, id: Oid, file: &OwnedFd, path: impl Fn() -> String) -> Result<()> {
        let io = |e: std::io::Error| Error::io(format!("write {}", path()), e);
        let what = || format!("read blob {}", path());
        if let Some(loose) = self.loose.as_mut()
            && let Some((ObjectKind::Blob, size)) = loose.begin(id)
        {
            if stream_loose(loose, &mut self.chunk, file, size, size > self.big).map_err(io)? {
                return Ok(());
            }
            // damaged: start the file over, and let git2 read the object or name the error
            rustix::fs::ftruncate(file, 0).map_err(|e| io(e.into()))?;
            rustix::fs::seek(file, rustix::fs::SeekFrom::Start(0)).map_err(|e| io(e.into()))?;
        }
        let size = self.header(id, ObjectKind::Blob, &what)?;
        if size <= self.big {
            let obj = self.odb.read(id).map_err(|e| Error::git(what(), e))?;
            return write_all(file, obj.data()).map_err(io);
        }
        cat_file(self.git_program, self.git_dir, id, file, size, &what)
    }

    /// The size of object `id` from its header (through git2), checking it is a `kind`.
    fn header(&self, id: Oid, kind: ObjectKind, what: &impl Fn() -> String) -> Result<u64> {
        let (size, k) = self
            .odb
            .read_header(id)
            .map_err(|e| Error::git(what(), e))?;
        let expected = match kind {
            ObjectKind::Blob => git2::ObjectType::Blob,
            ObjectKind::Tree => git2::ObjectType::Tree,
            ObjectKind::Commit => git2::ObjectType::Commit,
            ObjectKind::Tag => git2::ObjectType::Tag,
        };
        if k != expected {
            return Err(Error::Git {
                context: what(),
                message: format!("object {id} is a {k}, not a {expected}"),
            });
        }
        let size = size as u64;
        if kind != ObjectKind::Blob && size > self.big {
            return Err(too_big(what(), id, size, self.big));
        }
        Ok(size)
    }
}

fn too_big(what: String, id: Oid, size: u64, big: u64) -> Error {
    Error::Git {
        context: what,
        message: format!(
            "object {id} is {size} bytes, more than core.bigFileThreshold ({big}) allows to read \
             into memory"
        ),
    }
}

/// Inflates the loose blob `loose` has begun into `file`, a chunk at a time; with `sparse`, a
/// chunk of zeros is skipped over (a hole) and the file's size set at the end. `Ok(false)` when
/// the object turned out damaged (the caller starts the file over).
fn stream_loose(
    loose: &mut LooseObjects,
    chunk: &mut Vec<u8>,
    file: &OwnedFd,
    size: u64,
    sparse: bool,
) -> std::io::Result<bool> {
    let mut holes = false;
    loop {
        chunk.clear();
        match loose.read_content(chunk) {
            None => return Ok(false),
            Some(0) => break,
            Some(n) if sparse && chunk[..] == ZEROS[..n] => {
                rustix::fs::seek(file, rustix::fs::SeekFrom::Current(chunk.len() as i64))?;
                holes = true;
            }
            Some(_) => write_all(file, chunk)?,
        }
    }
    if holes {
        rustix::fs::ftruncate(file, size)?;
    }
    Ok(true)
}

fn write_all(file: &OwnedFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = rustix::io::write(file, data)?;
        data = &data[n..];
    }
    Ok(())
}

/// `git cat-file blob <id>` with its output going straight into `file` (git streams a blob
/// bigger than its `core.bigFileThreshold`, packed or not); checks it wrote `size` bytes.
fn cat_file(
    program: &Path,
    git_dir: &Path,
    id: Oid,
    file: &OwnedFd,
    size: u64,
    what: &impl Fn() -> String,
) -> Result<()> {
    let program_name = program.display().to_string();
    let out_fd = file.try_clone().map_err(|e| Error::io(what(), e))?;
    let mut cmd = crate::worktree::git_env::git_command(program);
    let out = cmd
        .arg("--git-dir")
        .arg(git_dir)
        .args(["cat-file", "blob", &id.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(out_fd))
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| Error::Process {
            program: program_name,
            message: format!("cannot run git cat-file for {}: {e}", what()),
        })?;
    if !out.status.success() {
        return Err(Error::Git {
            context: what(),
            message: format!(
                "git cat-file blob {id}: {} ({})",
                String::from_utf8_lossy(&out.stderr).trim(),
                out.status
            ),
        });
    }
    let written = rustix::fs::fstat(file)
        .map_err(|e| Error::io(what(), e.into()))?
        .st_size as u64;
    if written != size {
        return Err(Error::Git {
            context: what(),
            message: format!("git cat-file wrote {written} bytes of blob {id}, not {size}"),
        });
    }
    Ok(())
}
