//! Ports registry: format, persistence, allocation rules, release, the proper-lockfile interop with
//! the real npm package under real node, and two OS processes allocating at once.

mod ports_support;

use ports_support::free_base;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use vibetrees_core::services::ports::{
    PortRegistry, ServicePort, default_service_ports, is_port_in_use,
};
use vibetrees_core::services::proper_lock::{FileLock, LockOptions};

fn svc(name: &str, base: u16) -> ServicePort {
    ServicePort {
        name: name.into(),
        env_var: vibetrees_core::services::ports::env_var_for(name),
        base_port: base,
    }
}

#[test]
fn registry_path_format_and_persistence() {
    let home = tempfile::tempdir().unwrap();
    let reg = PortRegistry::for_project_in(home.path(), Path::new("/srv/acme/shop"))
        .with_listening_check(false);
    assert_eq!(
        reg.path(),
        home.path().join(".vibetrees/acme-shop/ports.json")
    );
    let ports = reg.allocate("feat-a", &default_service_ports()).unwrap();
    assert_eq!(
        ports.to_map().into_iter().collect::<Vec<_>>(),
        vec![
            ("postgres".into(), 5432),
            ("api".into(), 3000),
            ("console".into(), 5173),
            ("temporal".into(), 7233),
            ("temporal-ui".into(), 8233),
            ("minio".into(), 9000),
            ("minio-console".into(), 9001),
        ]
    );
    assert!(ports.0.iter().all(|p| !p.existing));
    let text = std::fs::read_to_string(reg.path()).unwrap();
    assert_eq!(
        text,
        "{\n  \"feat-a:postgres\": 5432,\n  \"feat-a:api\": 3000,\n  \"feat-a:console\": 5173,\n  \"feat-a:temporal\": 7233,\n  \"feat-a:temporal-ui\": 8233,\n  \"feat-a:minio\": 9000,\n  \"feat-a:minio-console\": 9001\n}"
    );

    // A second worktree goes up from each base past the first one's ports.
    let b = reg
        .allocate("feat-b", &[svc("postgres", 5432), svc("api", 3000)])
        .unwrap();
    assert_eq!(b.get("postgres"), Some(5433));
    assert_eq!(b.get("api"), Some(3001));
    assert_eq!(
        b.env_pairs(),
        vec![("POSTGRES_PORT".into(), 5433), ("API_PORT".into(), 3001)]
    );

    // A fresh registry object reads the same file: existing keys keep their ports.
    let again = PortRegistry::for_project_in(home.path(), Path::new("/srv/acme/shop"))
        .with_listening_check(false)
        .allocate("feat-a", &[svc("api", 3000), svc("redis", 6379)])
        .unwrap();
    assert_eq!(again.get("api"), Some(3000));
    assert!(again.0[0].existing);
    assert_eq!(again.get("redis"), Some(6379));
    assert!(!again.0[1].existing);
    // New keys are appended; the existing order is kept.
    let keys: Vec<String> = reg.load().unwrap().keys().cloned().collect();
    assert_eq!(keys.last().unwrap(), "feat-a:redis");
    assert_eq!(keys[0], "feat-a:postgres");
    assert_eq!(keys[7], "feat-b:postgres");
    assert!(!reg.path().with_extension("json.lock").exists());
}

#[test]
fn release_removes_only_that_worktree_and_frees_its_ports() {
    let home = tempfile::tempdir().unwrap();
    let reg =
        PortRegistry::for_project_in(home.path(), Path::new("/p/q")).with_listening_check(false);
    reg.allocate("a", &[svc("api", 3000), svc("web", 3000)])
        .unwrap();
    reg.allocate("ab", &[svc("api", 3000)]).unwrap();
    assert_eq!(reg.worktree_ports("ab").unwrap().get("api"), Some(&3002));
    let mut removed = reg.release("a").unwrap();
    removed.sort();
    assert_eq!(removed, vec![("api".into(), 3000), ("web".into(), 3001)]);
    // "ab" shares the prefix "a" but not "a:": kept.
    assert_eq!(reg.worktree_ports("ab").unwrap().get("api"), Some(&3002));
    assert!(reg.worktree_ports("a").unwrap().is_empty());
    let c = reg.allocate("c", &[svc("api", 3000)]).unwrap();
    assert_eq!(
        c.get("api"),
        Some(3000),
        "a released port is handed out again"
    );
    assert!(reg.release("nobody").unwrap().is_empty());
}

