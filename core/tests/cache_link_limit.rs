//! EMLINK for real: when a cached file has reached ext4's 65,000-link limit, `auto` copies that
//! file instead of failing, and strict `hardlink` fails with a clear error and leaves nothing.

mod cache_support;

use cache_support::*;
use vibetrees_core::cache::{RestoreMethod, RestoreOptions};

#[test]
fn a_file_at_the_link_limit_is_copied_by_auto() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 3, 1, false);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(1);
    cache.populate(&key, &src).unwrap();
    let cached = cache.entry_path(&key).join("tree/pkg1/index.js");

    // Use up the cached file's links (the source and the cache hold two already).
    let links = t.path().join("links");
    std::fs::create_dir(&links).unwrap();
    let mut hit_limit = false;
    for i in 0..70_000 {
        match std::fs::hard_link(&cached, links.join(i.to_string())) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
                hit_limit = true;
                break;
            }
            Err(e) => panic!("link {i}: {e}"),
        }
    }
    if !hit_limit {
        std::fs::remove_dir_all(&links).unwrap();
        if skip("this filesystem allows more than 70,000 links per file") {
            return;
        }
    }

    let target = t.path().join("wt/node_modules");
    let s = cache
        .restore(&key, &target, &RestoreOptions::default())
        .unwrap();
    assert_eq!(s.method_used, "hardlink");
    // The file at the limit and .package-lock.json (never shared) are copied; the rest linked.
    assert_eq!(s.copied + s.cloned, 2, "{s:?}");
    assert_eq!(s.linked, s.files - 2);
    assert_same(&snapshot(&src), &snapshot(&target));

    let strict = t.path().join("wt2/node_modules");
    let e = cache
        .restore(
            &key,
            &strict,
            &RestoreOptions {
                method: RestoreMethod::Hardlink,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "IO");
    assert!(
        e.full_message().contains("pkg1/index.js"),
        "{}",
        e.full_message()
    );
    assert!(!strict.exists());
    std::fs::remove_dir_all(&links).unwrap();
}
