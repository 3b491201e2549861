//! The cache key: a digest of everything that decides what `npm install` puts in node_modules.
//!
//! Inputs: every lockfile present (package-lock.json, npm-shrinkwrap.json, yarn.lock,
//! pnpm-lock.yaml, bun.lock, bun.lockb), the dependency sections of package.json (dependencies,
//! devDependencies, optionalDependencies, peerDependencies, overrides, resolutions), the Node ABI
//! version (`process.versions.modules`), the platform and the architecture. The same inputs give
//! the same key whether they are read from a checked-out folder or from the blobs of a git tree,
//! so a key is known before any checkout.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

/// Lockfiles that take part in the key, in the order they are hashed.
pub const LOCKFILES: &[&str] = &[
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lock",
    "bun.lockb",
];

/// The package.json sections that take part in the key.
pub const DEPENDENCY_SECTIONS: &[&str] = &[
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "overrides",
    "resolutions",
];

/// Version tag mixed into every key; bump it when the key's recipe or the entry layout changes.
const KEY_VERSION: &str = "vibetrees-node-modules-key-v1";

/// The value used for the Node ABI when `node` cannot be run (documented in docs/cache.md):
/// entries made without Node never match entries made with it.
pub const UNKNOWN_NODE_ABI: &str = "unknown";

/// A cache key: the hex BLAKE3 digest (64 lowercase hex digits) of a project's [`KeyInputs`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of the project in `dir` (the folder that holds package.json), read from disk.
    pub fn from_project_dir(dir: &Path) -> Result<CacheKey> {
        Ok(KeyInputs::from_project_dir(dir)?.key())
    }

    /// The key of the project at the root of a git `tree`, read from its blobs (no checkout).
    pub fn from_git_tree(repo: &git2::Repository, tree: &git2::Tree<'_>) -> Result<CacheKey> {
        Ok(KeyInputs::from_git_tree(repo, tree, Path::new(""))?.key())
    }

    /// The key of the project in folder `subdir` of a git `tree` (`""` for the root).
    pub fn from_git_tree_at(
        repo: &git2::Repository,
        tree: &git2::Tree<'_>,
        subdir: &Path,
    ) -> Result<CacheKey> {
        Ok(KeyInputs::from_git_tree(repo, tree, subdir)?.key())
    }

    /// Parses a key from its hex form, refusing anything but 64 lowercase hex digits
    /// (so a key can never name a path outside the cache).
    pub fn parse(hex: &str) -> Result<CacheKey> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(CacheKey(hex.to_string()))
        } else {
            Err(Error::InvalidArgument(format!(
                "cache key '{hex}' is not 64 lowercase hex digits"
            )))
        }
    }

    /// The key as 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One lockfile that took part in a key: its name and the BLAKE3 digest of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockfileDigest {
    /// File name, e.g. `package-lock.json`.
    pub name: String,
    /// Hex BLAKE3 of the file's bytes.
    pub digest: String,
}

/// Everything a key is made of; stored in each entry's manifest so a key can be explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInputs {
    /// The lockfiles present, in [`LOCKFILES`] order.
    pub lockfiles: Vec<LockfileDigest>,
    /// Hex BLAKE3 of the canonical JSON of package.json's dependency sections.
    pub dependencies_digest: String,
    /// `process.versions.modules` of the `node` on PATH, or [`UNKNOWN_NODE_ABI`].
    pub node_abi: String,
    /// Node's name of the platform (`linux`, `darwin`, `win32`, ...).
    pub platform: String,
    /// Node's name of the architecture (`x64`, `arm64`, ...).
    pub arch: String,
}

