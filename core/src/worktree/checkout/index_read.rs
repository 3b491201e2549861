//! Reading back an index file we wrote (`index.rs`), whole and once, for a near spare's update:
//! the header and the checksum checked, each entry's place found (its bytes are copied as they
//! are by [`super::write_updated_index`]), the cache-tree (`TREE`) parsed into the folders it
//! records.
//!
//! Only what our writer makes is read: version 2 (version 3's extended flags and version 4's
//! compressed paths are refused), entries of stage 0 in strict path order, and no extension but
//! `TREE`. Anything else (`UNTR`, `REUC`, `link`, `FSMN`, `EOIE`, ... which git or libgit2 may
//! add, and some of which record entries by position, so kept as they are they would be wrong
//! once entries move) is refused with an error naming it: the caller then fails the claim and
//! discards the spare, never writing an index it does not understand. A damaged `TREE` is not an
//! error: no folder is taken from it (the update reads every folder from the trees instead).
//!
//! Owns: nothing on disk; reads the file it is given.

use super::WrittenTree;
use super::index::{ENTRY_FIXED, INDEX_VERSION, entry_size};
use crate::{Error, Result};
use git2::Oid;
use std::collections::HashMap;
use std::path::Path;

/// An index file read whole: its bytes, where each entry is, and its cache-tree.
#[derive(Debug)]
pub struct IndexFile {
    data: Vec<u8>,
    /// Each entry's offset in `data` and its path's length.
    entries: Vec<(usize, usize)>,
    /// Where the entries end (the extensions start).
    entries_end: usize,
    trees: HashMap<Vec<u8>, WrittenTree>,
}