#[test]
fn ports_something_listens_on_are_skipped() {
    let home = tempfile::tempdir().unwrap();
    let reg = PortRegistry::for_project_in(home.path(), Path::new("/p/listen"));
    let base = free_base(8);
    let _v4_local = TcpListener::bind((Ipv4Addr::LOCALHOST, base)).unwrap();
    let _v4_any = TcpListener::bind((Ipv4Addr::UNSPECIFIED, base + 1)).unwrap();
    let v6_any = TcpListener::bind((Ipv6Addr::UNSPECIFIED, base + 2));
    assert!(is_port_in_use(base) && is_port_in_use(base + 1));
    let got = reg.allocate("wt", &[svc("api", base)]).unwrap();
    let expect = if v6_any.is_ok() { base + 3 } else { base + 2 };
    assert_eq!(got.get("api"), Some(expect));
    // An existing key keeps its port even when something now listens on it.
    let _l = TcpListener::bind((Ipv4Addr::LOCALHOST, expect));
    assert_eq!(
        reg.allocate("wt", &[svc("api", base)]).unwrap().get("api"),
        Some(expect)
    );
}

#[test]
fn bad_input_is_refused_and_a_corrupt_registry_is_left_untouched() {
    let home = tempfile::tempdir().unwrap();
    let reg =
        PortRegistry::for_project_in(home.path(), Path::new("/p/bad")).with_listening_check(false);
    assert_eq!(
        reg.allocate("", &[svc("api", 3000)]).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        reg.allocate("x:y", &[svc("api", 3000)]).unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
    std::fs::create_dir_all(reg.path().parent().unwrap()).unwrap();
    std::fs::write(reg.path(), "{ not json").unwrap();
    let err = reg.allocate("wt", &[svc("api", 3000)]).unwrap_err();
    assert_eq!(err.code(), "PARSE");
    assert!(err.to_string().contains("ports.json"), "{err}");
    assert_eq!(std::fs::read_to_string(reg.path()).unwrap(), "{ not json");
    // Entries that are not ports survive a rewrite.
    std::fs::write(
        reg.path(),
        "{\n  \"note\": \"hand edit\",\n  \"old:api\": 3000\n}",
    )
    .unwrap();
    let got = reg.allocate("wt", &[svc("api", 3000)]).unwrap();
    assert_eq!(got.get("api"), Some(3001));
    let text = std::fs::read_to_string(reg.path()).unwrap();
    assert!(
        text.starts_with("{\n  \"note\": \"hand edit\",\n  \"old:api\": 3000,\n  \"wt:api\": 3001"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// Two OS processes at once: the test binary re-runs itself as the child.

const CHILD_ENV: &str = "VIBETREES_TEST_PORTS_CHILD";

#[test]
fn child_allocator() {
    // Only does something when started by `two_processes_never_share_a_port`.
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (registry, worktree_prefix) = spec.split_once('|').unwrap();
    let reg = PortRegistry::at(registry).with_listening_check(false);
    let mut out = String::new();
    for i in 0..15 {
        let got = reg
            .allocate(
                &format!("{worktree_prefix}-{i}"),
                &[svc("postgres", 5432), svc("api", 3000)],
            )
            .unwrap();
        for p in got.0 {
            out.push_str(&format!("{}\n", p.port));
        }
    }
    std::fs::write(format!("{registry}.{worktree_prefix}.out"), out).unwrap();
}

#[test]
fn two_processes_never_share_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("ports.json");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|name| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_allocator",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|{name}", registry.display()))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let mut all: Vec<u16> = Vec::new();
    for name in ["p1", "p2"] {
        let text = std::fs::read_to_string(format!("{}.{name}.out", registry.display())).unwrap();
        all.extend(text.lines().map(|l| l.parse::<u16>().unwrap()));
    }
    assert_eq!(all.len(), 60);
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        all.len(),
        "a port was handed out twice: {all:?}"
    );
    let reg = PortRegistry::at(&registry);
    assert_eq!(reg.load().unwrap().len(), 60);
}

