//! The cache folder must be this user's and not writable by the group or others (whoever can
//! write there changes the files hardlinked into every restored worktree): else the cache
//! refuses it with `UNSAFE_PATH` and makes nothing in it. Real folders, real modes.

use std::os::unix::fs::PermissionsExt;
use vibetrees_core::cache::{CacheOptions, NodeModulesCache};

fn open(dir: &std::path::Path) -> vibetrees_core::Result<NodeModulesCache> {
    NodeModulesCache::open(CacheOptions {
        cache_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })
}

#[test]
fn a_cache_folder_others_can_write_or_another_user_owns_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (mode, who) in [
        (0o777, "its group and others"),
        (0o775, "its group"),
        (0o757, "others"),
    ] {
        let dir = tmp.path().join(format!("cache-{mode:o}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = open(&dir).expect_err("refused");
        assert_eq!(e.code(), "UNSAFE_PATH", "{e}");
        assert!(e.to_string().contains(&format!("writable by {who}")), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing made in it"
        );
    }
    // the entries folder inside is checked too
    let dir = tmp.path().join("cache-inner");
    std::fs::create_dir_all(dir.join("node_modules")).unwrap();
    std::fs::set_permissions(
        dir.join("node_modules"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    assert_eq!(open(&dir).unwrap_err().code(), "UNSAFE_PATH");

    // a new cache folder is made private even under a umask of 002
    let fresh = tmp.path().join("fresh/cache");
    // SAFETY: umask(2) only; this binary runs this one test.
    let old = unsafe { libc::umask(0o002) };
    let opened = open(&fresh);
    unsafe { libc::umask(old) };
    opened.unwrap();
    let mode = std::fs::metadata(fresh.join("node_modules"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o022, 0, "{mode:o}");
    open(&fresh).unwrap();

    // another user's folder (only root can make one)
    if rustix::process::geteuid().is_root() {
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let e = open(&theirs).expect_err("refused");
        assert_eq!(e.code(), "UNSAFE_PATH", "{e}");
        assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
    } else {
        eprintln!("not root: the other-owner case needs chown, skipped");
    }
}
