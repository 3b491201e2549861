//! The worktree's `.env`: `COMPOSE_PROJECT_NAME=vibe_<slug>` then one `<ENV>=<port>` line per
//! allocated port. Written only if absent (an existing `.env` is the user's and is never touched).

use crate::error::{Error, Result};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// `vibe_<slug with every non-alphanumeric character as _>`.
pub fn compose_project_name(slug: &str) -> String {
    let mut s = String::with_capacity(slug.len() + 5);
    s.push_str("vibe_");
    s.extend(
        slug.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    s
}

/// The `.env` text: `COMPOSE_PROJECT_NAME=...` then `<ENV>=<port>` per pair (the first pair of a
/// repeated variable wins), each line ending with `\n`.
pub fn render_env(slug: &str, ports: &[(String, u16)]) -> String {
    let mut out = format!("COMPOSE_PROJECT_NAME={}\n", compose_project_name(slug));
    let mut seen = std::collections::HashSet::new();
    for (var, port) in ports {
        if seen.insert(var.as_str()) {
            out.push_str(&format!("{var}={port}\n"));
        }
    }
    out
}

/// What [`write_env_if_absent`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvFileOutcome {
    /// The file did not exist and was written.
    Written(PathBuf),
    /// A `.env` was already there and was left as is.
    Kept(PathBuf),
}

impl EnvFileOutcome {
    /// The `.env` path.
    pub fn path(&self) -> &Path {
        match self {
            EnvFileOutcome::Written(p) | EnvFileOutcome::Kept(p) => p,
        }
    }
}

/// Writes `<worktree>/.env` unless it exists. A variable name that is not `[A-Za-z0-9_][A-Za-z0-9_.-]*`
/// (a newline, `=`, a space) is [`Error::InvalidArgument`] and nothing is written: no line can be
/// injected. The file appears whole or not at all: it is written
/// to a temp file and moved into place without replacing, which fails (and keeps the existing
/// file) if a `.env` appeared meanwhile.
pub fn write_env_if_absent(
    worktree: &Path,
    slug: &str,
    ports: &[(String, u16)],
) -> Result<EnvFileOutcome> {
    let path = worktree.join(".env");
    if let Some((bad, _)) = ports
        .iter()
        .find(|(var, _)| !crate::services::names::valid_env_name(var))
    {
        return Err(Error::InvalidArgument(format!(
            "variable name {bad:?} cannot go into {}: refused, nothing written",
            path.display()
        )));
    }
    if std::fs::symlink_metadata(&path).is_ok() {
        return Ok(EnvFileOutcome::Kept(path));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".env.vibetrees-")
        .tempfile_in(worktree)
        .map_err(|e| Error::io_path("create temp file in", worktree, e))?;
    std::io::Write::write_all(&mut tmp, render_env(slug, ports).as_bytes())
        .map_err(|e| Error::io_path("write", tmp.path(), e))?;
    // No-clobber rename (renameat2 RENAME_NOREPLACE, or link + unlink): fails if `.env` appeared.
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(EnvFileOutcome::Written(path)),
        Err(e) if e.error.kind() == ErrorKind::AlreadyExists => Ok(EnvFileOutcome::Kept(path)),
        Err(e) => Err(Error::io_path("create", &path, e.error)),
    }
}

/// Reads `KEY=value` pairs of a dotenv text (comments and blank lines skipped, quotes removed).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_name_and_lines() {
        assert_eq!(compose_project_name("feat-x.y_z"), "vibe_feat_x_y_z");
        let text = render_env(
            "feat-a",
            &[("POSTGRES_PORT".into(), 5433), ("API_PORT".into(), 3001)],
        );
        assert_eq!(
            text,
            "COMPOSE_PROJECT_NAME=vibe_feat_a\nPOSTGRES_PORT=5433\nAPI_PORT=3001\n"
        );
        assert_eq!(parse_env(&text)[1], ("POSTGRES_PORT".into(), "5433".into()));
    }
}