// ---------------------------------------------------------------------------------------------
// proper-lockfile (the npm package the Node server uses), real node.

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A folder with `node_modules/proper-lockfile`, installed once per test process with real npm.
fn proper_lockfile_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let skip = |why: String| {
            if in_ci() {
                panic!("proper-lockfile interop test cannot run in CI: {why}");
            }
            eprintln!("SKIPPED proper-lockfile interop: {why}");
            None
        };
        if Command::new("node").arg("--version").output().is_err() {
            return skip("node is not installed".into());
        }
        // Kept under cargo's per-target temp folder: installed once, reused by later runs.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("proper-lockfile");
        if dir
            .join("node_modules/proper-lockfile/package.json")
            .is_file()
        {
            return Some(dir);
        }
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("package.json"),
            "{\"name\":\"plf-test\",\"private\":true}",
        )
        .unwrap();
        let out = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "proper-lockfile@4",
            ])
            .current_dir(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(dir),
            Ok(o) => skip(format!(
                "npm install proper-lockfile failed: {}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => skip(format!("npm cannot run: {e}")),
        }
    })
    .as_deref()
}

/// Starts `node -e script` in `dir` (where proper-lockfile is installed) with piped stdout.
fn node(dir: &Path, script: &str, args: &[&str]) -> std::process::Child {
    Command::new("node")
        .arg("-e")
        .arg(script)
        .arg("--")
        .args(args)
        .current_dir(dir)
        .env("NODE_PATH", dir.join("node_modules"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s.trim().to_string()
}

#[test]
fn node_holds_the_lock_and_we_wait_for_it() {
    let Some(plf) = proper_lockfile_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ports.json");
    std::fs::write(&file, "{}").unwrap();
    // Node takes the lock, says so, waits for a line on stdin, writes its port, then releases.
    let script = r#"
      const lockfile = require('proper-lockfile'); const fs = require('fs');
      const file = process.argv[process.argv.length - 1];
      lockfile.lock(file, { stale: 10000 }).then((release) => {
        console.log('locked');
        process.stdin.once('data', async () => {
          const reg = JSON.parse(fs.readFileSync(file, 'utf8'));
          reg['node-wt:api'] = 3000;
          fs.writeFileSync(file, JSON.stringify(reg, null, 2));
          await release();
          console.log('released');
          process.exit(0);
        });
      }).catch((e) => { console.log('error ' + e.code); process.exit(1); });
    "#;
    let mut child = node(plf, script, &[file.to_str().unwrap()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line(&mut out), "locked");
    let lock_dir = vibetrees_core::services::proper_lock::lock_path_for(&file).unwrap();
    assert!(
        lock_dir.is_dir(),
        "proper-lockfile's lock is the directory we compute"
    );
    // While node holds it, we cannot take it.
    assert!(
        FileLock::try_acquire(&file, &LockOptions::default())
            .unwrap()
            .is_none()
    );

    // Our allocation blocks on node's lock; node goes on only after we started waiting.
    let reg = PortRegistry::at(&file).with_listening_check(false);
    let waiter = std::thread::spawn(move || reg.allocate("rust-wt", &[svc("api", 3000)]).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !waiter.is_finished(),
        "allocation must wait for node's lock"
    );
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(read_line(&mut out), "released");
    let got = waiter.join().unwrap();
    // We read the registry after node wrote it: 3000 was node's, so we got 3001.
    assert_eq!(got.get("api"), Some(3001));
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        "{\n  \"node-wt:api\": 3000,\n  \"rust-wt:api\": 3001\n}"
    );
}

#[test]
fn we_hold_the_lock_and_node_waits_for_it() {
    let Some(plf) = proper_lockfile_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ports.json");
    std::fs::write(&file, "{}").unwrap();
    let lock = FileLock::acquire(&file, &LockOptions::default()).unwrap();
    // Node: check() sees a held, fresh lock; lock() without retries fails with ELOCKED; then it
    // waits with retries, and reads the registry once it holds the lock.
    let script = r#"
      const lockfile = require('proper-lockfile'); const fs = require('fs');
      const file = process.argv[process.argv.length - 1];
      (async () => {
        console.log('held ' + await lockfile.check(file));
        try { await lockfile.lock(file); console.log('got it too early'); }
        catch (e) { console.log('first ' + e.code); }
        const release = await lockfile.lock(file, { retries: { retries: 200, minTimeout: 20, maxTimeout: 50 } });
        const reg = JSON.parse(fs.readFileSync(file, 'utf8'));
        console.log('read ' + JSON.stringify(reg));
        reg['node-wt:api'] = 3005;
        fs.writeFileSync(file, JSON.stringify(reg, null, 2));
        await release();
        console.log('done');
      })().catch((e) => { console.log('error ' + e.message); process.exit(1); });
    "#;
    let mut child = node(plf, script, &[file.to_str().unwrap()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(read_line(&mut out), "held true");
    assert_eq!(read_line(&mut out), "first ELOCKED");
    // Node is now retrying; we write under our lock and release it.
    std::fs::write(&file, "{\n  \"rust-wt:api\": 3000\n}").unwrap();
    lock.release().unwrap();
    assert_eq!(read_line(&mut out), r#"read {"rust-wt:api":3000}"#);
    assert_eq!(read_line(&mut out), "done");
    assert!(child.wait().unwrap().success());
    // And the next allocation of ours sees node's port.
    let got = PortRegistry::at(&file)
        .with_listening_check(false)
        .allocate("rust-2", &[svc("api", 3005)])
        .unwrap();
    assert_eq!(got.get("api"), Some(3006));
}

#[test]
fn node_takes_over_our_stale_lock_and_we_take_over_nodes() {
    let Some(plf) = proper_lockfile_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ports.json");
    std::fs::write(&file, "{}").unwrap();
    let lock_dir = vibetrees_core::services::proper_lock::lock_path_for(&file).unwrap();
    // A crashed holder: a lock directory 60 s old.
    std::fs::create_dir(&lock_dir).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::open(&lock_dir)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let script = r#"
      const lockfile = require('proper-lockfile');
      const file = process.argv[process.argv.length - 1];
      (async () => {
        console.log('held ' + await lockfile.check(file));
        const release = await lockfile.lock(file);
        console.log('taken');
        // Simulate a node process that dies without releasing: exit with the lock left behind
        // is impossible through the API (signal-exit removes it), so release normally.
        await release();
        console.log('done');
      })().catch((e) => { console.log('error ' + e.code); process.exit(1); });
    "#;
    let mut child = node(plf, script, &[file.to_str().unwrap()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    assert_eq!(
        read_line(&mut out),
        "held false",
        "node sees our stale lock as stale"
    );
    assert_eq!(read_line(&mut out), "taken");
    assert_eq!(read_line(&mut out), "done");
    assert!(child.wait().unwrap().success());
    // The reverse: a stale lock in node's format (a plain directory) is taken over by us.
    std::fs::create_dir(&lock_dir).unwrap();
    std::fs::File::open(&lock_dir)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let opts = LockOptions {
        timeout: Duration::from_secs(2),
        ..LockOptions::default()
    };
    let lock = FileLock::acquire(&file, &opts).unwrap();
    assert!(!lock.is_compromised());
    lock.release().unwrap();
    assert!(!lock_dir.exists());
}

#[test]
fn our_refresher_keeps_the_lock_fresh_for_node() {
    let Some(plf) = proper_lockfile_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ports.json");
    std::fs::write(&file, "{}").unwrap();
    // We refresh every 300 ms; node judges staleness at 2 s (proper-lockfile's minimum), and
    // checks three times after the lock was taken, the last past 2 s: a lock nobody refreshed
    // would be stale by then.
    let opts = LockOptions {
        update: Duration::from_millis(300),
        ..LockOptions::default()
    };
    let lock = FileLock::acquire(&file, &opts).unwrap();
    let script = r#"
      const lockfile = require('proper-lockfile');
      const file = process.argv[process.argv.length - 1];
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      (async () => {
        for (let i = 0; i < 3; i++) {
          await sleep(1100);
          const held = await lockfile.check(file, { stale: 2000 });
          let code = 'none';
          try { const rel = await lockfile.lock(file, { stale: 2000 }); await rel(); code = 'acquired'; }
          catch (e) { code = e.code; }
          console.log(held + ' ' + code);
        }
      })().catch((e) => { console.log('error ' + e.message); process.exit(1); });
    "#;
    let mut child = node(plf, script, &[file.to_str().unwrap()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        assert_eq!(read_line(&mut out), "true ELOCKED");
    }
    assert!(child.wait().unwrap().success());
    assert!(!lock.is_compromised());
    lock.release().unwrap();
}
