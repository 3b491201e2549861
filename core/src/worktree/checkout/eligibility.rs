//! Whether a checkout needs the git CLI: what ours does not do (attributes that change the bytes
//! written, eol conversion, filters, sparse checkout, no symlinks, ...) sends the whole checkout to
//! `git worktree add`. [`cli_reason`] decides for the repository and the root tree before
//! anything is written; [`attributes_change_checkout`] and [`unsafe_name`] are asked by the
//! writer for what it meets mid-way (a nested `.gitattributes`, a name git refuses).
//!
//! Owns: those decisions. Must not touch anything: it only reads config, attribute files and
//! objects.

use super::expand_home;
use crate::{Error, Result};
use git2::{Oid, Repository};
use std::path::{Path, PathBuf};

/// Why the repository needs the git CLI's checkout for `tree`, or `None` when ours is exactly
/// equivalent: no attributes that change the checkout ([`attributes_change_checkout`]) in the
/// root `.gitattributes`, `info/attributes`, the global and system attribute files; no
/// `core.autocrlf`/`core.eol` conversion, no `filter.*`, no sparse checkout or per-worktree
/// config, `core.symlinks` not false, no `submodule.recurse` (a `post-checkout` hook is run by
/// us: [`super::run_post_checkout_hook`]). Read during the checkout instead
/// ([`super::CheckoutError::NeedsCli`]): nested `.gitattributes`, and two names that are one file
/// on the worktree's filesystem (`core.ignorecase`, `core.precomposeunicode` and the probed
/// filesystem decide which: [`super::NameFolding`]), where git would write one over the other.
pub fn cli_reason(repo: &Repository, tree: Oid) -> Result<Option<String>> {
    let cfg = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map_err(|e| Error::git("read git config", e))?;
    let s = |k: &str| cfg.get_string(k).ok();
    let b = |k: &str| cfg.get_bool(k).ok();
    if let Some(v) = s("core.autocrlf")
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "false" | "no" | "off" | "0"
        )
    {
        return Ok(Some(format!("core.autocrlf={v}")));
    }
    if let Some(v) = s("core.eol")
        && !matches!(v.to_ascii_lowercase().as_str(), "lf" | "native")
    {
        return Ok(Some(format!("core.eol={v}")));
    }
    for (key, unsafe_when) in [
        ("core.sparseCheckout", true),
        ("extensions.worktreeConfig", true),
        ("core.symlinks", false),
        ("submodule.recurse", true),
    ] {
        if b(key) == Some(unsafe_when) {
            return Ok(Some(format!("{key}={unsafe_when}")));
        }
    }
    {
        let mut entries = cfg
            .entries(Some("^filter\\."))
            .map_err(|e| Error::git("read git config", e))?;
        if let Some(Ok(e)) = entries.next() {
            return Ok(Some(format!(
                "config {} is set",
                e.name().unwrap_or("filter.*")
            )));
        }
    }
    let common = repo.commondir().to_path_buf();
    let mut attr_files = vec![common.join("info/attributes"), "/etc/gitattributes".into()];
    match s("core.attributesFile") {
        Some(p) => attr_files.push(expand_home(&p)),
        None => {
            let xdg = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
            if let Some(x) = xdg {
                attr_files.push(x.join("git/attributes"));
            }
        }
    }
    for f in attr_files {
        if let Ok(text) = std::fs::read(&f)
            && attributes_change_checkout(&text)
        {
            return Ok(Some(format!(
                "attributes file {} changes the checkout",
                f.display()
            )));
        }
    }
    let t = repo
        .find_tree(tree)
        .map_err(|e| Error::git(format!("tree {tree}"), e))?;
    if let Some(e) = t.get_name(".gitattributes") {
        let text = (e.filemode() & 0o170000 == 0o100000)
            .then(|| repo.find_blob(e.id()).ok())
            .flatten();
        if text.is_none_or(|b| attributes_change_checkout(b.content())) {
            return Ok(Some(".gitattributes changes the checkout".into()));
        }
    }
    Ok(None)
}

/// True if gitattributes `text` can change the bytes a checkout writes here (where
/// [`cli_reason`] has ruled out `core.autocrlf`, `core.eol` other than lf and any `filter.*`
/// config): `eol` set to anything but `lf`, `ident`, `working-tree-encoding`, `filter`, or a
/// macro definition (`[attr]`). `text`, `binary`, `diff`, `merge`, `linguist-*`, `export-*`,
/// `whitespace` and the like change nothing on checkout (with the native eol being LF, text files
/// are written as stored). Conservative: any token after the pattern is read as an attribute.
pub fn attributes_change_checkout(text: &[u8]) -> bool {
    for line in text.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("[attr]") {
            return true;
        }
        for token in line.split_whitespace().skip(1) {
            let set = !token.starts_with(['-', '!']);
            let (key, value) = token
                .trim_start_matches(['-', '!'])
                .split_once('=')
                .unwrap_or((token.trim_start_matches(['-', '!']), ""));
            let changes = match key {
                "eol" => set && value != "lf",
                "ident" | "filter" | "working-tree-encoding" => set,
                _ => false,
            };
            if changes {
                return true;
            }
        }
    }
    false
}

/// A tree entry name git itself would refuse to check out (or that could escape the folder).
pub(crate) fn unsafe_name(name: &[u8]) -> bool {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    let trimmed = {
        let mut t = &lower[..];
        while let [rest @ .., b' ' | b'.'] = t {
            t = rest;
        }
        t
    };
    trimmed == b".git" || lower.starts_with(b"git~") || name.contains(&b'\\')
}

#[cfg(test)]
mod tests {
    use super::super::plain_name;
    use super::*;

    #[test]
    fn names_git_would_refuse_go_to_the_cli() {
        for bad in [
            &b".git"[..],
            b".GIT",
            b".git. ",
            b"git~1",
            b"..",
            b".",
            b"",
            b"a\\b",
        ] {
            assert!(unsafe_name(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        for ok in [&b".gitignore"[..], b".github", b"src", b"a.git", b"git"] {
            assert!(!unsafe_name(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for changes in [
            &b"*.js text eol=crlf\n"[..],
            b"* ident\n",
            b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
            b"*.txt working-tree-encoding=UTF-16\n",
            b"[attr]mine eol=crlf\n",
            b"a eol\n",
        ] {
            assert!(
                attributes_change_checkout(changes),
                "{:?}",
                String::from_utf8_lossy(changes)
            );
        }
        for harmless in [
            &b"* text=auto eol=lf\n"[..],
            b"# comment eol=crlf\n\n*.png binary\n*.sh -crlf\n",
            b"docs/** linguist-documentation export-ignore -diff\n*.c whitespace=tab -ident !eol\n",
        ] {
            assert!(
                !attributes_change_checkout(harmless),
                "{:?}",
                String::from_utf8_lossy(harmless)
            );
        }
        assert!(plain_name("feature-x_1.2"));
        for bad in ["", ".hidden", "a..b", "x.lock", "sp ace", "ünï"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }
}
