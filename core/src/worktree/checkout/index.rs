//! The worktree's index file, written by us: version 2 entries with their full stat data (as
//! libgit2 and git write them), the cache-tree (`TREE` extension) built from the trees the
//! writer walked, as `git worktree add`'s internal `reset --hard` primes it, and the trailing
//! SHA-1; written beside its place and renamed over it (as git's lock file does), in one write.
//! The same writer serves a new worktree ([`write_index`]) and a near spare's update
//! ([`write_updated_index`]: the entries of the old index, read once by `index_read.rs`, copied
//! as they are around the changed ones).
//!
//! Owns: the index file at the path it is given. Must not touch: the worktree's files or the
//! rest of the registration.

use super::index_read::IndexFile;
use super::{CheckedOut, Written, WrittenTree};
use crate::{Error, Result};
use std::path::Path;

/// The index file version we write (and the only one `index_read.rs` reads back).
pub(super) const INDEX_VERSION: u32 = 2;

/// The fixed part of a version 2 entry, before its path: ten 32-bit stat and mode fields, the
/// object id (20 bytes) and 16 bits of flags.
pub(super) const ENTRY_FIXED: usize = 62;

/// The bytes of a version 2 entry whose path is `path_len` bytes long: padded with 1 to 8 NULs
/// to a multiple of 8.
pub(super) fn entry_size(path_len: usize) -> usize {
    (ENTRY_FIXED + path_len + 8) & !7
}

/// Writes the index at `index_path` holding what was written (entries in index order, with
/// their full stat data) and its cache-tree, as the git CLI's checkout would. The file is
/// replaced whole (written beside it, then renamed).
pub fn write_index(index_path: &Path, written: &Written) -> Result<()> {
    let mut entries: Vec<&CheckedOut> = written.entries.iter().collect();
    // in index order already (the writer sorts them); a stable sort of sorted input is one pass
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(bad_entries(index_path, &w[0].path));
    }
    let mut out = IndexOut::new(entries.iter().map(|e| entry_size(e.path.len())).sum());
    for e in entries {
        out.entry(e);
    }
    out.finish(index_path, cache_tree_extension(&written.trees).as_deref())
}

/// Writes at `index_path` the index `old` (read by [`IndexFile::read`]) with every entry at one
/// of the `changed` paths taken out (all its stages) and the `added` entries put in (their
/// stat data taken after they were written), with the cache-tree of `trees` (the folders of the
/// whole new tree; see [`cache_tree_extension`]). The kept entries are copied byte for byte, so
/// the cost is one pass over the old index plus the change; one write, replacing the file whole.
/// `changed` must name every added path too.
pub fn write_updated_index(
    index_path: &Path,
    old: &IndexFile,
    changed: &[&[u8]],
    mut added: Vec<CheckedOut>,
    trees: &[WrittenTree],
) -> Result<()> {
    added.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = added.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(bad_entries(index_path, &w[0].path));
    }
    let mut gone: Vec<&[u8]> = changed.to_vec();
    gone.sort_unstable();
    gone.dedup();
    if let Some(a) = added
        .iter()
        .find(|a| gone.binary_search(&&a.path[..]).is_err())
    {
        return Err(bad_entries(index_path, &a.path));
    }
    let mut out = IndexOut::new(old.entries_bytes() + added.len() * entry_size(64));
    let (mut next_added, mut next_gone) = (added.iter().peekable(), 0);
    for i in 0..old.len() {
        let (path, raw) = old.raw_entry(i);
        // the new entries that sort before this one (index order: path bytes, then stage; ours
        // are stage 0 and replace every stage of their path, which is dropped below)
        while let Some(a) = next_added.next_if(|a| &a.path[..] <= path) {
            out.entry(a);
        }
        while next_gone < gone.len() && gone[next_gone] < path {
            next_gone += 1;
        }
        if gone.get(next_gone) != Some(&path) {
            out.raw(raw);
        }
    }
    for a in next_added {
        out.entry(a);
    }
    out.finish(index_path, cache_tree_extension(trees).as_deref())
}

fn bad_entries(index_path: &Path, path: &[u8]) -> Error {
    Error::Git {
        context: format!("write index {}", index_path.display()),
        message: format!(
            "entry {} given twice (or added without being changed)",
            String::from_utf8_lossy(path)
        ),
    }
}

/// An index file being made: the header (its entry count filled in at the end), the entries
/// in index order, then the extensions and the checksum.
struct IndexOut {
    buf: Vec<u8>,
    count: u32,
}

