//! Creations across processes: a creation killed with SIGKILL half-way then retried, and two
//! `vibetrees create` processes at once never sharing a port.

mod worktree_support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vibetrees_core::runtime::block_on;
use vibetrees_core::worktree::{CreateOutcome, WorktreeManager};
use worktree_support::*;

const SLOW_BOOTSTRAP: &str = r#"{
  "name": "slow",
  "version": "1.0.0",
  "scripts": { "bootstrap": "node -e \"const fs=require('fs');fs.mkdirSync('node_modules/made',{recursive:true});fs.writeFileSync('node_modules/made/bootstrap.pid',String(process.pid));console.log('bootstrap started');if(process.env.VT_SLOW)setTimeout(()=>{},120000)\"" }
}
"#;

/// True if `pid` runs (a zombie waiting for its reaper counts as ended).
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Runs `vibetrees create <name>` on `p` with a bootstrap that hangs, waits for the bootstrap's
/// own output, then SIGKILLs the CLI alone, as in a crash. Returns the CLI's process group and
/// the pid of the bootstrap script, which outlives it.
fn kill_during_install(p: &Project, home: &std::path::Path, name: &str) -> (i32, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
        .args([
            "create",
            name,
            "--from",
            "main",
            "--runtime",
            "none",
            "--repo",
        ])
        .arg(&p.root)
        .env("HOME", home)
        .env("VT_SLOW", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    // wait until the install is running: git is done, the creation is not
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("the CLI ended before the install")
            .unwrap();
        seen.push(line.clone());
        // the script's own output (npm first echoes the command line, which holds the words too)
        if line.trim_end().ends_with("] bootstrap started") {
            break;
        }
        assert!(Instant::now() < deadline, "no install progress: {seen:?}");
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    let slug = vibetrees_core::worktree::slug::slugify(name);
    let pid_file = p
        .root
        .join(".worktrees")
        .join(slug)
        .join("node_modules/made/bootstrap.pid");
    let script_pid = std::fs::read_to_string(pid_file)
        .unwrap_or_else(|e| panic!("the bootstrap wrote its pid: {e}: {seen:?}"))
        .trim()
        .parse()
        .unwrap();
    (pgid, script_pid)
}

fn node_or_skip() -> bool {
    if Command::new("node").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "node is required in CI"
    );
    eprintln!("SKIP: node is not installed");
    false
}

#[test]
fn a_creation_killed_half_way_then_retried_succeeds_and_leaves_no_debris() {
    let home = setup();
    let p = project(Some(SLOW_BOOTSTRAP));
    if !node_or_skip() {
        return;
    }
    let (pgid, script_pid) = kill_during_install(&p, home, "Killed Midway");
    let path = p.root.join(".worktrees/killed-midway");
    let m = WorktreeManager::new(p.options()).unwrap();
    let out = block_on(async {
        let r = m.create_worktree_optimized("Killed Midway", "main").await;
        m.wait_background().await;
        r
    })
    .unwrap();
    let CreateOutcome::Created(w) = out else {
        panic!("a half-made worktree must not count as existing")
    };
    assert_eq!(w.name, "killed-midway");
    let list = p.worktree_list();
    let entries = list
        .lines()
        .filter(|l| l.starts_with("worktree ") && l.ends_with("/killed-midway"))
        .count();
    assert_eq!(entries, 1, "{list}");
    assert!(!list.contains("locked"), "{list}");
    assert!(!list.contains("prunable"), "{list}");
    assert_eq!(git(&path, &["status", "--porcelain"]), "");
    assert!(path.join("node_modules/made").is_dir());
    // no debris: no staging, no unfinished folder left in the trash
    for dir in [".worktrees/.staging", ".worktrees/.trash"] {
        let d = p.root.join(dir);
        let left: Vec<_> = std::fs::read_dir(&d)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "debris in {dir}: {left:?}");
    }
    // the retry stopped it before moving the unfinished folder aside: nothing writes there now
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_alive(script_pid) {
        assert!(
            Instant::now() < deadline,
            "the killed creation's install script (pid {script_pid}) is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

#[test]
fn two_processes_creating_at_once_never_share_a_port() {
    let home = setup();
    let p = project(None);
    let spawn = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_vibetrees"))
            .args([
                "create",
                name,
                "--from",
                "main",
                "--runtime",
                "none",
                "--json",
                "--repo",
            ])
            .arg(&p.root)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = ["left", "right", "middle"]
        .iter()
        .map(|n| spawn(n))
        .collect();
    let mut all_ports = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["success"], true);
        for (_, port) in v["worktree"]["ports"].as_object().unwrap() {
            all_ports.push(port.as_u64().unwrap());
        }
    }
    assert_eq!(all_ports.len(), 3 * 7);
    let mut dedup = all_ports.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        all_ports.len(),
        "a port was handed out twice: {all_ports:?}"
    );
    let list = p.worktree_list();
    for n in ["left", "right", "middle"] {
        assert!(list.contains(&format!("branch refs/heads/{n}")), "{list}");
    }
}

