//! Damaged state of our own never blocks creations: a corrupt history database is moved aside
//! and started again; a damaged cache entry is evicted and filled again, not a miss for ever.
//! Real SQLite files, real cache entries, real installs (node).

mod worktree_support;

use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::history::History;
use vibetrees_core::worktree::{CreateOutcome, WorktreeManager, WorktreeOptions};
use worktree_support::*;

fn created(o: CreateOutcome) -> Box<vibetrees_core::worktree::CreatedWorktree> {
    match o {
        CreateOutcome::Created(w) => w,
        other => panic!("expected a new worktree, got {other:?}"),
    }
}

#[test]
fn a_corrupt_history_is_moved_aside_and_started_again_with_a_warning() {
    let p = project(None);
    p.warm_cache();
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&p.history, &garbage).unwrap();
    let (sink, events) = recorder();
    let m = WorktreeManager::new(WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .expect("a corrupt history does not stop the manager");
    let w = created(block_on(m.create_worktree_optimized("after-corruption", "main")).unwrap());
    block_on(m.wait_background());
    let msgs: Vec<String> = events
        .lock()
        .iter()
        .filter(|e| e.step == "history")
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].starts_with("⚠ history"), "{msgs:?}");
    assert!(msgs[0].contains("moved aside"), "{msgs:?}");
    // the damaged file is kept, byte for byte, beside the new one
    let dir = p.history.parent().unwrap();
    let aside: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("history.sqlite.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read(aside[0].path()).unwrap(), garbage);
    // the new history holds this creation
    let h = History::open(&p.history).unwrap();
    let recent = h.recent(5).unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].name, w.name);
}

#[test]
fn a_damaged_cache_entry_is_evicted_then_filled_again_by_the_next_install() {
    let pkg = r#"{
  "name": "boot",
  "version": "1.0.0",
  "scripts": { "bootstrap": "node -e \"const fs=require('fs');fs.mkdirSync('node_modules/made',{recursive:true});fs.writeFileSync('node_modules/made/index.js','ok')\"" }
}
"#;
    let p = project(Some(pkg));
    p.warm_cache();
    // damage the entry: its listing is garbage
    let entries = p.cache_dir.join("node_modules");
    let entry = std::fs::read_dir(&entries)
        .unwrap()
        .flatten()
        .find(|e| e.path().join("manifest.json").is_file())
        .expect("a cache entry")
        .path();
    std::fs::write(entry.join("listing.bin"), b"not a listing at all").unwrap();
    let (sink, events) = recorder();
    let m = WorktreeManager::new(WorktreeOptions {
        on_progress: Some(sink),
        ..p.options()
    })
    .unwrap();
    let w = created(block_on(m.create_worktree_optimized("damaged-one", "main")).unwrap());
    block_on(m.wait_background());
    assert_eq!(w.cache.outcome, "miss");
    assert!(
        events
            .lock()
            .iter()
            .any(|e| e.message.starts_with("⚠ cache entry unusable (evicted")),
        "{:?}",
        events.lock()
    );
    assert!(
        w.cache.populating,
        "the install's node_modules fills the cache"
    );
    // the next creation is a hit again, from the refilled entry
    let w2 = created(block_on(m.create_worktree_optimized("damaged-two", "main")).unwrap());
    assert_eq!(w2.cache.outcome, "hit");
    assert_eq!(
        std::fs::read_to_string(w2.path.join("node_modules/made/index.js")).unwrap(),
        "ok"
    );
}