impl IndexOut {
    fn new(entry_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(12 + entry_bytes + 4096 + 20);
        buf.extend_from_slice(b"DIRC");
        buf.extend_from_slice(&INDEX_VERSION.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        IndexOut { buf, count: 0 }
    }

    /// Appends a version 2 entry for `e`, as libgit2 writes it: the `lstat` fields truncated to
    /// 32 bits, no size for a submodule, flags holding the path length (at most 0xFFF) and
    /// stage 0, the path padded with NULs.
    fn entry(&mut self, e: &CheckedOut) {
        let st = &e.stat;
        let size = if e.mode == 0o160000 {
            0
        } else {
            st.st_size as u32
        };
        let fields = [
            st.st_ctime as u32,
            st.st_ctime_nsec as u32,
            st.st_mtime as u32,
            st.st_mtime_nsec as u32,
            st.st_dev as u32,
            st.st_ino as u32,
            e.mode,
            st.st_uid,
            st.st_gid,
            size,
        ];
        let start = self.buf.len();
        for f in fields {
            self.buf.extend_from_slice(&f.to_be_bytes());
        }
        self.buf.extend_from_slice(e.id.as_bytes());
        let flags = e.path.len().min(0xFFF) as u16;
        self.buf.extend_from_slice(&flags.to_be_bytes());
        self.buf.extend_from_slice(&e.path);
        self.buf.resize(start + entry_size(e.path.len()), 0);
        self.count += 1;
    }

    /// Appends an entry as it was in another index file (see [`IndexFile::raw_entry`]).
    fn raw(&mut self, entry: &[u8]) {
        self.buf.extend_from_slice(entry);
        self.count += 1;
    }

    /// Fills in the count, appends `ext` (an extension: signature, size, data) and the SHA-1
    /// of it all, writes the file beside `path` and renames it over `path`.
    fn finish(mut self, path: &Path, ext: Option<&[u8]>) -> Result<()> {
        self.buf[8..12].copy_from_slice(&self.count.to_be_bytes());
        if let Some(ext) = ext {
            self.buf.extend_from_slice(ext);
        }
        let sum = sha1_smol::Sha1::from(&self.buf[..]).digest().bytes();
        self.buf.extend_from_slice(&sum);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".vibetrees-tmp");
        let written = std::fs::write(&tmp, &self.buf).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(|e| Error::io_path("write the index", path, e))
    }
}

/// The index's `TREE` extension (signature, size, data) for the folders written, as git's
/// `prime_cache_tree` + `cache_tree_write` make it: each folder in pre-order as
/// `<name>\0<entries> <subtrees>\n<tree id>`, its subfolders ordered by name length, then bytes.
/// `None` when the folders do not form one whole tree (nothing to record then).
pub fn cache_tree_extension(trees: &[WrittenTree]) -> Option<Vec<u8>> {
    use std::collections::HashMap;
    let by_prefix: HashMap<&[u8], &WrittenTree> =
        trees.iter().map(|t| (&t.prefix[..], t)).collect();
    if by_prefix.len() != trees.len() {
        return None;
    }
    // entries under each folder (its files and all its subfolders'), children first
    fn count<'a>(
        t: &'a WrittenTree,
        by_prefix: &HashMap<&[u8], &'a WrittenTree>,
        counts: &mut HashMap<&'a [u8], usize>,
    ) -> Option<usize> {
        let mut n = t.files;
        for sub in &t.subtrees {
            let mut p = t.prefix.clone();
            p.extend_from_slice(sub);
            p.push(b'/');
            let child = by_prefix.get(&p[..])?;
            n += count(child, by_prefix, counts)?;
        }
        counts.insert(&t.prefix[..], n);
        Some(n)
    }
    fn emit(
        t: &WrittenTree,
        name: &[u8],
        by_prefix: &HashMap<&[u8], &WrittenTree>,
        counts: &HashMap<&[u8], usize>,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(name);
        out.push(0);
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(num.format(counts[&t.prefix[..]]).as_bytes());
        out.push(b' ');
        out.extend_from_slice(num.format(t.subtrees.len()).as_bytes());
        out.push(b'\n');
        out.extend_from_slice(t.id.as_bytes());
        let mut subs: Vec<&[u8]> = t.subtrees.iter().map(|s| &s[..]).collect();
        subs.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        for sub in subs {
            let mut p = t.prefix.clone();
            p.extend_from_slice(sub);
            p.push(b'/');
            emit(by_prefix[&p[..]], sub, by_prefix, counts, out);
        }
    }
    let root = by_prefix.get(&b""[..])?;
    let mut counts = HashMap::with_capacity(trees.len());
    count(root, &by_prefix, &mut counts)?;
    if counts.len() != trees.len() {
        return None; // a folder outside the tree
    }
    let mut data = Vec::with_capacity(trees.len() * 48);
    emit(root, b"", &by_prefix, &counts, &mut data);
    let mut ext = Vec::with_capacity(data.len() + 8);
    ext.extend_from_slice(b"TREE");
    ext.extend_from_slice(&u32::try_from(data.len()).ok()?.to_be_bytes());
    ext.extend_from_slice(&data);
    Some(ext)
}
