//! A blob far bigger than memory should allow does not abort the process (issue 13): a 2 GiB blob
//! of zeros is ~2 MB as a loose object, and a reader that reserved its declared size would abort
//! on the failed allocation (taking a Node server down with it). Here the checkout runs under an
//! address-space limit 1 GiB above what the process uses, so reserving 2 GiB fails for certain:
//! the intact blob must be checked out (streamed, sparse: little disk), the truncated one must fail
//! the checkout with an error naming it and leave nothing. Its own test binary: it lowers the
//! process's `RLIMIT_AS`, which would disturb tests running beside it.

mod worktree_support;

use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::checkout::CheckoutMethod;
use vibetrees_core::worktree::git;
use worktree_support::{git, setup};

/// 2 GiB: the declared size of the big blob.
const BIG: u64 = 2 << 30;
/// `git hash-object` of a file of 2 GiB of zeros (`truncate -s 2G f && git hash-object f`):
/// hashing 2 GiB in the test itself would take most of a minute in a debug build.
const BIG_ZEROS_ID: &str = "77e9132b46cb9535f286f18974872f40049d1a89";

/// The zlib stream of a loose object `blob <BIG>\0` + BIG zeros, made without compressing 2 GiB:
/// the header and one MiB of zeros are deflated each with a full flush (a full flush resets the
/// compressor, so that MiB's blocks refer to nothing before them and can be repeated), the MiB's
/// blocks are repeated, then the final block and the Adler-32 of it all (computed, not hashed:
/// zeros leave Adler-32's `a` as it is and add `a` to `b` once per byte).
fn big_zeros_loose_object() -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let deflate = |data: &[u8], flush: FlushCompress| {
        let mut z = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        z.compress_vec(data, &mut out, flush).unwrap();
        assert_eq!(z.total_in() as usize, data.len());
        out
    };
    let header = format!("blob {BIG}\0").into_bytes();
    let mib = vec![0u8; 1 << 20];
    let mut out = vec![0x78, 0x9c];
    out.extend(deflate(&header, FlushCompress::Full));
    let zeros = deflate(&mib, FlushCompress::Full);
    for _ in 0..(BIG >> 20) {
        out.extend_from_slice(&zeros);
    }
    out.extend(deflate(&[], FlushCompress::Finish));
    const MOD: u64 = 65521;
    let (mut a, mut b) = (1u64, 0u64);
    for &byte in &header {
        a = (a + byte as u64) % MOD;
        b = (b + a) % MOD;
    }
    b = (b + (BIG % MOD) * a) % MOD;
    out.extend_from_slice(&(((b << 16) | a) as u32).to_be_bytes());
    out
}

/// A repository on `main` with one small file, and branch `big` adding `big.bin`, whose blob is
/// the 2 GiB of zeros, a loose object written as above (`damaged`: cut short after 8 KiB of
/// its zlib stream, ~8 MB of zeros).
fn repo(damaged: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    setup();
    let tmp = tempfile::Builder::new()
        .prefix("vt-co-big-")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("app");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("small.txt"), "small\n").unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "small"]);
    let mut object = big_zeros_loose_object();
    if damaged {
        object.truncate(8 << 10);
    }
    let dir = root.join(".git/objects").join(&BIG_ZEROS_ID[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    let mut f = std::fs::File::create(dir.join(&BIG_ZEROS_ID[2..])).unwrap();
    f.write_all(&object).unwrap();
    drop(f);
    // branch `big`: main's tree plus big.bin (git2 reads only the object's header here)
    let repo = git2::Repository::open(&root).unwrap();
    let main = repo.head().unwrap().peel_to_commit().unwrap();
    let mut tb = repo.treebuilder(Some(&main.tree().unwrap())).unwrap();
    let id = git2::Oid::from_str(BIG_ZEROS_ID).unwrap();
    tb.insert("big.bin", id, 0o100644).unwrap();
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.invalid").unwrap();
    let commit = repo
        .commit(None, &sig, &sig, "2 GiB of zeros", &tree, &[&main])
        .unwrap();
    repo.branch("big", &repo.find_commit(commit).unwrap(), false)
        .unwrap();
    (tmp, root)
}

/// The process's current address-space size (`VmSize`), in bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb << 10
}

/// Runs `f` with the address space limited to what the process uses now plus 1 GiB.
fn with_address_space_limit<T>(f: impl FnOnce() -> T) -> T {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/setrlimit on structs we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let limit = libc::rlimit {
            rlim_cur: vm_size() + (1 << 30),
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &limit), 0);
    }
    let out = f();
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) };
    out
}

fn add(root: &Path, name: &str) -> vibetrees_core::Result<git::AddedWorktree> {
    let parent = root.join(".worktrees");
    std::fs::create_dir_all(&parent).unwrap();
    git(root, &["branch", name, "big"]);
    block_on(git::add_worktree(root, &parent.join(name), name, 2))
}

#[test]
fn a_2_gib_blob_is_streamed_into_a_sparse_file_and_a_damaged_one_fails_cleanly() {
    // the runtime's threads exist before the limit (they are not what is measured)
    block_on(async {});

    // damaged: the checkout fails, naming the file; nothing is left
    let (_tmp, root) = repo(true);
    let err = with_address_space_limit(|| add(&root, "cut")).unwrap_err();
    assert_eq!(err.code(), "GIT", "{err}");
    assert!(err.to_string().contains("big.bin"), "{err}");
    assert!(!root.join(".worktrees/cut").exists());
    assert!(
        !git(&root, &["worktree", "list", "--porcelain"]).contains("cut"),
        "registration left behind"
    );

    // intact: checked out by ours, 2 GiB long, all zeros, nearly no disk
    let (_tmp, root) = repo(false);
    let added = with_address_space_limit(|| add(&root, "whole")).unwrap();
    assert_eq!(added.method, CheckoutMethod::Git2Parallel, "{added:?}");
    let wt = root.join(".worktrees/whole");
    let big = std::fs::File::open(wt.join("big.bin")).unwrap();
    let meta = big.metadata().unwrap();
    assert_eq!(meta.len(), BIG);
    assert!(
        meta.blocks() * 512 < 64 << 20,
        "{} bytes on disk for 2 GiB of zeros",
        meta.blocks() * 512
    );
    let mut bytes = [1u8; 4096];
    for at in [0, BIG / 2 - 7, BIG - 4096] {
        big.read_exact_at(&mut bytes, at).unwrap();
        assert!(bytes.iter().all(|&b| b == 0), "at {at}");
    }
    assert_eq!(
        std::fs::read_to_string(wt.join("small.txt")).unwrap(),
        "small\n"
    );
    // the index names the blob with the file's size (no content read: stat data only)
    let staged = git(&wt, &["ls-files", "-s", "--debug", "big.bin"]);
    assert!(staged.contains(BIG_ZEROS_ID), "{staged}");
    assert!(staged.contains(&format!("size: {BIG}")), "{staged}");
}
