//! The new worktree's index: the entries the writer checked out, with their full stat data,
//! written by libgit2; then the cache-tree (`TREE` extension) built from the trees the writer
//! walked, appended to the file with its trailing checksum recomputed, as `git worktree add`'s
//! internal `reset --hard` primes it.
//!
//! Owns: the index file at the path it is given. Must not touch: the worktree's files or the
//! rest of the registration.

use super::{CheckedOut, Written, WrittenTree};
use crate::{Error, Result};
use std::path::Path;

/// Writes the index at `index_path` (a new file) holding what was written (entries in index
/// order, with their full stat data) and its cache-tree, as the git CLI's checkout would.
pub fn write_index(index_path: &Path, written: &Written) -> Result<()> {
    write_index_entries(index_path, &written.entries)?;
    let Some(ext) = cache_tree_extension(&written.trees) else {
        return Ok(());
    };
    append_extension(index_path, &ext)
        .map_err(|e| Error::io_path("write the index's cache-tree", index_path, e))
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

/// Adds extension `ext` (signature, size, data) at the end of the index file `path`, before its
/// trailing SHA-1, and recomputes that checksum; the file is replaced by rename.
fn append_extension(path: &Path, ext: &[u8]) -> std::io::Result<()> {
    let old = std::fs::read(path)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an index file");
    if old.len() < 12 + 20 || &old[..4] != b"DIRC" {
        return Err(bad());
    }
    let body = &old[..old.len() - 20];
    if sha1_smol::Sha1::from(body).digest().bytes() != old[old.len() - 20..] {
        return Err(bad());
    }
    let mut new = Vec::with_capacity(old.len() + ext.len());
    new.extend_from_slice(body);
    new.extend_from_slice(ext);
    let sum = sha1_smol::Sha1::from(&new[..]).digest().bytes();
    new.extend_from_slice(&sum);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".vibetrees-tmp");
    std::fs::write(&tmp, &new)?;
    std::fs::rename(&tmp, path)
}

/// The index's entries (see [`write_index`]), written by libgit2.
fn write_index_entries(index_path: &Path, entries: &[CheckedOut]) -> Result<()> {
    let mut index = git2::Index::open(index_path)
        .map_err(|e| Error::git(format!("open index {}", index_path.display()), e))?;
    for e in entries {
        let entry = index_entry(e.path.clone(), e.mode, e.id, &e.stat);
        index.add(&entry).map_err(|e| {
            Error::git(
                format!("index entry {}", String::from_utf8_lossy(&entry.path)),
                e,
            )
        })?;
    }
    index
        .write()
        .map_err(|e| Error::git(format!("write index {}", index_path.display()), e))
}

/// Where the extensions of the index `data` start (after its entries), for versions 2 and 3;
/// `None` for anything else (version 4's compressed paths, a damaged file).
fn extensions_start(data: &[u8]) -> Option<usize> {
    if data.len() < 12 + 20 || &data[..4] != b"DIRC" {
        return None;
    }
    let version = u32::from_be_bytes(data[4..8].try_into().ok()?);
    let count = u32::from_be_bytes(data[8..12].try_into().ok()?) as usize;
    if !matches!(version, 2 | 3) {
        return None;
    }
    let end = data.len() - 20;
    let mut at = 12;
    for _ in 0..count {
        let flags = u16::from_be_bytes(data.get(at + 60..at + 62)?.try_into().ok()?);
        let mut fixed = 62;
        if version == 3 && flags & 0x4000 != 0 {
            fixed += 2;
        }
        let path_start = at + fixed;
        let nul = data.get(path_start..end)?.iter().position(|&b| b == 0)?;
        // the entry is padded with 1 to 8 NULs to a multiple of 8 bytes
        let len = (fixed + nul + 8) & !7;
        at += len;
        if at > end {
            return None;
        }
    }
    Some(at)
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

/// Removes the cache-tree (`TREE` extension) from the index file `path` (its checksum
/// recomputed, the file replaced by rename) and returns the folders it recorded by prefix (see
/// [`replace_cache_tree`]). Other extensions are kept. An index this cannot read is left as it is
/// (nothing returned).
pub fn take_cache_tree(path: &Path) -> Result<std::collections::HashMap<Vec<u8>, WrittenTree>> {
    let io = |e| Error::io_path("read the index's cache-tree", path, e);
    let old = std::fs::read(path).map_err(io)?;
    let Some(start) = extensions_start(&old) else {
        return Ok(Default::default());
    };
    let end = old.len() - 20;
    let mut kept = old[..start].to_vec();
    let mut trees = Default::default();
    let mut at = start;
    while at + 8 <= end {
        let size = u32::from_be_bytes(old[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        let Some(body) = old
            .get(at + 8..at + 8 + size)
            .filter(|_| at + 8 + size <= end)
        else {
            return Ok(Default::default());
        };
        if &old[at..at + 4] == b"TREE" {
            trees = parse_cache_tree(body);
        } else {
            kept.extend_from_slice(&old[at..at + 8 + size]);
        }
        at += 8 + size;
    }
    let sum = sha1_smol::Sha1::from(&kept[..]).digest().bytes();
    kept.extend_from_slice(&sum);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".vibetrees-tmp");
    std::fs::write(&tmp, &kept)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io_path("write", path, e))?;
    Ok(trees)
}

/// Appends the cache-tree of `trees` (the folders of the whole tree the index holds) to the index
/// file `path`, which has none (see [`take_cache_tree`]).
pub fn add_cache_tree(path: &Path, trees: &[WrittenTree]) -> Result<()> {
    let Some(ext) = cache_tree_extension(trees) else {
        return Ok(());
    };
    append_extension(path, &ext)
        .map_err(|e| Error::io_path("write the index's cache-tree", path, e))
}

/// An index entry for `path` with the `lstat` data `st` (what [`write_index`] records).
pub fn index_entry(
    path: Vec<u8>,
    mode: u32,
    id: git2::Oid,
    st: &rustix::fs::Stat,
) -> git2::IndexEntry {
    git2::IndexEntry {
        ctime: git2::IndexTime::new(st.st_ctime as i32, st.st_ctime_nsec as u32),
        mtime: git2::IndexTime::new(st.st_mtime as i32, st.st_mtime_nsec as u32),
        dev: st.st_dev as u32,
        ino: st.st_ino as u32,
        mode,
        uid: st.st_uid,
        gid: st.st_gid,
        file_size: if mode == 0o160000 {
            0
        } else {
            st.st_size as u32
        },
        id,
        flags: 0,
        flags_extended: 0,
        path,
    }
}
