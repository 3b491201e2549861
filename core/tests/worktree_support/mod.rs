//! Shared helpers of the worktree integration tests: real git repositories made with the git CLI,
//! a real node_modules tree, HOME pointed at a temporary folder.
#![allow(dead_code)]

pub mod pool;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Once, OnceLock};
use vibetrees_core::progress::{ProgressEvent, ProgressSink};
use vibetrees_core::worktree::{ContainerRuntime, WorktreeOptions, WorktreeSettings};

static HOME: OnceLock<PathBuf> = OnceLock::new();
static INIT: Once = Once::new();

/// Deletes the temporary HOME when the test binary exits: the harness ends with `exit`, which
/// runs `atexit` handlers, whether the tests passed or not. Best effort: what cannot be deleted
/// stays.
extern "C" fn remove_home() {
    if let Some(home) = HOME.get() {
        let _ = std::fs::remove_dir_all(home);
    }
}

/// Points HOME at a temporary folder, once per test binary, before any test reads it. The folder
/// is deleted when the binary exits, unless `VT_KEEP_TEST_HOME` is set (to look at it after a
/// failure).
pub fn setup() -> &'static Path {
    INIT.call_once(|| {
        let dir = tempfile::Builder::new()
            .prefix("vt-wt-home-")
            .tempdir()
            .unwrap()
            .keep();
        if std::env::var_os("VT_KEEP_TEST_HOME").is_none() {
            // SAFETY: `remove_home` is a plain function that never unwinds (its errors are
            // ignored), as atexit requires.
            unsafe { libc::atexit(remove_home) };
        }
        // SAFETY: every test calls setup() first; Once blocks the others until HOME is set.
        unsafe { std::env::set_var("HOME", &dir) };
        // A fixed Node ABI for the cache keys of this binary and the CLI processes it starts:
        // no `node` spawn inside the timed graph (deterministic step order in tests).
        // SAFETY: as above.
        unsafe { std::env::set_var("VIBETREES_NODE_ABI", "vibetrees-test-abi") };
        if std::env::var_os("CONTAINERS_CONF").is_none() {
            let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/containers.conf");
            // SAFETY: as above.
            unsafe { std::env::set_var("CONTAINERS_CONF", conf) };
        }
        HOME.set(dir).unwrap();
    });
    HOME.get().unwrap()
}

/// Runs git with arguments in `dir`, asserting success; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A project: a git repo on `main` with source files, package.json, package-lock.json and a
/// `.gitignore`, plus a real node_modules (not committed) in the main worktree.
pub struct Project {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub cache_dir: PathBuf,
    pub history: PathBuf,
}

/// Makes a project; `package_json` overrides the default one.
pub fn project(package_json: Option<&str>) -> Project {
    setup();
    let tmp = tempfile::Builder::new().prefix("vt-wt-").tempdir().unwrap();
    let root = tmp.path().join("projects").join("app");
    for i in 0..40 {
        write(
            &root.join(format!("src/dir{}/file{i}.js", i % 5)),
            &format!("export const v{i} = {i};\n"),
        );
    }
    write(&root.join("README.md"), "# app\n");
    write(
        &root.join(".gitignore"),
        "node_modules/\n.env\n.claude/\n.worktrees/\n",
    );
    write(
        &root.join("package.json"),
        package_json.unwrap_or(
            r#"{
  "name": "app",
  "version": "1.0.0",
  "dependencies": { "left-pad": "1.3.0" },
  "devDependencies": { "@modelcontextprotocol/server-postgres": "0.6.2" }
}
"#,
        ),
    );
    write(
        &root.join("package-lock.json"),
        r#"{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": { "name": "app", "version": "1.0.0" }
  }
}
"#,
    );
    // a real node_modules tree: files, nested folders, a symlink in .bin
    let nm = root.join("node_modules");
    write(
        &nm.join("left-pad/package.json"),
        r#"{"name":"left-pad","version":"1.3.0","main":"index.js"}"#,
    );
    write(
        &nm.join("left-pad/index.js"),
        "module.exports = (s, n) => String(s).padStart(n);\n",
    );
    for i in 0..30 {
        write(
            &nm.join(format!("dep{i}/lib/util/f{i}.js")),
            &format!("module.exports = {i};\n"),
        );
        write(
            &nm.join(format!("dep{i}/package.json")),
            &format!("{{\"name\":\"dep{i}\"}}"),
        );
    }
    std::fs::create_dir_all(nm.join(".bin")).unwrap();
    std::os::unix::fs::symlink("../left-pad/index.js", nm.join(".bin/left-pad")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["config", "user.email", "t@example.invalid"]);
    git(&root, &["config", "user.name", "t"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "init"]);
    Project {
        cache_dir: tmp.path().join("cache"),
        history: tmp.path().join("history.sqlite"),
        _tmp: tmp,
        root,
    }
}

impl Project {
    /// Options for this project: runtime none, its own cache and history.
    pub fn options(&self) -> WorktreeOptions {
        WorktreeSettings {
            runtime: ContainerRuntime::None,
            cache_dir: Some(self.cache_dir.clone()),
            history_path: Some(self.history.clone()),
            ..WorktreeSettings::new(&self.root)
        }
        .into()
    }

    /// Populates the cache from the main worktree's node_modules.
    pub fn warm_cache(&self) {
        let cache =
            vibetrees_core::cache::NodeModulesCache::open(vibetrees_core::cache::CacheOptions {
                cache_dir: Some(self.cache_dir.clone()),
                ..Default::default()
            })
            .unwrap();
        let key = vibetrees_core::cache::CacheKey::from_project_dir(&self.root).unwrap();
        cache
            .populate(&key, &self.root.join("node_modules"))
            .unwrap();
    }

    /// Local branches.
    pub fn branches(&self) -> Vec<String> {
        git(&self.root, &["branch", "--format=%(refname:short)"])
            .lines()
            .map(|s| s.to_string())
            .collect()
    }

    /// `git worktree list --porcelain`.
    pub fn worktree_list(&self) -> String {
        git(&self.root, &["worktree", "list", "--porcelain"])
    }

    /// The ports registry file of this project under the test HOME.
    pub fn ports_json(&self) -> PathBuf {
        setup()
            .join(".vibetrees")
            .join("projects-app")
            .join("ports.json")
    }
}

/// A progress sink that records events.
pub fn recorder() -> (ProgressSink, Arc<parking_lot::Mutex<Vec<ProgressEvent>>>) {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    (
        Arc::new(move |e: &ProgressEvent| s2.lock().push(e.clone())),
        seen,
    )
}

/// Every entry under `dir` (relative path, kind, content or link target), sorted.
pub fn tree(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
            if ft.is_symlink() {
                out.push((
                    rel,
                    format!("link:{}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if ft.is_dir() {
                out.push((rel.clone(), "dir".into()));
                walk(base, &p, out);
            } else {
                out.push((
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
