//! The listing of a cache entry: every folder, file and symlink of its tree in pre-order, with the
//! mode, size, mtime and inode each file had when the entry was made.
//!
//! A restore is driven by the listing instead of reading the cached folders again: no `getdents`,
//! no `readlink`, and the sizes let the restore split the work evenly over its workers. `verify`
//! and the restore's own check compare the files against it to find mutated entries.
//!
//! Format (little endian): the magic `VTLIST01`, then records:
//! `D mode:u32 nlen:u16 name\0` opens a folder, `E` closes it,
//! `F mode:u32 size:u64 mtime_s:i64 mtime_ns:u32 ino:u64 nlen:u16 name\0` is a file,
//! `L nlen:u16 name\0 tlen:u32 target\0` is a symlink. The first record is the root folder
//! (empty name) and the last one closes it.

use crate::{Error, Result};
use std::ffi::CStr;

const MAGIC: &[u8; 8] = b"VTLIST01";

/// What a listed node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Dir,
    File,
    Symlink,
}

/// One listed node. Strings are offsets into the listing's buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub ino: u64,
    name_off: u32,
    name_len: u32,
    target_off: u32,
    target_len: u32,
    /// Index of the parent folder (the root is its own parent).
    pub parent: u32,
    /// For a folder: the index just past its last descendant. Otherwise `index + 1`.
    pub end: u32,
}

/// A parsed listing.
pub(crate) struct Listing {
    buf: Vec<u8>,
    pub nodes: Vec<Node>,
}

fn corrupt(what: &str) -> Error {
    Error::Cache(format!("corrupt entry listing: {what}"))
}

impl Listing {
    /// Parses the bytes of a listing file.
    pub fn parse(buf: Vec<u8>) -> Result<Listing> {
        if buf.len() < 8 || &buf[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(buf.len() / 48);
        let mut stack: Vec<u32> = Vec::new();
        let mut pos = 8usize;
        let take = |pos: &mut usize, n: usize| -> Result<usize> {
            let start = *pos;
            if start + n > buf.len() {
                return Err(corrupt("truncated"));
            }
            *pos += n;
            Ok(start)
        };
        let u16_at = |p: usize| u16::from_le_bytes([buf[p], buf[p + 1]]) as u32;
        let u32_at = |p: usize| u32::from_le_bytes(buf[p..p + 4].try_into().unwrap());
        let u64_at = |p: usize| u64::from_le_bytes(buf[p..p + 8].try_into().unwrap());
        let name_ok = |off: usize, len: usize| -> Result<()> {
            let s = &buf[off..off + len + 1];
            if s[len] != 0 || s[..len].contains(&0) || s[..len].contains(&b'/') {
                return Err(corrupt("bad name"));
            }
            Ok(())
        };
        while pos < buf.len() {
            let tag = buf[take(&mut pos, 1)?];
            let parent = *stack.last().unwrap_or(&0);
            let idx = nodes.len() as u32;
            match tag {
                b'D' => {
                    let p = take(&mut pos, 6)?;
                    let mode = u32_at(p);
                    let nlen = u16_at(p + 4) as usize;
                    let n = take(&mut pos, nlen + 1)?;
                    name_ok(n, nlen)?;
                    if stack.is_empty() && (!nodes.is_empty() || nlen != 0) {
                        return Err(corrupt("content after the root folder"));
                    }
                    nodes.push(Node {
                        kind: NodeKind::Dir,
                        mode,
                        size: 0,
                        mtime_sec: 0,
                        mtime_nsec: 0,
                        ino: 0,
                        name_off: n as u32,
                        name_len: nlen as u32,
                        target_off: 0,
                        target_len: 0,
                        parent,
                        end: 0,
                    });
                    stack.push(idx);
                }
                b'E' => {
                    let d = stack.pop().ok_or_else(|| corrupt("unbalanced end"))?;
                    nodes[d as usize].end = idx;
                }
                b'F' => {
                    if stack.is_empty() {
                        return Err(corrupt("file outside the root"));
                    }
                    let p = take(&mut pos, 4 + 8 + 8 + 4 + 8 + 2)?;
                    let nlen = u16_at(p + 32) as usize;
                    let n = take(&mut pos, nlen + 1)?;
                    name_ok(n, nlen)?;
                    nodes.push(Node {
                        kind: NodeKind::File,
                        mode: u32_at(p),
                        size: u64_at(p + 4),
                        mtime_sec: u64_at(p + 12) as i64,
                        mtime_nsec: u32_at(p + 20),
                        ino: u64_at(p + 24),
                        name_off: n as u32,
                        name_len: nlen as u32,
                        target_off: 0,
                        target_len: 0,
                        parent,
                        end: idx + 1,
                    });
                }
                b'L' => {
                    if stack.is_empty() {
                        return Err(corrupt("symlink outside the root"));
                    }
                    let p = take(&mut pos, 2)?;
                    let nlen = u16_at(p) as usize;
                    let n = take(&mut pos, nlen + 1)?;
                    name_ok(n, nlen)?;
                    let p = take(&mut pos, 4)?;
                    let tlen = u32_at(p) as usize;
                    let t = take(&mut pos, tlen + 1)?;
                    if buf[t + tlen] != 0 || buf[t..t + tlen].contains(&0) {
                        return Err(corrupt("bad symlink target"));
                    }
                    nodes.push(Node {
                        kind: NodeKind::Symlink,
                        mode: 0o777,
                        size: tlen as u64,
                        mtime_sec: 0,
                        mtime_nsec: 0,
                        ino: 0,
                        name_off: n as u32,
                        name_len: nlen as u32,
                        target_off: t as u32,
                        target_len: tlen as u32,
                        parent,
                        end: idx + 1,
                    });
                }
                _ => return Err(corrupt("unknown record")),
            }
        }
        if !stack.is_empty() || nodes.is_empty() || nodes[0].kind != NodeKind::Dir {
            return Err(corrupt("truncated"));
        }
        Ok(Listing { buf, nodes })
    }

    /// The name of node `i` (empty for the root).
    pub fn name(&self, i: usize) -> &CStr {
        let n = &self.nodes[i];
        let s = &self.buf[n.name_off as usize..(n.name_off + n.name_len + 1) as usize];
        CStr::from_bytes_with_nul(s).expect("validated at parse")
    }

    /// The target of symlink `i`.
    pub fn target(&self, i: usize) -> &CStr {
        let n = &self.nodes[i];
        let s = &self.buf[n.target_off as usize..(n.target_off + n.target_len + 1) as usize];
        CStr::from_bytes_with_nul(s).expect("validated at parse")
    }

    /// Children of folder `d`, in order.
    pub fn children(&self, d: usize) -> Children<'_> {
        Children {
            nodes: &self.nodes,
            next: d + 1,
            end: self.nodes[d].end as usize,
        }
    }

