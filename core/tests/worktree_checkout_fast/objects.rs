//! Where the objects come from: loose, packed and mixed objects check out the same files, and a
//! damaged loose object is a clean error naming the file.

use super::*;

/// Every file under `dir` with its content (symlinks as their target), for comparing checkouts.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = walk(dir);
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let p = dir.join(&n);
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                Some((n, t.to_string_lossy().into_owned().into_bytes()))
            } else if m.is_file() {
                Some((n, std::fs::read(&p).unwrap()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn loose_packed_and_mixed_objects_check_out_the_same_files() {
    use vibetrees_core::worktree::checkout::checkout_tree;
    let (tmp, root) = repo();
    let checkout = |name: &str, rev: &str| {
        let repo = git::open(&root).unwrap();
        let tree = repo
            .revparse_single(&format!("{rev}^{{tree}}"))
            .unwrap()
            .id();
        let dest = tmp.path().join(name);
        std::fs::create_dir(&dest).unwrap();
        checkout_tree(repo.commondir(), tree, &dest, 2).unwrap_or_else(|e| panic!("{e:?}"));
        contents(&dest)
    };
    // all loose (read by our own reader)
    let loose = checkout("loose", "main");
    assert_eq!(
        loose.iter().find(|(n, _)| n == "bin/run.sh").unwrap().1,
        b"#!/bin/sh\necho run\n"
    );
    assert_eq!(
        loose.iter().find(|(n, _)| n == "bin/link").unwrap().1,
        b"../empty.txt"
    );
    // all packed (read through git2)
    git(&root, &["repack", "-adq"]);
    git(&root, &["prune-packed"]);
    let objects = root.join(".git/objects");
    let loose_dirs = std::fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
        .count();
    assert_eq!(loose_dirs, 0, "every object is packed now");
    assert_eq!(checkout("packed", "main"), loose);
    // packed history plus a loose commit on top
    write(&root.join("src/d1/new.js"), b"export const fresh = 1;\n");
    write(&root.join("big.bin"), &vec![9u8; 3 << 20]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "on top"]);
    let mixed = checkout("mixed", "main");
    assert_eq!(
        mixed.iter().find(|(n, _)| n == "src/d1/new.js").unwrap().1,
        b"export const fresh = 1;\n"
    );
    assert_eq!(
        mixed.iter().find(|(n, _)| n == "big.bin").unwrap().1,
        vec![9u8; 3 << 20]
    );
    // and every file equals what the git CLI checks out
    let cli = tmp.path().join("cli");
    git(
        &root,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            &cli.to_string_lossy(),
            "main",
        ],
    );
    let mut from_cli = contents(&cli);
    from_cli.retain(|(n, _)| n != ".git");
    assert_eq!(mixed, from_cli);
}

#[test]
fn a_damaged_loose_object_is_a_clean_error_naming_the_file() {
    use vibetrees_core::worktree::checkout::{CheckoutError, checkout_tree};
    let (tmp, root) = repo();
    let id = git(&root, &["rev-parse", "main:bin/run.sh"]);
    let id = id.trim();
    let p = root.join(".git/objects").join(&id[..2]).join(&id[2..]);
    let mut perm = std::fs::metadata(&p).unwrap().permissions();
    perm.set_mode(0o644);
    std::fs::set_permissions(&p, perm).unwrap();
    std::fs::write(&p, b"this is not a zlib stream").unwrap();
    let repo = git::open(&root).unwrap();
    let tree = repo.revparse_single("main^{tree}").unwrap().id();
    let dest = tmp.path().join("damaged");
    std::fs::create_dir(&dest).unwrap();
    match checkout_tree(repo.commondir(), tree, &dest, 2) {
        Err(CheckoutError::Failed(e)) => {
            assert_eq!(e.code(), "GIT");
            assert!(e.to_string().contains("bin/run.sh"), "{e}");
        }
        other => panic!("expected a git error, got {other:?}"),
    }
}
