//! Crashes and concurrency with real processes (the `vibetrees` CLI): SIGKILL at random points of
//! populate and restore never leaves a partial entry that is served nor a partial node_modules at
//! the target; eight processes populating and restoring one key at once end with one entry and
//! eight complete trees.

mod cache_support;

use cache_support::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vibetrees_core::cache::RestoreOptions;

const BIN: &str = env!("CARGO_BIN_EXE_vibetrees");

struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("VT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed {seed} (set VT_TEST_SEED to replay)");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn cli(cache: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("cache").args(args).arg("--cache-dir").arg(cache);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn timed(mut c: Command) -> Duration {
    let t = Instant::now();
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn kill_after(mut child: Child, after: Duration) -> bool {
    std::thread::sleep(after);
    let finished = matches!(child.try_wait(), Ok(Some(_)));
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    !finished
}

#[test]
fn sigkill_during_populate_never_leaves_a_served_partial_entry() {
    let t = shm_tempdir();
    let src = t.path().join("project/node_modules");
    gen_sized_tree(&src, 2000);
    let expected = snapshot(&src);
    let cache_dir = t.path().join("cache");
    let key = test_key(7);
    let k = key.to_string();
    let src_s = src.to_str().unwrap();
    let cache = open_cache(&cache_dir);
    // Calibrate on warm runs: the kill times are drawn over the length of one populate.
    let mut full = Duration::MAX;
    for _ in 0..2 {
        full = full.min(timed(cli(&cache_dir, &["populate", src_s, "--key", &k])));
        cache.clear().unwrap();
    }
    let mut rng = Rng::new();
    let (mut killed, mut complete) = (0, 0);
    for i in 0..30 {
        let child = cli(&cache_dir, &["populate", src_s, "--key", &k])
            .spawn()
            .unwrap();
        let after = Duration::from_micros(rng.below(full.as_micros() as u64));
        if kill_after(child, after) {
            killed += 1;
        }
        match cache.lookup(&key).unwrap() {
            None => {
                let e = cache
                    .restore(
                        &key,
                        &t.path().join(format!("miss{i}/node_modules")),
                        &RestoreOptions::default(),
                    )
                    .unwrap_err();
                assert_eq!(e.code(), "NOT_FOUND");
            }
            Some(_) => {
                complete += 1;
                assert!(cache.verify_entry(&key).unwrap().is_none());
                let target = t.path().join(format!("hit{i}/node_modules"));
                cache
                    .restore(&key, &target, &RestoreOptions::default())
                    .unwrap();
                assert_same(&expected, &snapshot(&target));
                std::fs::remove_dir_all(target.parent().unwrap()).unwrap();
                cache.clear().unwrap();
            }
        }
    }
    eprintln!("populate: {killed} killed mid-way, {complete} entries complete, full run {full:?}");
    assert!(killed >= 5, "the kills must land mid-populate ({killed})");
    // Leftover staging folders are never entries, and a later populate works.
    cache.populate(&key, &src).unwrap();
    assert_eq!(cache.entries().unwrap().len(), 1);
}

#[test]
fn sigkill_during_restore_never_leaves_a_partial_node_modules() {
    let t = shm_tempdir();
    let src = t.path().join("project/node_modules");
    gen_sized_tree(&src, 2000);
    let expected = snapshot(&src);
    let cache_dir = t.path().join("cache");
    let key = test_key(8);
    let k = key.to_string();
    let cache = open_cache(&cache_dir);
    cache.populate(&key, &src).unwrap();
    let wt = t.path().join("wt");
    let target = wt.join("node_modules");
    let target_s = target.to_str().unwrap();
    let restore = |method: &str| {
        cli(
            &cache_dir,
            &[
                "restore",
                "--key",
                &k,
                "--target",
                target_s,
                "--method",
                method,
                "--replace",
            ],
        )
    };
    let mut full = Duration::MAX;
    for _ in 0..2 {
        full = full.min(timed(restore("copy")));
        std::fs::remove_dir_all(&target).unwrap();
    }
    let mut rng = Rng::new();
    let mut killed = 0;
    for i in 0..30 {
        let method = if i % 3 == 0 { "copy" } else { "auto" };
        let child = restore(method).spawn().unwrap();
        let after = Duration::from_micros(rng.below(full.as_micros() as u64));
        if kill_after(child, after) {
            killed += 1;
        }
        if target.exists() {
            assert_same(&expected, &snapshot(&target));
        }
        // Sometimes start the next run from an empty place, sometimes over a complete tree.
        if i % 2 == 0 && target.exists() {
            std::fs::remove_dir_all(&target).unwrap();
        }
    }
    eprintln!("restore: {killed} of 30 killed mid-way, full copy run {full:?}");
    assert!(killed >= 5, "the kills must land mid-restore ({killed})");
    // The entry is still sound, and the next restore cleans the dead processes' temporaries.
    assert!(cache.verify(false).unwrap().bad.is_empty());
    let replace = RestoreOptions {
        replace: true,
        ..RestoreOptions::default()
    };
    cache.restore(&key, &target, &replace).unwrap();
    assert_same(&expected, &snapshot(&target));
    let names: Vec<_> = std::fs::read_dir(&wt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["node_modules"], "stale temporaries removed");
}

#[test]
fn temporaries_whose_maker_cannot_be_checked_are_kept() {
    let t = shm_tempdir();
    let src = t.path().join("project/node_modules");
    gen_sized_tree(&src, 20);
    let cache = open_cache(&t.path().join("cache"));
    let key = test_key(9);
    cache.populate(&key, &src).unwrap();
    let wt = t.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let ours = vibetrees_core::platform::this_world();
    let container = vibetrees_core::platform::world_tag(&vibetrees_core::platform::ProcessWorld {
        pid_ns: Some("pid:[4026530000]".into()),
        ..ours
    });
    let our_tag = vibetrees_core::platform::this_world_tag();
    let names = [
        // a dead process of ours: removed
        format!(".node_modules.vt-restore-{our_tag}-{dead}-0"),
        // the same pid in a container sharing the folder: cannot be checked, kept
        format!(".node_modules.vt-restore-{container}-{dead}-0"),
        // named before names carried a world: unknown, kept
        format!(".node_modules.vt-restore-{dead}-0"),
    ];
    for n in &names {
        std::fs::create_dir(wt.join(n)).unwrap();
        std::fs::write(wt.join(n).join("file"), "someone's").unwrap();
    }
    cache
        .restore(&key, &wt.join("node_modules"), &RestoreOptions::default())
        .unwrap();
    let mut left: Vec<_> = std::fs::read_dir(&wt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected = vec![
        names[1].clone(),
        names[2].clone(),
        "node_modules".to_string(),
    ];
    expected.sort();
    assert_eq!(left, expected);
}

#[test]
fn eight_processes_populate_and_restore_one_key_at_once() {
    let t = shm_tempdir();
    let src = t.path().join("project/node_modules");
    gen_sized_tree(&src, 1500);
    let expected = snapshot(&src);
    let cache_dir = t.path().join("cache");
    let key = test_key(9).to_string();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let target = t.path().join(format!("wt{i}/node_modules"));
            let script = format!(
                "'{bin}' cache populate '{src}' --key {key} --cache-dir '{c}' >/dev/null && \
                 '{bin}' cache restore --key {key} --target '{target}' --cache-dir '{c}' >/dev/null",
                bin = BIN,
                src = src.display(),
                c = cache_dir.display(),
                target = target.display()
            );
            Command::new("sh")
                .args(["-c", &script])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: Vec<_> = std::fs::read_dir(cache_dir.join("node_modules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        std::slice::from_ref(&key),
        "exactly one entry, no staging left"
    );
    for i in 0..8 {
        assert_same(
            &expected,
            &snapshot(&t.path().join(format!("wt{i}/node_modules"))),
        );
    }
    let cache = open_cache(&cache_dir);
    assert!(cache.verify(false).unwrap().bad.is_empty());
    assert_eq!(cache.stats().unwrap().hits, 8);
}

#[test]
fn eviction_racing_restores_never_breaks_one() {
    let t = shm_tempdir();
    let src = t.path().join("project/node_modules");
    gen_sized_tree(&src, 1500);
    let expected = snapshot(&src);
    let cache_dir = t.path().join("cache");
    let key = test_key(10);
    let k = key.to_string();
    let cache = open_cache(&cache_dir);
    let mut rng = Rng::new();
    let (mut served, mut missed, mut busy) = (0, 0, 0);
    for i in 0..12 {
        cache.populate(&key, &src).unwrap();
        let target = t.path().join(format!("wt{i}/node_modules"));
        let child = cli(
            &cache_dir,
            &["restore", "--key", &k, "--target", target.to_str().unwrap()],
        )
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        let report = cache.clear().unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if report.busy.contains(&key) {
            // Eviction found the entry in use and left it: the restore must have succeeded.
            busy += 1;
            assert!(out.status.success(), "{stderr}");
        }
        if out.status.success() {
            served += 1;
            assert_same(&expected, &snapshot(&target));
        } else {
            // Evicted before the restore took its lock: a clean miss, nothing at the target.
            missed += 1;
            assert!(stderr.contains("NOT_FOUND"), "{stderr}");
            assert!(!target.exists());
            assert_eq!(report.evicted, std::slice::from_ref(&key));
        }
        cache.clear().unwrap();
        assert!(
            !cache.contains(&key),
            "a finished restore does not keep the entry"
        );
    }
    eprintln!(
        "eviction race: {served} restores served ({busy} while eviction skipped the busy entry), \
         {missed} clean misses"
    );
}