#[test]
fn killed_at_any_point_then_retried_leaves_a_clean_worktree() {
    let home = setup();
    let p = project(None);
    p.warm_cache();
    for (i, delay_ms) in [0u64, 3, 5, 8, 12, 20, 40, 120, 300]
        .into_iter()
        .enumerate()
    {
        let name = format!("kill-{i}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_vibetrees"))
            .args([
                "create",
                &name,
                "--from",
                "main",
                "--runtime",
                "none",
                "--cache-dir",
            ])
            .arg(&p.cache_dir)
            .arg("--repo")
            .arg(&p.root)
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        // a git child may outlive its parent for a moment: let it finish
        std::thread::sleep(Duration::from_millis(300));

        let m = WorktreeManager::new(p.options()).unwrap();
        let out = block_on(async {
            let r = m.create_worktree_optimized(&name, "main").await;
            m.wait_background().await;
            r
        })
        .unwrap_or_else(|e| panic!("retry after a kill at {delay_ms} ms failed: {e}"));
        let path = p.root.join(".worktrees").join(&name);
        assert_eq!(out.name(), name);
        assert_eq!(
            git(&path, &["status", "--porcelain"]),
            "",
            "kill at {delay_ms} ms"
        );
        let list = p.worktree_list();
        assert!(
            !list.contains("locked") && !list.contains("prunable"),
            "{list}"
        );
        assert_eq!(
            tree(&path.join("node_modules")),
            tree(&p.root.join("node_modules")),
            "kill at {delay_ms} ms"
        );
        {
            let dir = ".worktrees/.staging";
            let left: Vec<_> = std::fs::read_dir(p.root.join(dir))
                .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(
                left.is_empty(),
                "debris in {dir} after a kill at {delay_ms} ms: {left:?}"
            );
        }
        let trash: Vec<_> = std::fs::read_dir(p.root.join(".worktrees/.trash"))
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        let why: Vec<String> = trash
            .iter()
            .map(|t| {
                let f = p.root.join(".worktrees/.trash").join(t).join("trash.json");
                std::fs::read_to_string(f).unwrap_or_default()
            })
            .collect();
        assert!(
            trash.is_empty(),
            "debris in the trash after a kill at {delay_ms} ms: {trash:?} {why:?}"
        );
    }
}

#[test]
fn warm_stops_the_installs_of_creations_that_died_and_nothing_else() {
    let home = setup();
    let p = project(Some(SLOW_BOOTSTRAP));
    if !node_or_skip() {
        return;
    }
    let (pgid, script_pid) = kill_during_install(&p, home, "died");
    let path = p.root.join(".worktrees/died");
    assert!(process_alive(script_pid), "the script outlived its creator");
    // a process marked for a worktree whose creation did not die: left alone
    let mut bystander = Command::new("sleep")
        .arg("60")
        .env(
            vibetrees_core::worktree::install::INSTALL_MARK,
            p.root.join(".worktrees/other"),
        )
        .spawn()
        .unwrap();

    let m = WorktreeManager::new(p.options()).unwrap();
    block_on(async {
        m.warm().await.unwrap();
        m.wait_background().await;
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while process_alive(script_pid) {
        assert!(
            Instant::now() < deadline,
            "the dead creation's install script (pid {script_pid}) is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "a process of no dead creation was killed"
    );
    // the folder and its registration stay for a retry or a removal to clear
    assert!(path.join("node_modules/made").is_dir());
    let listed = block_on(m.list_worktrees()).unwrap();
    let died = listed.iter().find(|w| w.name == "died").unwrap();
    assert!(died.half_made, "{died:?}");
    let _ = bystander.kill();
    let _ = bystander.wait();
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}
