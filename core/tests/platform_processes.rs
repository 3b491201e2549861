//! The process and network side of `platform`, with real processes and sockets: the
//! process-group watchdog macOS uses (run here through `ChildTie::GroupWatchdog`), the finder of
//! processes by environment entry, the port probes (the portable one macOS uses, and Linux's),
//! and the umask read in a forked child.
//!
//! Two tests need a parent process to kill or to give another umask: they run this test binary
//! again with `VT_PLATFORM_HELPER` set, which makes the ignored `helper` test play that part.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vibetrees_core::platform::{self, ChildTie, portable};

/// Every process as `ps` lists it: (pid, process group, state). `ps` rather than `/proc`, so
/// these tests run on macOS as they do on Linux.
fn processes() -> Vec<(u32, i32, String)> {
    let out = Command::new("ps")
        .args(["-A", "-o", "pid=,pgid=,stat="])
        .output()
        .unwrap();
    assert!(out.status.success(), "ps: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next()?.to_string(),
            ))
        })
        .collect()
}

/// True if `pid` runs (a zombie waiting for its reaper counts as ended).
fn running(pid: u32) -> bool {
    processes()
        .iter()
        .any(|(p, _, state)| *p == pid && !state.starts_with('Z'))
}

fn wait_until_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().any(|p| running(*p)) {
        assert!(Instant::now() < deadline, "{what}: {pids:?} still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sh -c 'sleep 300 & echo $!; <rest>'`, tied to us by `tie`; returns the child, its ties and
/// the background sleep's pid.
fn spawn_group(tie: ChildTie, rest: &str) -> (std::process::Child, platform::ChildTies, u32) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("sleep 300 & echo $!; {rest}")])
        .stdout(Stdio::piped())
        .stdin(Stdio::null());
    let mut ties = tie.apply(&mut cmd).unwrap();
    let mut child = cmd.spawn().unwrap();
    ties.spawned(Some(child.id()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, ties, line.trim().parse().unwrap())
}

/// The running members of process group `pgid`.
fn group_members(pgid: i32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, g, state)| *g == pgid && !state.starts_with('Z'))
        .map(|(p, _, _)| p)
        .collect()
}

#[test]
fn dropping_the_ties_kills_the_whole_group() {
    let (mut child, ties, bg) = spawn_group(ChildTie::GroupWatchdog, "sleep 300");
    let pgid = ties.group().expect("a group tie has a group");
    assert_eq!(pgid, child.id() as i32);
    // the child, its background sleep and the watchdog share the group
    let members = group_members(pgid);
    assert!(members.len() >= 3, "{members:?}");
    drop(ties);
    child.wait().unwrap();
    wait_until_gone(&members, "the group after the drop");
    assert!(!running(bg));
}

#[test]
fn a_released_child_leaves_its_descendants_and_the_watchdog_leaves() {
    let (mut child, ties, bg) = spawn_group(ChildTie::GroupWatchdog, "exit 0");
    let pgid = ties.group().unwrap();
    assert!(child.wait().unwrap().success());
    ties.release();
    // the watchdog read its byte and left; the background sleep stays (as on Linux)
    let deadline = Instant::now() + Duration::from_secs(20);
    while group_members(pgid) != vec![bg] {
        assert!(
            Instant::now() < deadline,
            "group {pgid}: {:?}",
            group_members(pgid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running(bg));
    platform::kill_process(bg);
    wait_until_gone(&[bg], "the background sleep");
}

#[test]
fn the_watchdog_holds_no_copy_of_other_pipes() {
    // A pipe of ours that exists while the child forks its watchdog: the watchdog must close its
    // copy, or the reader here would wait for end-of-file as long as the watchdog lives.
    let (mut reader, writer) = std::io::pipe().unwrap();
    let (mut child, ties, _bg) = spawn_group(ChildTie::GroupWatchdog, "sleep 300");
    drop(writer);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = reader.read_to_end(&mut buf);
        let _ = tx.send(());
    });
    let got_eof = rx.recv_timeout(Duration::from_secs(10)).is_ok();
    drop(ties);
    child.wait().unwrap();
    assert!(got_eof, "a pipe's end-of-file waited for the watchdog");
}

#[test]
fn the_group_dies_with_its_parent_killed_by_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pids");
    let mut parent = helper_process("watchdog-parent", &out).spawn().unwrap();
    let pids = wait_for_lines(&out, 2);
    let (group, bg): (u32, u32) = (pids[0].parse().unwrap(), pids[1].parse().unwrap());
    assert!(running(group) && running(bg));
    let members = group_members(group as i32);
    assert!(members.len() >= 3, "{members:?}");
    parent.kill().unwrap(); // SIGKILL: nothing of the parent's runs after it
    parent.wait().unwrap();
    wait_until_gone(&members, "the group of a parent killed by SIGKILL");
}