impl KeyInputs {
    /// Reads the inputs of the project in `dir` from disk.
    pub fn from_project_dir(dir: &Path) -> Result<KeyInputs> {
        let read = |name: &str| -> Result<Option<Vec<u8>>> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io_path("read", path, e)),
            }
        };
        let package_json = read("package.json")?.ok_or_else(|| {
            Error::NotFound(format!(
                "package.json in {} (the project folder of the cache key)",
                dir.display()
            ))
        })?;
        let mut lockfiles = Vec::new();
        for name in LOCKFILES {
            if let Some(bytes) = read(name)? {
                lockfiles.push((name.to_string(), bytes));
            }
        }
        Self::from_contents(
            &dir.join("package.json").display().to_string(),
            &package_json,
            &lockfiles,
        )
    }

    /// Reads the inputs of the project in folder `subdir` of a git `tree` from its blobs. Regular
    /// files only: a committed symbolic link counts as absent (its blob is the link's target
    /// text, not the file's content).
    pub fn from_git_tree(
        repo: &git2::Repository,
        tree: &git2::Tree<'_>,
        subdir: &Path,
    ) -> Result<KeyInputs> {
        let blob = |name: &str| -> Result<Option<Vec<u8>>> {
            let path = subdir.join(name);
            let entry = match tree.get_path(&path) {
                Ok(e) => e,
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
                Err(e) => return Err(Error::git(format!("look up {}", path.display()), e)),
            };
            // a committed link is not the file (its blob is the link's target text)
            if entry.filemode() == 0o120000 {
                return Ok(None);
            }
            let object = entry
                .to_object(repo)
                .map_err(|e| Error::git(format!("read {}", path.display()), e))?;
            match object.as_blob() {
                Some(b) => Ok(Some(b.content().to_vec())),
                None => Ok(None),
            }
        };
        let package_json = blob("package.json")?.ok_or_else(|| {
            Error::NotFound(format!(
                "package.json in git tree {} at '{}'",
                tree.id(),
                subdir.display()
            ))
        })?;
        let mut lockfiles = Vec::new();
        for name in LOCKFILES {
            if let Some(bytes) = blob(name)? {
                lockfiles.push((name.to_string(), bytes));
            }
        }
        let what = format!("package.json of git tree {}", tree.id());
        Self::from_contents(&what, &package_json, &lockfiles)
    }

    /// Builds the inputs from the bytes of package.json and of the lockfiles present
    /// (`(file name, bytes)`), with this machine's Node ABI, platform and architecture.
    pub fn from_contents(
        package_json_name: &str,
        package_json: &[u8],
        lockfiles: &[(String, Vec<u8>)],
    ) -> Result<KeyInputs> {
        let value: serde_json::Value =
            serde_json::from_slice(package_json).map_err(|e| Error::Parse {
                what: package_json_name.to_string(),
                message: e.to_string(),
            })?;
        let mut canonical = String::from("{");
        for section in DEPENDENCY_SECTIONS {
            canonical.push_str(&serde_json::to_string(section)?);
            canonical.push(':');
            match value.get(section) {
                Some(v) => write_canonical(v, &mut canonical)?,
                None => canonical.push_str("null"),
            }
            canonical.push(',');
        }
        canonical.push('}');
        let mut ordered: Vec<LockfileDigest> = Vec::new();
        for name in LOCKFILES {
            if let Some((_, bytes)) = lockfiles.iter().find(|(n, _)| n == name) {
                ordered.push(LockfileDigest {
                    name: name.to_string(),
                    digest: blake3::hash(bytes).to_hex().to_string(),
                });
            }
        }
        Ok(KeyInputs {
            lockfiles: ordered,
            dependencies_digest: blake3::hash(canonical.as_bytes()).to_hex().to_string(),
            node_abi: node_abi().to_string(),
            platform: node_platform().to_string(),
            arch: node_arch().to_string(),
        })
    }

    /// The key these inputs make.
    pub fn key(&self) -> CacheKey {
        let mut h = blake3::Hasher::new();
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update(&[0]);
            h.update(value.as_bytes());
            h.update(&[0]);
        };
        field("version", KEY_VERSION);
        for l in &self.lockfiles {
            field("lockfile", &l.name);
            field("lockfile-digest", &l.digest);
        }
        field("dependencies", &self.dependencies_digest);
        field("node-abi", &self.node_abi);
        field("platform", &self.platform);
        field("arch", &self.arch);
        CacheKey(h.finalize().to_hex().to_string())
    }
}

/// JSON with object keys sorted at every level, whatever serde_json's map order is.
fn write_canonical(v: &serde_json::Value, out: &mut String) -> Result<()> {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k)?);
                out.push(':');
                write_canonical(&map[k.as_str()], out)?;
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other)?),
    }
    Ok(())
}

