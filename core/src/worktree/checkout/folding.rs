//! Names a filesystem takes for one: APFS and HFS+ (macOS's defaults), NTFS and exFAT ignore
//! case, and APFS and HFS+ ignore Unicode normalisation (`é` composed or as `e` + accent). A tree
//! with two names that are one file there (`README.md` and `readme.md`) must be checked out as git
//! does it there (git writes both, the second over the first, and warns), so the writer sends such
//! a tree to the git CLI, as it does for attributes.
//!
//! How names compare is probed once per folder and process, where the worktrees go
//! ([`NameFolding::of_folder`]: a file made and looked for under another case and another
//! normalisation), and the repository's `core.ignorecase` and `core.precomposeunicode` count the
//! same way ([`NameFolding::from_config`]).
//!
//! Owns: that probe (one file, made and removed in the folder it is given) and the comparison of
//! names. Must not touch anything else.

use rustix::fs::{AtFlags, Mode, OFlags};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use unicode_normalization::UnicodeNormalization;

/// Which differences between two names a filesystem ignores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameFolding {
    /// Names that differ only in case name one file.
    pub case: bool,
    /// Names that differ only in Unicode normalisation (NFC/NFD) name one file.
    pub unicode: bool,
}

/// Probed folders: (device, inode) → how names compare there.
static PROBED: LazyLock<Mutex<HashMap<(u64, u64), NameFolding>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl NameFolding {
    /// Every name is its own (Linux's ext4, XFS, btrfs).
    pub const EXACT: NameFolding = NameFolding {
        case: false,
        unicode: false,
    };

    /// True if some names differ and still name one file.
    pub fn folds(self) -> bool {
        self.case || self.unicode
    }

    /// What either folds.
    pub fn or(self, other: NameFolding) -> NameFolding {
        NameFolding {
            case: self.case || other.case,
            unicode: self.unicode || other.unicode,
        }
    }

    /// The repository's say: `core.ignorecase=true` folds case, `core.precomposeunicode=true`
    /// folds normalisation (git on macOS sets both in the repositories it makes there).
    pub fn from_config(cfg: &git2::Config) -> NameFolding {
        NameFolding {
            case: cfg.get_bool("core.ignorecase").unwrap_or(false),
            unicode: cfg.get_bool("core.precomposeunicode").unwrap_or(false),
        }
    }

    /// How the filesystem of folder `dir` compares names: a file `.vibetrees-probe-<pid>-<n>-é`
    /// (composed `é`) is made there, looked for in upper case and with `é` decomposed, then
    /// removed. Probed once per folder (by device and inode) and process.
    pub fn of_folder(dir: &Path) -> std::io::Result<NameFolding> {
        let fd = rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let key = (st.st_dev as u64, st.st_ino as u64);
        if let Some(f) = PROBED.lock().unwrap().get(&key) {
            return Ok(*f);
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempts = 0;
        let (stem, file) = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let stem = format!(".vibetrees-probe-{}-{n}-", std::process::id());
            let made = rustix::fs::openat(
                &fd,
                format!("{stem}\u{e9}"),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            );
            match made {
                Ok(file) => break (stem, file),
                Err(rustix::io::Errno::EXIST) if attempts < 16 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        };
        drop(file);
        let exists =
            |name: String| rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok();
        let folding = NameFolding {
            case: exists(format!("{}\u{e9}", stem.to_ascii_uppercase())),
            unicode: exists(format!("{stem}e\u{301}")),
        };
        rustix::fs::unlinkat(&fd, format!("{stem}\u{e9}"), AtFlags::empty())?;
        PROBED.lock().unwrap().insert(key, folding);
        Ok(folding)
    }

    /// The form of `name` under which such a filesystem finds it: lower case when case folds,
    /// decomposed (NFD) when normalisation folds. Names that are not UTF-8 fold ASCII case only.
    fn key(self, name: &[u8]) -> Cow<'_, [u8]> {
        if name.is_ascii() || std::str::from_utf8(name).is_err() {
            return if self.case && name.iter().any(u8::is_ascii_uppercase) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            };
        }
        let s = std::str::from_utf8(name).unwrap_or_default();
        let mut key: String = if self.unicode {
            s.nfd().collect()
        } else {
            s.to_owned()
        };
        if self.case {
            key = key.chars().flat_map(char::to_lowercase).collect();
            if self.unicode {
                key = key.nfd().collect();
            }
        }
        Cow::Owned(key.into_bytes())
    }

    /// Two of `names` (the entries of one folder) that are one file under this folding, if any.
    pub fn collision<'n>(
        self,
        names: impl IntoIterator<Item = &'n [u8]>,
    ) -> Option<(&'n [u8], &'n [u8])> {
        if !self.folds() {
            return None;
        }
        let mut seen: HashMap<Cow<'n, [u8]>, &'n [u8]> = HashMap::new();
        for name in names {
            if let Some(first) = seen.insert(self.key(name), name) {
                return Some((first, name));
            }
        }
        None
    }
}

impl std::fmt::Display for NameFolding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.case, self.unicode) {
            (true, true) => "names that differ in case or Unicode normalisation are one file",
            (true, false) => "names that differ in case are one file",
            (false, true) => "names that differ in Unicode normalisation are one file",
            (false, false) => "every name is its own file",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins_are_found_under_each_folding() {
        let case = NameFolding {
            case: true,
            unicode: false,
        };
        let unicode = NameFolding {
            case: false,
            unicode: true,
        };
        let both = case.or(unicode);
        let names = |v: &[&'static str]| v.iter().map(|s| s.as_bytes()).collect::<Vec<_>>();
        let twins = names(&["README.md", "readme.md", "src"]);
        assert_eq!(
            case.collision(twins.clone()),
            Some((&b"README.md"[..], &b"readme.md"[..]))
        );
        assert_eq!(unicode.collision(twins.clone()), None);
        assert_eq!(NameFolding::EXACT.collision(twins), None);
        let nfc_nfd = names(&["caf\u{e9}.txt", "cafe\u{301}.txt"]);
        assert!(unicode.collision(nfc_nfd.clone()).is_some());
        assert_eq!(case.collision(nfc_nfd.clone()), None);
        assert!(both.collision(nfc_nfd).is_some());
        // case and normalisation at once: É composed vs é decomposed
        let mixed = names(&["\u{c9}t\u{e9}", "e\u{301}te\u{301}"]);
        assert_eq!(case.collision(mixed.clone()), None);
        assert_eq!(unicode.collision(mixed.clone()), None);
        assert!(both.collision(mixed).is_some());
        assert_eq!(
            both.collision(names(&["a", "b", "\u{e9}", "f\u{fc}r"])),
            None
        );
        // not UTF-8: ASCII case only
        let raw: Vec<&[u8]> = vec![b"A\xff", b"a\xff", b"b"];
        assert!(case.collision(raw).is_some());
    }

    #[test]
    fn a_linux_folder_folds_nothing_and_the_probe_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            NameFolding::of_folder(dir.path()).unwrap(),
            NameFolding::EXACT
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // cached: a second probe of the same folder makes nothing
        assert_eq!(
            NameFolding::of_folder(dir.path()).unwrap(),
            NameFolding::EXACT
        );
    }
}