#[test]
fn the_umask_is_read_in_a_forked_child() {
    // the shell's `umask` prints the umask it inherited from us
    let out = Command::new("sh").args(["-c", "umask"]).output().unwrap();
    let ours = u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8).unwrap();
    assert_eq!(portable::read_umask(), Some(ours));
    assert_eq!(platform::umask(), ours);
    // a process with another umask reads its own
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("umask");
    let mut cmd = helper_process("umask", &out);
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o027);
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success());
    assert_eq!(wait_for_lines(&out, 1), vec!["27 27".to_string()]);
}

#[test]
fn processes_are_found_by_an_exact_environment_entry() {
    let marker = format!("VT_PLATFORM_TEST_MARK=/tmp/wt-{}", std::process::id());
    let (name, value) = marker.split_once('=').unwrap();
    // Between fork and exec a child still shows our environment: each child says when it
    // runs with its own (a line on stdout), then becomes `sleep` with the same environment.
    let started = |value: String| {
        let mut child = Command::new("sh")
            .args(["-c", "echo up; exec sleep 60"])
            .env(name, value)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "up\n");
        child
    };
    let mut marked = started(value.to_string());
    let mut other = started(format!("{value}-other"));
    let found = platform::processes_with_env(marker.as_bytes());
    assert_eq!(found, vec![marked.id()]);
    assert!(platform::kill_process(marked.id()));
    marked.wait().unwrap();
    assert!(platform::processes_with_env(marker.as_bytes()).is_empty());
    // this process is never listed, even when it matches
    let me = format!("PATH={}", std::env::var("PATH").unwrap());
    assert!(!platform::processes_with_env(me.as_bytes()).contains(&std::process::id()));
    other.kill().unwrap();
    other.wait().unwrap();
}

/// A port nothing holds: bound to :0 and closed at once (no connection, so no TIME_WAIT).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port probe: true when the port is in use.
type Probe = fn(u16) -> bool;

#[test]
fn both_port_probes_see_listeners_on_every_address() {
    let probes: [(&str, Probe); 2] = [
        ("native", platform::port_in_use),
        ("portable", portable::port_in_use),
    ];
    let have_v6 = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok();
    let mut addrs = vec![
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
    ];
    if have_v6 {
        addrs.push(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)));
        addrs.push(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)));
    }
    for addr in addrs {
        let l = TcpListener::bind(addr).unwrap();
        let port = l.local_addr().unwrap().port();
        for (name, probe) in probes {
            assert!(
                probe(port),
                "{name} probe missed a listener on {addr} (port {port})"
            );
        }
        if addr.ip() == std::net::IpAddr::from(Ipv4Addr::LOCALHOST) {
            // Linux lists listeners without a process; other platforms do not list them
            let listed = platform::listening_ports();
            let linux = cfg!(target_os = "linux");
            assert_eq!(listed.is_some(), linux, "listed only on Linux: {listed:?}");
            if let Some(listed) = listed {
                assert!(listed.contains(&port), "{port} not in {listed:?}");
            }
        }
        drop(l);
    }
    let port = free_port();
    for (name, probe) in probes {
        assert!(!probe(port), "{name} probe: port {port} is free");
    }
}

/// This test binary again, as the `helper` test playing `role`, writing to `out`.
fn helper_process(role: &str, out: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("VT_PLATFORM_HELPER", role)
    .env("VT_PLATFORM_HELPER_OUT", out)
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    cmd
}

fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let lines: Vec<String> = text.lines().map(String::from).collect();
            if lines.len() >= n && text.ends_with('\n') {
                return lines;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the helper wrote no {n} lines to {path:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Not a test: the other process of two tests above (run by them with `VT_PLATFORM_HELPER`).
#[test]
#[ignore = "a helper process run by the tests of this file, not a test"]
fn helper() {
    let (Ok(role), Some(out)) = (
        std::env::var("VT_PLATFORM_HELPER"),
        std::env::var_os("VT_PLATFORM_HELPER_OUT"),
    ) else {
        return;
    };
    match role.as_str() {
        "watchdog-parent" => {
            let (_child, ties, bg) = spawn_group(ChildTie::GroupWatchdog, "sleep 300");
            let group = ties.group().unwrap();
            std::fs::write(&out, format!("{group}\n{bg}\n")).unwrap();
            // wait to be killed; the ties are never dropped by us
            std::thread::sleep(Duration::from_secs(120));
            std::mem::forget(ties);
        }
        "umask" => {
            let read = portable::read_umask().unwrap();
            std::fs::write(&out, format!("{read:o} {:o}\n", platform::umask())).unwrap();
        }
        other => panic!("unknown helper role {other}"),
    }
}
