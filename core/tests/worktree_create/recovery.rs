//! What a killed or cut-short creation or deletion left behind, and how the next creation clears it without deleting anything it did not make.

use super::*;

#[test]
fn an_orphan_folder_is_moved_aside_never_deleted() {
    let p = project(None);
    let orphan = p.root.join(".worktrees/orphan");
    std::fs::create_dir_all(orphan.join("sub")).unwrap();
    std::fs::write(orphan.join("sub/precious.txt"), "mine").unwrap();
    let outside = p.root.join(".worktrees/neighbour.txt");
    std::fs::write(&outside, "untouched").unwrap();
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = created(block_on(m.create_worktree_optimized("orphan", "main")).unwrap());
    assert!(w.path.join(".git").is_file());
    let trash: Vec<_> = std::fs::read_dir(p.root.join(".worktrees/.trash"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(trash.len(), 1);
    assert!(
        trash[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("orphan-")
    );
    assert_eq!(
        std::fs::read_to_string(trash[0].join("sub/precious.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
}

#[test]
fn a_stale_registration_is_pruned_then_recreated() {
    let p = project(None);
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = created(block_on(m.create_worktree_optimized("stale", "main")).unwrap());
    std::fs::remove_dir_all(&w.path).unwrap();
    assert!(p.worktree_list().contains("prunable"));
    let again = created(block_on(m.create_worktree_optimized("stale", "main")).unwrap());
    assert!(!again.created_branch);
    assert!(!p.worktree_list().contains("prunable"));
    assert_eq!(git(&again.path, &["status", "--porcelain"]), "");
}

#[test]
fn a_deletion_cut_short_is_finished_by_the_next_creation_and_orphans_are_kept() {
    let p = project(None);
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let trash = p.root.join(".worktrees/.trash");
    let ours = vibetrees_core::platform::this_world_tag();
    let cut_short = trash.join(format!(".delete-old-removed-1-{ours}-{dead}"));
    let orphan = trash.join(format!("old-1-{ours}-{dead}"));
    // the same dead pid, written in another pid namespace (a container sharing the folder), and
    // in a name without a world (its world unknown): never taken as dead
    let other = vibetrees_core::platform::world_tag(&vibetrees_core::platform::ProcessWorld {
        pid_ns: Some("pid:[4026530000]".into()),
        ..vibetrees_core::platform::this_world()
    });
    let other_world = trash.join(format!(".delete-theirs-1-{other}-{dead}"));
    let untagged = trash.join(format!(".delete-older-1-{dead}"));
    let staging = p.root.join(".worktrees/.staging");
    let dead_staging = staging.join(format!("next-one.1-{ours}-{dead}"));
    let other_staging = staging.join(format!("next-one.1-{other}-{dead}"));
    for d in [
        &cut_short,
        &orphan,
        &other_world,
        &untagged,
        &dead_staging,
        &other_staging,
    ] {
        std::fs::create_dir_all(d.join("deep/er")).unwrap();
        std::fs::write(d.join("deep/er/file.txt"), "x").unwrap();
    }
    let m = WorktreeManager::new(p.options()).unwrap();
    block_on(async {
        m.create_worktree_optimized("next-one", "main")
            .await
            .unwrap();
        m.wait_background().await;
    });
    assert!(
        !cut_short.exists(),
        "the cut-short deletion was not finished"
    );
    assert!(!dead_staging.exists(), "a dead creation's staging stayed");
    for kept in [&orphan, &other_world, &untagged, &other_staging] {
        assert_eq!(
            std::fs::read_to_string(kept.join("deep/er/file.txt")).unwrap(),
            "x",
            "{} was deleted",
            kept.display()
        );
    }
}

#[test]
fn a_branch_lock_left_by_a_killed_creation_is_cleared() {
    let p = project(None);
    p.warm_cache();
    // what a creation killed inside libgit2's branch creation leaves behind
    std::fs::write(p.root.join(".git/refs/heads/stale.lock"), "").unwrap();
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = created(block_on(m.create_worktree_optimized("stale", "main")).unwrap());
    assert_eq!(w.branch, "stale");
    assert!(!p.root.join(".git/refs/heads/stale.lock").exists());
    assert_eq!(
        git(&w.path, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "stale"
    );
}

#[test]
fn a_registration_left_half_written_by_a_killed_libgit2_add_is_cleared() {
    let p = project(None);
    p.warm_cache();
    // what a creation killed inside git_worktree_add leaves: its folder, and a registration
    // with an empty lock, libgit2's absolute commondir and an empty gitdir
    let reg = p.root.join(".git/worktrees/half");
    std::fs::create_dir_all(&reg).unwrap();
    std::fs::write(reg.join("locked"), "").unwrap();
    std::fs::write(
        reg.join("commondir"),
        format!("{}/\n", p.root.join(".git").display()),
    )
    .unwrap();
    std::fs::write(reg.join("gitdir"), "").unwrap();
    // and our own marker of the registration it was writing
    std::fs::write(p.root.join(".git/vibetrees-registering"), "half\n").unwrap();
    std::fs::create_dir_all(p.root.join(".worktrees/half")).unwrap();
    let m = WorktreeManager::new(p.options()).unwrap();
    let w = created(block_on(m.create_worktree_optimized("half", "main")).unwrap());
    assert_eq!(git(&w.path, &["status", "--porcelain"]), "");
    // the worktree took its own name back; nothing half-written or locked is left
    let regs: Vec<String> = std::fs::read_dir(p.root.join(".git/worktrees"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(regs, vec!["half".to_string()]);
    assert!(reg.join("gitdir").metadata().unwrap().len() > 0);
    let list = p.worktree_list();
    assert!(
        !list.contains("locked") && !list.contains("prunable"),
        "{list}"
    );
    // the folder it left held nothing: removed, not kept in the trash as an orphan
    let trash: Vec<_> = std::fs::read_dir(p.root.join(".worktrees/.trash"))
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(trash.is_empty(), "{trash:?}");
}
