//! Cancelling a creation (`create_worktree_cancellable`): real creations on real repositories,
//! really cancelled mid-way; afterwards nothing of them is left: no folder, no registration, no
//! branch they made, no ports, no staging folder.

mod worktree_support;

use std::sync::Arc;
use vibetrees_core::progress::{ProgressEvent, ProgressSink};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CancellationToken, CreateOutcome, WorktreeManager};
use worktree_support::*;

/// A progress sink that cancels `token` at the first event of `step` (whose message is
/// `message`, if given).
fn cancel_at(
    step: &'static str,
    message: Option<&'static str>,
    token: &CancellationToken,
) -> ProgressSink {
    let token = token.clone();
    Arc::new(move |e: &ProgressEvent| {
        if e.step == step && message.is_none_or(|m| e.message == m) {
            token.cancel();
        }
    })
}

/// Creates `name` with a manager whose progress sink cancels `cancel` as `cancel_at` says, and
/// waits for its background work; returns the creation's error.
fn cancelled_creation(
    p: &Project,
    name: &str,
    sink: ProgressSink,
    cancel: &CancellationToken,
) -> vibetrees_core::Error {
    let m = WorktreeManager::new(p.options().with_progress(sink)).unwrap();
    block_on(async {
        let r = m
            .create_worktree_cancellable(name, "main", cancel.clone())
            .await;
        m.wait_background().await;
        r
    })
    .unwrap_err()
}

fn assert_nothing_left(p: &Project, name: &str, branches_before: &[String]) {
    let wt = p.root.join(".worktrees").join(name);
    assert!(!wt.exists(), "{} is still there", wt.display());
    let list = p.worktree_list();
    assert!(
        !list.contains(&format!("/{name}\n")),
        "registration left:\n{list}"
    );
    assert_eq!(p.branches(), branches_before, "branches changed");
    let staging = p.root.join(".worktrees/.staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging left: {left:?}");
    let ports = std::fs::read_to_string(p.ports_json()).unwrap_or_default();
    assert!(
        !ports.contains(&format!("\"{name}:")),
        "ports not released: {ports}"
    );
}

#[test]
fn a_creation_cancelled_after_its_ports_are_allocated_is_undone() {
    let p = project(None);
    p.warm_cache();
    let before = p.branches();
    let cancel = CancellationToken::new();
    let sink = cancel_at("ports", None, &cancel);
    let err = cancelled_creation(&p, "stopped", sink, &cancel);
    assert!(cancel.is_cancelled());
    assert_eq!(err.code(), "CANCELLED", "{err}");
    assert!(err.to_string().contains("stopped"), "{err}");
    assert_nothing_left(&p, "stopped", &before);
    // the name is free again
    let m = WorktreeManager::new(p.options()).unwrap();
    let out = block_on(m.create_worktree_optimized("stopped", "main")).unwrap();
    assert!(matches!(out, CreateOutcome::Created(_)));
    block_on(m.wait_background());
}

#[test]
fn a_cancelled_install_is_stopped_and_undone() {
    // no cache: the install runs (a script that would take a minute), and is cancelled
    let p = project(Some(
        r#"{ "name": "app", "version": "1.0.0",
             "scripts": { "bootstrap": "node -e \"console.log('installing'); setTimeout(() => {}, 60000)\"" } }"#,
    ));
    let before = p.branches();
    let cancel = CancellationToken::new();
    let started = std::time::Instant::now();
    let sink = cancel_at("bootstrap", Some("installing"), &cancel);
    let err = cancelled_creation(&p, "long-install", sink, &cancel);
    assert_eq!(err.code(), "CANCELLED", "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the install was not stopped"
    );
    assert_nothing_left(&p, "long-install", &before);
}

#[test]
fn an_existing_branch_survives_the_undo_and_a_cancel_before_the_start_touches_nothing() {
    let p = project(None);
    p.warm_cache();
    git(&p.root, &["branch", "kept", "main"]);
    let before = p.branches();
    let cancel = CancellationToken::new();
    let sink = cancel_at("ports", None, &cancel);
    let err = cancelled_creation(&p, "kept", sink, &cancel);
    assert_eq!(err.code(), "CANCELLED");
    assert_nothing_left(&p, "kept", &before);

    let m = WorktreeManager::new(p.options()).unwrap();
    let already = CancellationToken::new();
    already.cancel();
    let err = block_on(m.create_worktree_cancellable("never", "main", already)).unwrap_err();
    assert_eq!(err.code(), "CANCELLED");
    assert_nothing_left(&p, "never", &before);
}
