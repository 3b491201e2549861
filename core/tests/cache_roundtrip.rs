//! Populate and restore of generated trees by every method: the restored tree equals the source
//! (names, types, modes, contents, symlink targets); counts, progress, stats, replace, misses.

mod cache_support;

use cache_support::*;
use std::sync::{Arc, Mutex};
use vibetrees_core::cache::{PopulateOutcome, RestoreMethod, RestoreOptions};

#[test]
fn every_method_restores_an_equal_tree() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 40, 6, true);
    let source = snapshot(&src);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(1);
    let report = cache.populate(&key, &src).unwrap();
    assert_eq!(report.outcome, PopulateOutcome::Created);
    assert_eq!(report.special_skipped, 1, "the fifo is skipped and counted");
    let expected = without_special(&source);
    let files = expected
        .values()
        .filter(|v| matches!(v, Snap::File { .. }))
        .count() as u64;
    let links = expected
        .values()
        .filter(|v| matches!(v, Snap::Symlink { .. }))
        .count() as u64;
    let dirs = expected
        .values()
        .filter(|v| matches!(v, Snap::Dir { .. }))
        .count() as u64;
    // Files directly in node_modules (.package-lock.json) are rewritten in place by package
    // managers: they are copied, never hardlinked.
    let root_files = expected
        .iter()
        .filter(|(k, v)| k.components().count() == 1 && matches!(v, Snap::File { .. }))
        .count() as u64;
    assert_eq!(root_files, 1);
    assert_eq!(
        (report.files, report.symlinks, report.dirs),
        (files, links, dirs)
    );
    assert_eq!(
        (report.linked, report.copied + report.cloned),
        (files - root_files, root_files),
        "same filesystem: populated by hardlinks"
    );
    // The populate left the source untouched.
    assert_same(&source, &snapshot(&src));

    for (i, method) in [
        RestoreMethod::Auto,
        RestoreMethod::Hardlink,
        RestoreMethod::Copy,
        RestoreMethod::CloneOrCopy,
    ]
    .into_iter()
    .enumerate()
    {
        let target = t.path().join(format!("wt{i}/node_modules"));
        let stats = cache
            .restore(
                &key,
                &target,
                &RestoreOptions {
                    method,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_same(&expected, &snapshot(&target));
        assert_eq!(
            (stats.files, stats.symlinks, stats.dirs),
            (files, links, dirs)
        );
        assert_eq!(stats.linked + stats.cloned + stats.copied, files);
        match method {
            RestoreMethod::Auto => {
                assert_eq!(stats.method_used, "hardlink");
                assert_eq!(stats.linked, files - root_files, "root files are copied");
            }
            RestoreMethod::Hardlink => {
                assert_eq!(stats.method_used, "hardlink");
                assert_eq!(stats.linked, files, "hardlink asked: every file linked");
            }
            _ => assert_eq!(stats.linked, 0, "{method:?} never shares an inode"),
        }
        // Nothing but the target was left beside it.
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["node_modules"]);
    }
    let stats = cache.stats().unwrap();
    assert_eq!(stats.entries, 1);
    assert_eq!(stats.hits, 4);
    assert_eq!(stats.misses, 0);
    assert!(stats.bytes > 0 && stats.bytes <= stats.apparent_bytes);
}

