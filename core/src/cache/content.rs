//! Content digests of a cache entry: the BLAKE3 of every file's bytes, taken when the entry is
//! populated and kept beside its listing (`content.blake3`), so that `vibetrees cache verify
//! --content` can find a file changed in place through a hardlink even when its size and mtime
//! were kept (what the per-file check of a restore cannot see).
//!
//! Format: the magic `VTDIG001`, then one 32-byte digest per file of the listing, in listing
//! order. Files are opened beneath the entry's tree, never through a link.

use super::fsops;
use super::listing::{Listing, NodeKind};
use crate::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd};

/// The name of the digests file in an entry.
pub(crate) const DIGESTS_FILE: &str = "content.blake3";

const MAGIC: &[u8; 8] = b"VTDIG001";

/// The digests file's bytes for the tree `tree` listed by `listing`.
pub(crate) fn digest_tree(listing: &Listing, tree: BorrowedFd<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8 + 32 * listing.nodes.len());
    out.extend_from_slice(MAGIC);
    let mut failure = None;
    walk(listing, tree, 0, &mut |i, digest| match digest {
        Ok(d) => out.extend_from_slice(d.as_bytes()),
        Err(e) => {
            if failure.is_none() {
                failure = Some(format!("{}: {e}", listing.rel_path(i).display()));
            }
            out.extend_from_slice(&[0; 32]);
        }
    });
    match failure {
        Some(f) => Err(Error::Cache(format!("cannot hash {f}"))),
        None => Ok(out),
    }
}

/// The files of `tree` whose content differs from the digests `recorded` (as `path: content
/// changed`, or the error reading it); counts the files hashed in `files`.
pub(crate) fn changed_files(
    listing: &Listing,
    tree: BorrowedFd<'_>,
    recorded: &[u8],
    files: &mut u64,
) -> Result<Vec<String>> {
    if recorded.len() < 8 || &recorded[..8] != MAGIC || (recorded.len() - 8) % 32 != 0 {
        return Err(Error::Cache(format!("{DIGESTS_FILE}: not a digests file")));
    }
    let digests = &recorded[8..];
    let mut n = 0usize;
    let mut problems = Vec::new();
    walk(listing, tree, 0, &mut |i, digest| {
        let want = digests.get(n * 32..n * 32 + 32);
        n += 1;
        *files += 1;
        let path = listing.rel_path(i);
        match (digest, want) {
            (Ok(d), Some(w)) if d.as_bytes() == w => {}
            (Ok(_), Some(_)) => problems.push(format!("{}: content changed", path.display())),
            (Ok(_), None) => problems.push(format!("{}: no digest recorded", path.display())),
            (Err(e), _) => problems.push(format!("{}: {e}", path.display())),
        }
    });
    if n * 32 != digests.len() {
        problems.push(format!(
            "{DIGESTS_FILE}: {} digests for {n} files",
            digests.len() / 32
        ));
    }
    Ok(problems)
}

/// Calls `f` with each file of folder `d` (and below, in listing order) and its digest.
fn walk(
    listing: &Listing,
    dir: BorrowedFd<'_>,
    d: usize,
    f: &mut dyn FnMut(usize, std::io::Result<blake3::Hash>),
) {
    for c in listing.children(d) {
        let name = listing.name(c);
        match listing.nodes[c].kind {
            NodeKind::File => f(c, hash_file(dir, name)),
            NodeKind::Dir => match fsops::open_dir_path(dir, name) {
                Ok(fd) => walk(listing, fd.as_fd(), c, f),
                Err(e) => {
                    // every file below counts as unreadable, in order
                    let err = std::io::Error::from_raw_os_error(e.raw_os_error());
                    for i in c + 1..listing.nodes[c].end as usize {
                        if listing.nodes[i].kind == NodeKind::File {
                            f(i, Err(std::io::Error::new(err.kind(), err.to_string())));
                        }
                    }
                }
            },
            NodeKind::Symlink => {}
        }
    }
}

fn hash_file(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> std::io::Result<blake3::Hash> {
    let fd = crate::platform::open_file_at(dir, name)
        .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))?;
    let mut file = std::fs::File::from(fd);
    let mut h = blake3::Hasher::new();
    h.update_reader(&mut file)?;
    Ok(h.finalize())
}