/// The Node ABI version (`process.versions.modules`) of the `node` on PATH.
///
/// Asked of `node` once per process, and remembered across processes in `node-abi.json` of the
/// first cache folder opened by this process, by the node binary's path, size and mtime (running
/// node costs ~70 ms). `VIBETREES_NODE_ABI` overrides it (machines without node, tests); without node it is
/// [`UNKNOWN_NODE_ABI`].
pub fn node_abi() -> &'static str {
    static ABI: OnceLock<String> = OnceLock::new();
    ABI.get_or_init(|| {
        if let Ok(v) = std::env::var("VIBETREES_NODE_ABI") {
            if !v.trim().is_empty() {
                return v.trim().to_string();
            }
        }
        let Some(node) = find_on_path("node") else {
            return UNKNOWN_NODE_ABI.to_string();
        };
        let stamp = node_stamp(&node);
        let memo = MEMO_DIR.get().map(|d| d.join("node-abi.json"));
        if let (Some(memo), Some(stamp)) = (&memo, &stamp) {
            if let Some(abi) = std::fs::read(memo)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter(|v| v["node"] == stamp.as_str())
                .and_then(|v| v["abi"].as_str().map(str::to_string))
            {
                return abi;
            }
        }
        let abi = std::process::Command::new(&node)
            .args(["-p", "process.versions.modules"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        match abi {
            Some(abi) => {
                if let (Some(memo), Some(stamp)) = (memo, stamp) {
                    let body = serde_json::json!({ "node": stamp, "abi": abi });
                    if let Some(dir) = memo.parent() {
                        let _ = std::fs::create_dir_all(dir);
                        let tmp = dir.join(format!(".node-abi.json.{}", std::process::id()));
                        if std::fs::write(&tmp, body.to_string()).is_ok() {
                            let _ = std::fs::rename(&tmp, &memo);
                        }
                    }
                }
                abi
            }
            None => UNKNOWN_NODE_ABI.to_string(),
        }
    })
}

/// Where [`node_abi`] remembers its answer: the first cache folder this process opened.
static MEMO_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Lets [`node_abi`] remember its answer in `dir` (the first call wins).
pub(crate) fn remember_node_abi_in(dir: &Path) {
    let _ = MEMO_DIR.set(dir.to_path_buf());
}

/// The first executable `name` in a folder of `$PATH`, symlinks resolved.
fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// `path|size|mtime_ns` of the node binary: a new node (upgrade, nvm switch) gets asked again.
fn node_stamp(node: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(node).ok()?;
    Some(format!(
        "{}|{}|{}.{}",
        node.display(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

/// This machine's platform as Node names it (`process.platform`).
pub fn node_platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

/// This machine's architecture as Node names it (`process.arch`).
pub fn node_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_order_and_unrelated_fields_do_not_change_the_key() {
        let a = br#"{"name":"a","version":"1.0.0","dependencies":{"x":"1","y":"2"},"devDependencies":{"z":"3"}}"#;
        let b = br#"{"devDependencies":{"z":"3"},"name":"b","scripts":{"t":"x"},"dependencies":{"y":"2","x":"1"}}"#;
        let c = br#"{"dependencies":{"x":"1","y":"3"},"devDependencies":{"z":"3"}}"#;
        let k = |p: &[u8]| KeyInputs::from_contents("p", p, &[]).unwrap().key();
        assert_eq!(k(a), k(b));
        assert_ne!(k(a), k(c));
        let lock = vec![("package-lock.json".to_string(), b"{}".to_vec())];
        let with_lock = KeyInputs::from_contents("p", a, &lock).unwrap().key();
        assert_ne!(k(a), with_lock);
    }

    #[test]
    fn parse_refuses_paths() {
        assert!(CacheKey::parse("../etc").is_err());
        assert!(CacheKey::parse(&"a".repeat(64)).is_ok());
        assert!(CacheKey::parse(&"A".repeat(64)).is_err());
    }

    #[test]
    fn bad_package_json_is_a_parse_error_naming_the_file() {
        let e = KeyInputs::from_contents("/p/package.json", b"{nope", &[]).unwrap_err();
        assert_eq!(e.code(), "PARSE");
        assert!(e.to_string().contains("/p/package.json"));
    }
}