#[test]
fn restore_replaces_an_existing_target_atomically_or_refuses_it() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 10, 3, false);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(2);
    cache.populate(&key, &src).unwrap();
    let target = t.path().join("wt/node_modules");
    std::fs::create_dir_all(target.join("old-package")).unwrap();
    std::fs::write(target.join("old-package/index.js"), "old").unwrap();

    let refused = cache
        .restore(
            &key,
            &target,
            &RestoreOptions {
                keep_existing: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(refused.code(), "ALREADY_EXISTS");
    assert!(
        target.join("old-package/index.js").exists(),
        "refused: nothing lost"
    );

    // not told to replace: refused too (issue 13), nothing lost
    let refused = cache
        .restore(&key, &target, &RestoreOptions::default())
        .unwrap_err();
    assert_eq!(refused.code(), "ALREADY_EXISTS");
    assert!(target.join("old-package/index.js").exists());

    let stats = cache
        .restore(
            &key,
            &target,
            &RestoreOptions {
                replace: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(stats.replaced_existing);
    assert_same(&snapshot(&src), &snapshot(&target));
    assert_eq!(
        std::fs::read_dir(t.path().join("wt")).unwrap().count(),
        1,
        "old tree deleted"
    );
}

#[test]
fn progress_is_bounded_monotonic_and_ends_at_the_total() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_sized_tree(&src, 3000);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(3);
    cache.populate(&key, &src).unwrap();
    let calls: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let c = calls.clone();
    let stats = cache
        .restore(
            &key,
            &t.path().join("wt/node_modules"),
            &RestoreOptions {
                progress: Some(Arc::new(move |done, total| {
                    c.lock().unwrap().push((done, total))
                })),
                ..Default::default()
            },
        )
        .unwrap();
    let calls = calls.lock().unwrap();
    let total = stats.files + stats.dirs + stats.symlinks;
    assert_eq!(*calls.last().unwrap(), (total, total));
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(calls.iter().all(|c| c.1 == total));
    // At most one call per 50 ms plus the last one.
    let max_calls = (stats.duration_ms / 50.0).ceil() as usize + 2;
    assert!(
        calls.len() <= max_calls,
        "{} calls in {} ms",
        calls.len(),
        stats.duration_ms
    );
}

#[test]
fn a_missing_entry_is_a_counted_miss_and_bad_targets_are_refused() {
    let t = tempdir();
    let cache = open_cache(&t.path().join("cache"));
    let e = cache
        .restore(
            &test_key(9),
            &t.path().join("wt/node_modules"),
            &RestoreOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    assert!(!t.path().join("wt/node_modules").exists());
    assert_eq!(cache.stats().unwrap().misses, 1);
    let e = cache
        .populate(&test_key(9), &t.path().join("nope"))
        .unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    assert!(cache.lookup(&test_key(9)).unwrap().is_none());
    let src = t.path().join("p/node_modules");
    gen_tree(&src, 2, 1, false);
    cache.populate(&test_key(9), &src).unwrap();
    let e = cache.restore(
        &test_key(9),
        std::path::Path::new("/"),
        &RestoreOptions::default(),
    );
    assert_eq!(e.unwrap_err().code(), "INVALID_ARGUMENT");
}

#[test]
fn tool_caches_in_node_modules_dot_cache_are_not_cached() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 4, 1, false);
    let expected = snapshot(&src);
    std::fs::create_dir_all(src.join(".cache/eslint")).unwrap();
    std::fs::write(src.join(".cache/eslint/.eslintcache"), "{}").unwrap();
    std::fs::create_dir_all(src.join("pkg1/.cache")).unwrap();
    std::fs::write(
        src.join("pkg1/.cache/kept"),
        "a package's own .cache is content",
    )
    .unwrap();
    let cache = open_cache(&t.path().join("cache"));
    cache.populate(&test_key(6), &src).unwrap();
    let target = t.path().join("wt/node_modules");
    cache
        .restore(&test_key(6), &target, &RestoreOptions::default())
        .unwrap();
    assert!(!target.join(".cache").exists());
    assert!(target.join("pkg1/.cache/kept").exists());
    std::fs::remove_dir_all(target.join("pkg1/.cache")).unwrap();
    assert_same(&expected, &snapshot(&target));
}

#[test]
fn a_second_populate_of_a_key_changes_nothing() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 5, 2, false);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(4);
    assert_eq!(
        cache.populate(&key, &src).unwrap().outcome,
        PopulateOutcome::Created
    );
    let before = cache.lookup(&key).unwrap().unwrap();
    assert_eq!(
        cache.populate(&key, &src).unwrap().outcome,
        PopulateOutcome::AlreadyPresent
    );
    assert_eq!(
        cache.lookup(&key).unwrap().unwrap().manifest,
        before.manifest
    );
    let names: Vec<_> = std::fs::read_dir(t.path().join("cache/node_modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [key.to_string()]);
}

#[test]
fn background_populate_and_profiler_spans_for_every_phase() {
    let t = tempdir();
    let src = t.path().join("project/node_modules");
    gen_tree(&src, 6, 2, false);
    let profiler = Arc::new(vibetrees_core::profiler::Profiler::new());
    let cache = Arc::new(
        vibetrees_core::cache::NodeModulesCache::open(vibetrees_core::cache::CacheOptions {
            cache_dir: Some(t.path().join("cache")),
            profiler: Some(profiler.clone()),
            ..Default::default()
        })
        .unwrap(),
    );
    let key = test_key(5);
    let handle = cache.populate_in_background(key.clone(), src.clone(), Default::default());
    let report = handle.join().unwrap().unwrap();
    assert_eq!(report.outcome, PopulateOutcome::Created);
    let parent = profiler.start("create-worktree-total", None).unwrap();
    let stats = cache
        .restore(
            &key,
            &t.path().join("wt/node_modules"),
            &RestoreOptions {
                parent_span: Some(parent.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    let tree = profiler.end(&parent).unwrap();
    let names: Vec<_> = stats.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cache-restore-open",
            "cache-restore-plan",
            "cache-restore-place",
            "cache-restore-commit"
        ]
    );
    for name in names
        .iter()
        .chain(&["cache-restore", "cache-populate", "cache-populate-copy"])
    {
        assert!(profiler.get_stats(name).is_some(), "no span {name}");
    }
    assert_eq!(
        tree.children.len(),
        1,
        "the restore nests under the caller's span"
    );
    assert_eq!(tree.children[0].name, "cache-restore");
}