/// One entry of an [`IndexFile`], as stored (the stat fields are the low 32 bits of `lstat`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntryRef<'a> {
    /// Path relative to the worktree, `/`-separated.
    pub path: &'a [u8],
    /// The entry's mode (`0o100644`, `0o100755`, `0o120000`, `0o160000`).
    pub mode: u32,
    /// The blob (or, for a submodule, the commit).
    pub id: Oid,
    /// `ctime` seconds and nanoseconds.
    pub ctime: (u32, u32),
    /// `mtime` seconds and nanoseconds.
    pub mtime: (u32, u32),
    /// Device.
    pub dev: u32,
    /// Inode.
    pub ino: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (0 for a submodule).
    pub size: u32,
    /// The flags word (path length, stage 0, the assume-valid bit).
    pub flags: u16,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl IndexFile {
    /// Reads and checks the index file `path` (see the module's doc for what is refused: the
    /// error says why, as a git error on that file).
    pub fn read(path: &Path) -> Result<IndexFile> {
        let data = std::fs::read(path).map_err(|e| Error::io_path("read the index", path, e))?;
        IndexFile::parse(data).map_err(|message| Error::Git {
            context: format!("read index {}", path.display()),
            message,
        })
    }

    /// Checks and indexes the index file contents `data`; the error says why it is refused.
    pub fn parse(data: Vec<u8>) -> std::result::Result<IndexFile, String> {
        if data.len() < 12 + 20 || &data[..4] != b"DIRC" {
            return Err("not an index file".into());
        }
        let end = data.len() - 20;
        if sha1_smol::Sha1::from(&data[..end]).digest().bytes() != data[end..] {
            return Err("its checksum does not match its contents (a damaged file)".into());
        }
        let version = be32(&data[4..8]);
        if version != INDEX_VERSION {
            return Err(format!(
                "index version {version}: only version {INDEX_VERSION}, which vibetrees writes, is read"
            ));
        }
        let count = be32(&data[8..12]) as usize;
        let mut entries = Vec::with_capacity(count.min(end / ENTRY_FIXED));
        let mut at = 12;
        let mut prev: &[u8] = &[];
        for i in 0..count {
            let damaged = || format!("entry {i} of {count} runs past the end (a damaged file)");
            if at + ENTRY_FIXED > end {
                return Err(damaged());
            }
            let flags = u16::from_be_bytes([data[at + 60], data[at + 61]]);
            let rest = &data[at + ENTRY_FIXED..end];
            let len = match usize::from(flags & 0xFFF) {
                0xFFF => rest.iter().position(|&b| b == 0).ok_or_else(damaged)?,
                n if rest.get(n) == Some(&0) => n,
                _ => return Err(format!("entry {i}'s path length does not match its flags")),
            };
            let path = &rest[..len];
            let size = entry_size(len);
            if at + size > end {
                return Err(damaged());
            }
            if data[at + ENTRY_FIXED + len..at + size]
                .iter()
                .any(|&b| b != 0)
            {
                return Err(format!("entry {i}'s padding is not NULs (a damaged file)"));
            }
            let shown = || String::from_utf8_lossy(path).into_owned();
            if flags & 0x4000 != 0 {
                return Err(format!(
                    "entry {} has extended flags, which version 2 has not",
                    shown()
                ));
            }
            let stage = (flags >> 12) & 3;
            if stage != 0 {
                return Err(format!(
                    "entry {} is unmerged (stage {stage}): our index never has a conflict",
                    shown()
                ));
            }
            if len == 0 {
                return Err(format!(
                    "entry {i} has no path (a split index's entries may have none: a \"link\" \
                     extension, which vibetrees does not write)"
                ));
            }
            if i > 0 && path <= prev {
                return Err(format!("entry {} is out of order", shown()));
            }
            prev = path;
            entries.push((at, len));
            at += size;
        }
        let entries_end = at;
        let mut trees = HashMap::new();
        while at < end {
            let body = data
                .get(at + 8..end)
                .and_then(|d| d.get(..be32(&data[at + 4..at + 8]) as usize))
                .ok_or("an extension runs past the end (a damaged file)")?;
            let sig = &data[at..at + 4];
            if sig != b"TREE" {
                return Err(format!(
                    "extension {:?}: only TREE, which vibetrees writes, is read",
                    String::from_utf8_lossy(sig)
                ));
            }
            trees = parse_cache_tree(body);
            at += 8 + body.len();
        }
        Ok(IndexFile {
            data,
            entries,
            entries_end,
            trees,
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i` (in index order).
    pub fn entry(&self, i: usize) -> IndexEntryRef<'_> {
        let (at, len) = self.entries[i];
        let d = &self.data[at..at + ENTRY_FIXED + len];
        let w = |k: usize| be32(&d[k * 4..k * 4 + 4]);
        IndexEntryRef {
            path: &d[ENTRY_FIXED..],
            ctime: (w(0), w(1)),
            mtime: (w(2), w(3)),
            dev: w(4),
            ino: w(5),
            mode: w(6),
            uid: w(7),
            gid: w(8),
            size: w(9),
            id: Oid::from_bytes(&d[40..60]).expect("20 bytes"),
            flags: u16::from_be_bytes([d[60], d[61]]),
        }
    }

    /// The folders the cache-tree records (valid ones only), keyed by prefix (`a/b/`, empty
    /// at the top); empty when there is none or it is damaged.
    pub fn cache_tree(&self) -> &HashMap<Vec<u8>, WrittenTree> {
        &self.trees
    }

    /// Entry `i`'s path and its bytes as stored (padding included).
    pub(super) fn raw_entry(&self, i: usize) -> (&[u8], &[u8]) {
        let (at, len) = self.entries[i];
        (
            &self.data[at + ENTRY_FIXED..at + ENTRY_FIXED + len],
            &self.data[at..at + entry_size(len)],
        )
    }

    /// The bytes of all the entries.
    pub(super) fn entries_bytes(&self) -> usize {
        self.entries_end - 12
    }
}

/// The folders recorded in the `TREE` extension `data` (valid ones only: an invalidated folder,
/// `-1` entries, is left out with its subfolders), keyed by prefix (`a/b/`, empty at the top).
fn parse_cache_tree(data: &[u8]) -> std::collections::HashMap<Vec<u8>, WrittenTree> {
    /// One folder at `*at` and its subfolders; returns its entry count (`-1`: invalid).
    fn node(
        data: &[u8],
        at: &mut usize,
        prefix: Vec<u8>,
        out: &mut std::collections::HashMap<Vec<u8>, WrittenTree>,
    ) -> Option<i64> {
        let nul = data.get(*at..)?.iter().position(|&b| b == 0)?;
        *at += nul + 1;
        let nl = data.get(*at..)?.iter().position(|&b| b == b'\n')?;
        let head = std::str::from_utf8(&data[*at..*at + nl]).ok()?;
        *at += nl + 1;
        let (entries, subs) = head.split_once(' ')?;
        let (entries, subs): (i64, usize) = (entries.parse().ok()?, subs.parse().ok()?);
        let id = if entries >= 0 {
            let id = git2::Oid::from_bytes(data.get(*at..*at + 20)?).ok()?;
            *at += 20;
            Some(id)
        } else {
            None
        };
        let mut names = Vec::with_capacity(subs);
        let mut below = 0i64;
        let mut valid = id.is_some();
        for _ in 0..subs {
            let nul = data.get(*at..)?.iter().position(|&b| b == 0)?;
            let name = data[*at..*at + nul].to_vec();
            let mut p = prefix.clone();
            p.extend_from_slice(&name);
            p.push(b'/');
            let n = node(data, at, p, out)?;
            valid &= n >= 0;
            below += n.max(0);
            names.push(name.into_boxed_slice());
        }
        if let (Some(id), true) = (id, valid) {
            let files = usize::try_from(entries - below).ok()?;
            out.insert(
                prefix.clone(),
                WrittenTree {
                    prefix,
                    id,
                    files,
                    subtrees: names,
                },
            );
        }
        Some(entries)
    }
    let mut out = std::collections::HashMap::new();
    let mut at = 0;
    if node(data, &mut at, Vec::new(), &mut out).is_none() {
        out.clear();
    }
    out
}
