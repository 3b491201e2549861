//! The `vibetrees cache` command line: warm, key, status, restore, verify, prune, clear.

mod cache_support;

use cache_support::*;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_vibetrees");

fn cli(cache: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(BIN)
        .arg("cache")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--json")
        .env("VIBETREES_NODE_ABI", "115")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cache_commands_work_end_to_end() {
    let t = tempdir();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    gen_project(&a, "x");
    gen_tree(&a.join("node_modules"), 6, 2, false);
    let a_s = a.to_str().unwrap();

    let (ok, key, err) = cli(&cache, &["key", a_s]);
    assert!(ok, "{err}");
    let key = key["key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 64);

    // warm: node_modules exists, so no install; the entry is made.
    let (ok, warm, err) = cli(&cache, &["warm", a_s]);
    assert!(ok, "{err}");
    assert_eq!(warm["populate"]["outcome"], "created");
    assert!(warm["installedWith"].is_null());

    let b = t.path().join("b");
    gen_project(&b, "x");
    let (ok, r, err) = cli(&cache, &["restore", b.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(r["methodUsed"], "hardlink");
    assert_same(
        &snapshot(&a.join("node_modules")),
        &snapshot(&b.join("node_modules")),
    );

    let (ok, status, _) = cli(&cache, &["status"]);
    assert!(ok);
    assert_eq!(status["stats"]["entries"], 1);
    assert_eq!(status["stats"]["hits"], 1);
    assert_eq!(status["entries"][0]["key"], key.as_str());

    // A file changed through the shared inode: verify fails, names it; --evict removes the entry.
    std::fs::write(b.join("node_modules/pkg1/index.js"), "changed in place").unwrap();
    let (ok, v, _) = cli(&cache, &["verify"]);
    assert!(!ok, "verify must fail on a changed entry");
    assert_eq!(
        v["bad"][0]["problems"][0]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("pkg1/index.js")
    );
    let (ok, v, err) = cli(&cache, &["verify", "--evict"]);
    assert!(ok, "{err}");
    assert_eq!(v["bad"][0]["evicted"], true);

    let (ok, _, err) = cli(
        &cache,
        &["populate", a.join("node_modules").to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (ok, p, _) = cli(&cache, &["prune", "--max-size", "1G"]);
    assert!(ok);
    assert_eq!(p["evicted"].as_array().unwrap().len(), 0);
    let (ok, p, _) = cli(&cache, &["clear"]);
    assert!(ok);
    assert_eq!(p["evicted"].as_array().unwrap().len(), 1);

    // Bad input: a clear error, nothing lost.
    let (ok, _, err) = cli(&cache, &["prune", "--max-size", "lots"]);
    assert!(!ok);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("lots"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &cache,
        &["restore", "--key", "../../etc", "--target", "/tmp/x"],
    );
    assert!(!ok);
    assert!(err.contains("INVALID_ARGUMENT"), "{err}");
}

#[test]
fn node_abi_is_asked_once_and_remembered_across_processes() {
    let Ok(out) = Command::new("node")
        .args(["-p", "process.versions.modules"])
        .output()
    else {
        if skip("node is not installed") {
            return;
        }
        unreachable!()
    };
    let abi = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let t = tempdir();
    let cache = t.path().join("cache");
    let project = t.path().join("p");
    gen_project(&project, "x");
    let key = |cache: &Path| {
        let out = Command::new(BIN)
            .args(["cache", "key", "--json", "--cache-dir"])
            .arg(cache)
            .arg(&project)
            .env_remove("VIBETREES_NODE_ABI")
            .output()
            .unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v["key"].as_str().unwrap().to_string(),
            v["inputs"]["nodeAbi"].as_str().unwrap().to_string(),
        )
    };
    let first = key(&cache);
    assert_eq!(first.1, abi);
    let memo = cache.join("node-abi.json");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&memo).unwrap()).unwrap();
    assert_eq!(saved["abi"], abi.as_str());
    // The memo is what the next process uses (a stale stamp would be asked again).
    let mut fake = saved.clone();
    fake["abi"] = "999".into();
    std::fs::write(&memo, fake.to_string()).unwrap();
    assert_eq!(key(&cache).1, "999");
    fake["node"] = "/some/other/node|1|1.0".into();
    std::fs::write(&memo, fake.to_string()).unwrap();
    assert_eq!(key(&cache), first);
}

#[test]
fn verify_content_finds_a_same_size_write_that_kept_the_mtime() {
    let t = tempdir();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    gen_project(&a, "x");
    gen_tree(&a.join("node_modules"), 6, 2, false);
    let (ok, _, err) = cli(&cache, &["warm", a.to_str().unwrap()]);
    assert!(ok, "{err}");
    let b = t.path().join("b");
    gen_project(&b, "x");
    let (ok, r, err) = cli(&cache, &["restore", b.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(r["methodUsed"], "hardlink");
    let (ok, v, err) = cli(&cache, &["verify", "--content"]);
    assert!(ok, "{err} {v}");
    assert!(v["filesChecked"].as_u64().unwrap() > 0, "{v}");

    // an in-place write of the same size, mtime put back: the shared inode changed
    let file = b.join("node_modules/pkg1/index.js");
    let meta = std::fs::metadata(&file).unwrap();
    let old = std::fs::read(&file).unwrap();
    let mut new = old.clone();
    new[0] = if new[0] == b'X' { b'Y' } else { b'X' };
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    std::io::Write::write_all(&mut &f, &new).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    drop(f);
    let (ok, v, _) = cli(&cache, &["verify"]);
    assert!(
        ok,
        "size and mtime kept: the listing check cannot see it: {v}"
    );
    let (ok, v, _) = cli(&cache, &["verify", "--content"]);
    assert!(!ok, "verify --content must fail: {v}");
    assert_eq!(
        v["bad"][0]["problems"][0], "pkg1/index.js: content changed",
        "{v}"
    );
    let (ok, v, err) = cli(&cache, &["verify", "--content", "--evict"]);
    assert!(ok, "{err}");
    assert_eq!(v["bad"][0]["evicted"], true);
}
