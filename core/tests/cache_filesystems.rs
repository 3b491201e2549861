//! Across filesystems for real: a cache on /dev/shm (tmpfs) and targets on the work tree (ext4)
//! give a real EXDEV; a loop-mounted XFS with reflink=1 gives real clones.

mod cache_support;
mod xfs_support;

use cache_support::*;
use std::path::Path;
use vibetrees_core::cache::{RestoreMethod, RestoreOptions};
use xfs_support::XfsMount;

fn dev(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().dev()
}

fn opts(method: RestoreMethod) -> RestoreOptions {
    RestoreOptions {
        method,
        ..Default::default()
    }
}

#[test]
fn tmpfs_cache_and_ext4_target_fall_back_to_copy_per_probe() {
    let t = tempdir();
    let shm = Path::new("/dev/shm");
    if (!shm.is_dir() || dev(shm) == dev(t.path()))
        && skip("/dev/shm is missing or on the same filesystem as the work tree")
    {
        return;
    }
    let shm_dir = tempfile::Builder::new()
        .prefix("vt-cache-test-")
        .tempdir_in(shm)
        .unwrap();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 15, 3, false);
    let expected = snapshot(&src);
    let cache = open_cache(shm_dir.path());
    let key = test_key(1);

    // ext4 -> tmpfs: populate copies.
    let p = cache.populate(&key, &src).unwrap();
    assert_eq!((p.linked, p.copied), (0, p.files));

    // tmpfs -> ext4: auto probes, finds EXDEV and no reflink, and copies every file.
    let target = t.path().join("wt1/node_modules");
    let s = cache
        .restore(&key, &target, &opts(RestoreMethod::Auto))
        .unwrap();
    assert_eq!(s.method_used, "copy");
    assert_eq!((s.linked, s.cloned, s.copied), (0, 0, s.files));
    assert_same(&expected, &snapshot(&target));

    // Strict hardlink and clone fail cleanly: no target, no temporary sibling.
    for m in [RestoreMethod::Hardlink, RestoreMethod::Clone] {
        let target = t.path().join(format!("wt-{}/node_modules", m.as_str()));
        let e = cache.restore(&key, &target, &opts(m)).unwrap_err();
        assert_eq!(e.code(), "IO", "{m:?}: {e}");
        if m == RestoreMethod::Hardlink {
            assert!(
                e.full_message().contains("cross-device"),
                "{}",
                e.full_message()
            );
        }
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(target.parent().unwrap()).unwrap().count(),
            0
        );
    }

    // clone-or-copy copies here too.
    let target = t.path().join("wt2/node_modules");
    let s = cache
        .restore(&key, &target, &opts(RestoreMethod::CloneOrCopy))
        .unwrap();
    assert_eq!(s.copied, s.files);
    assert_same(&expected, &snapshot(&target));

    // ext4 cache -> tmpfs target.
    let cache2 = open_cache(&t.path().join("cache"));
    cache2.populate(&key, &src).unwrap();
    let target = shm_dir.path().join("wt/node_modules");
    let s = cache2
        .restore(&key, &target, &opts(RestoreMethod::Auto))
        .unwrap();
    assert_eq!((s.method_used.as_str(), s.copied), ("copy", s.files));
    assert_same(&expected, &snapshot(&target));
}

#[test]
fn xfs_with_reflink_clones_for_real() {
    let xfs = match XfsMount::new() {
        Ok(m) => m,
        Err(why) => {
            if skip(&format!("no loop-mounted XFS: {why}")) {
                return;
            }
            unreachable!()
        }
    };
    let src = xfs.dir.join("project/node_modules");
    gen_tree(&src, 15, 3, false);
    let expected = snapshot(&src);
    let cache = open_cache(&xfs.dir.join("cache"));
    let key = test_key(1);
    let p = cache.populate(&key, &src).unwrap();
    // Same XFS: populate hardlinks, except the one file directly in node_modules
    // (.package-lock.json), which package managers rewrite in place and so is never shared.
    assert_eq!((p.linked, p.cloned), (p.files - 1, 1), "{p:?}");

    let target = xfs.dir.join("wt-auto/node_modules");
    let s = cache
        .restore(&key, &target, &opts(RestoreMethod::Auto))
        .unwrap();
    assert_eq!(
        (s.method_used.as_str(), s.linked, s.cloned),
        ("hardlink", s.files - 1, 1)
    );
    assert_same(&expected, &snapshot(&target));

    for m in [RestoreMethod::Clone, RestoreMethod::CloneOrCopy] {
        let target = xfs.dir.join(format!("wt-{}/node_modules", m.as_str()));
        let s = cache.restore(&key, &target, &opts(m)).unwrap();
        assert_eq!(
            (s.method_used.as_str(), s.cloned),
            ("clone", s.files),
            "{m:?}"
        );
        assert_same(&expected, &snapshot(&target));
        // A clone shares blocks, not the inode: writing it leaves the cache sound.
        std::fs::write(target.join("pkg1/index.js"), "changed").unwrap();
        assert!(cache.verify(false).unwrap().bad.is_empty());
    }

    // XFS cache -> ext4 target: no link, no clone across filesystems: copy.
    let t = tempdir();
    let target = t.path().join("wt/node_modules");
    let s = cache
        .restore(&key, &target, &opts(RestoreMethod::Auto))
        .unwrap();
    assert_eq!((s.method_used.as_str(), s.copied), ("copy", s.files));
    assert_same(&expected, &snapshot(&target));
    drop(cache);
}
