//! The shared-inode hazard and eviction: a file changed in place through a hardlink is found by
//! `verify`, never served by a restore (the entry is evicted, and the error says so); eviction
//! by budget and last use never removes an entry that is being restored.

mod cache_support;

use cache_support::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use vibetrees_core::cache::RestoreOptions;

#[test]
fn a_write_through_a_hardlink_is_found_and_never_served() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 12, 3, false);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(1);
    cache.populate(&key, &src).unwrap();
    let wt = t.path().join("wt1/node_modules");
    cache
        .restore(&key, &wt, &RestoreOptions::default())
        .unwrap();
    assert!(cache.verify(false).unwrap().bad.is_empty());

    // A tool in the worktree appends to a file in place: the cache's inode changes too.
    let victim = wt.join("pkg1/index.js");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&victim)
        .unwrap();
    f.write_all(b"// patched in place\n").unwrap();
    drop(f);

    let report = cache.verify(false).unwrap();
    assert_eq!(report.bad.len(), 1);
    assert_eq!(report.bad[0].problem_count, 1);
    assert!(
        report.bad[0].problems[0].starts_with("pkg1/index.js: size"),
        "{:?}",
        report.bad
    );
    assert!(!report.bad[0].evicted);

    // A restore refuses to serve it, evicts it and says so; the target is not created.
    let wt2 = t.path().join("wt2/node_modules");
    let err = cache
        .restore(&key, &wt2, &RestoreOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), "CACHE");
    let msg = err.to_string();
    assert!(
        msg.contains("pkg1/index.js") && msg.contains("evicted"),
        "{msg}"
    );
    assert!(!wt2.exists());
    assert!(
        std::fs::read_dir(t.path().join("wt2"))
            .unwrap()
            .next()
            .is_none(),
        "no temp left"
    );
    assert!(cache.lookup(&key).unwrap().is_none(), "evicted");
    // Repopulating from a clean source works again.
    let clean = t.path().join("clean/node_modules");
    gen_tree(&clean, 12, 3, false);
    cache.populate(&key, &clean).unwrap();
    cache
        .restore(&key, &wt2, &RestoreOptions::default())
        .unwrap();
    assert_same(&snapshot(&clean), &snapshot(&wt2));
}

#[test]
fn a_chmod_through_a_hardlink_is_found_and_verify_can_evict() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 6, 2, false);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(2);
    cache.populate(&key, &src).unwrap();
    let wt = t.path().join("wt/node_modules");
    cache
        .restore(&key, &wt, &RestoreOptions::default())
        .unwrap();
    std::fs::set_permissions(
        wt.join("pkg1/index.js"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let report = cache.verify(true).unwrap();
    assert_eq!(report.bad.len(), 1);
    assert!(
        report.bad[0].problems[0].contains("mode 644 -> 755"),
        "{:?}",
        report.bad
    );
    assert!(report.bad[0].evicted);
    assert!(!cache.contains(&key));
}

#[test]
fn copies_share_no_inode_with_the_cache() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 6, 2, false);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(3);
    cache.populate(&key, &src).unwrap();
    let wt = t.path().join("wt/node_modules");
    let stats = cache
        .restore(
            &key,
            &wt,
            &RestoreOptions {
                method: vibetrees_core::cache::RestoreMethod::CloneOrCopy,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stats.linked, 0);
    std::fs::write(wt.join("pkg1/index.js"), "changed").unwrap();
    assert!(cache.verify(false).unwrap().bad.is_empty());
}

#[test]
fn prune_evicts_least_recently_used_first_and_never_a_busy_entry() {
    let t = tempdir();
    let cache = open_cache(&t.path().join("cache"));
    let mut sizes = Vec::new();
    for n in 1..=3u8 {
        // Copies, so the entries share no inode with each other.
        let src = t.path().join(format!("p{n}/node_modules"));
        gen_tree(&src, 5, 2, false);
        cache.populate(&test_key(n), &src).unwrap();
        std::fs::remove_dir_all(&src).unwrap();
        sizes.push(cache.lookup(&test_key(n)).unwrap().unwrap().manifest.bytes);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Use entry 1 now: entry 2 becomes the least recently used.
    cache
        .restore(
            &test_key(1),
            &t.path().join("wt/node_modules"),
            &RestoreOptions::default(),
        )
        .unwrap();
    let total: u64 = sizes.iter().sum();
    let report = cache.prune(total - 1).unwrap();
    assert_eq!(report.evicted, [test_key(2)]);
    assert!(cache.contains(&test_key(1)) && cache.contains(&test_key(3)));

    // Hold entry 3 the way a restore does (shared lock): prune to zero must skip it.
    let lock = std::fs::File::open(cache.entry_path(&test_key(3)).join("lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockShared).unwrap();
    let report = cache.prune(0).unwrap();
    assert!(report.evicted.contains(&test_key(1)));
    assert_eq!(report.busy, [test_key(3)]);
    assert!(cache.contains(&test_key(3)));
    drop(lock);
    let report = cache.clear().unwrap();
    assert_eq!(report.evicted, [test_key(3)]);
    assert_eq!(cache.stats().unwrap().entries, 0);
}