    /// The path of node `i` relative to the root, as bytes joined by `/`.
    pub fn rel_path(&self, i: usize) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let mut parts = Vec::new();
        let mut cur = i;
        while cur != 0 {
            parts.push(self.name(cur).to_bytes());
            cur = self.nodes[cur].parent as usize;
        }
        let mut p = std::path::PathBuf::new();
        for part in parts.iter().rev() {
            p.push(std::ffi::OsStr::from_bytes(part));
        }
        p
    }
}

/// Iterator over the direct children of a folder.
pub(crate) struct Children<'a> {
    nodes: &'a [Node],
    next: usize,
    end: usize,
}

impl Iterator for Children<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.next >= self.end {
            return None;
        }
        let i = self.next;
        self.next = self.nodes[i].end as usize;
        Some(i)
    }
}

/// Builds a listing while a tree is walked in pre-order.
pub(crate) struct ListingWriter {
    buf: Vec<u8>,
}

impl ListingWriter {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(MAGIC);
        ListingWriter { buf }
    }

    fn name(&mut self, name: &[u8]) {
        self.buf
            .extend_from_slice(&(name.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(name);
        self.buf.push(0);
    }

    /// Opens a folder (the root has an empty name).
    pub fn enter_dir(&mut self, name: &[u8], mode: u32) {
        self.buf.push(b'D');
        self.buf.extend_from_slice(&mode.to_le_bytes());
        self.name(name);
    }

    /// Closes the folder opened last.
    pub fn leave_dir(&mut self) {
        self.buf.push(b'E');
    }

    /// A regular file.
    pub fn file(&mut self, name: &[u8], mode: u32, size: u64, mtime: (i64, u32), ino: u64) {
        self.buf.push(b'F');
        self.buf.extend_from_slice(&mode.to_le_bytes());
        self.buf.extend_from_slice(&size.to_le_bytes());
        self.buf.extend_from_slice(&mtime.0.to_le_bytes());
        self.buf.extend_from_slice(&mtime.1.to_le_bytes());
        self.buf.extend_from_slice(&ino.to_le_bytes());
        self.name(name);
    }

    /// A symlink and its target, verbatim.
    pub fn symlink(&mut self, name: &[u8], target: &[u8]) {
        self.buf.push(b'L');
        self.name(name);
        self.buf
            .extend_from_slice(&(target.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(target);
        self.buf.push(0);
    }

    /// The finished bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_children() {
        let mut w = ListingWriter::new();
        w.enter_dir(b"", 0o755);
        w.enter_dir(b"a", 0o755);
        w.file(b"f", 0o644, 3, (10, 5), 7);
        w.leave_dir();
        w.symlink(b"l", b"a/f");
        w.enter_dir(b"empty", 0o700);
        w.leave_dir();
        w.leave_dir();
        let l = Listing::parse(w.into_bytes()).unwrap();
        let kids: Vec<_> = l
            .children(0)
            .map(|i| l.name(i).to_str().unwrap().to_string())
            .collect();
        assert_eq!(kids, ["a", "l", "empty"]);
        assert_eq!(l.target(3).to_bytes(), b"a/f");
        assert_eq!(l.rel_path(2), std::path::Path::new("a/f"));
        assert_eq!(l.nodes[2].size, 3);
        assert_eq!(l.nodes[2].mtime_nsec, 5);
        assert_eq!(l.children(4).count(), 0);
    }

    #[test]
    fn truncated_listing_is_refused() {
        let mut w = ListingWriter::new();
        w.enter_dir(b"", 0o755);
        w.file(b"f", 0o644, 3, (10, 5), 7);
        let bytes = w.into_bytes();
        for cut in 0..bytes.len() {
            assert!(
                Listing::parse(bytes[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
    }
}
