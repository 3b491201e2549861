//! `read-inputs`: what the other steps need from the project, read from the `from` tree with git2
//! before any checkout (package.json, the lockfiles present, the compose file, the cache key).
//! Reads only git objects; must not touch the worktree's folder (it does not exist yet).

use crate::cache::{CacheKey, KeyInputs, LOCKFILES};
use crate::optimizer::TaskError;
use crate::worktree::create::Creation;
use crate::worktree::git;
use crate::{Error, Result};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// The project's inputs, read from the `from` tree. JSON: `{ packageJson: bool, lockfiles,
/// composeFile: bool, cacheKey }`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectInputs {
    /// package.json, parsed (JSON: whether there is one).
    #[serde(rename = "packageJson", serialize_with = "present")]
    pub package_json: Option<Value>,
    /// package.json's text (for MCP discovery).
    #[serde(skip)]
    pub package_json_text: Option<String>,
    /// The lockfiles at the root, in [`LOCKFILES`] order.
    pub lockfiles: Vec<String>,
    /// The compose file's text (JSON: whether there is one).
    #[serde(rename = "composeFile", serialize_with = "present")]
    pub compose_text: Option<String>,
    /// The node_modules cache key, when there is a package.json.
    pub cache_key: Option<CacheKey>,
    /// What the key was computed from (kept with a cache entry, to find near entries).
    #[serde(skip)]
    pub key_inputs: Option<KeyInputs>,
}

fn present<T, S: serde::Serializer>(
    value: &Option<T>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(value.is_some())
}

/// Reads the project's inputs from the creation's `from` tree.
pub fn read_inputs(c: &Creation, (): ()) -> std::result::Result<ProjectInputs, TaskError> {
    Ok(read(c)?)
}

fn read(c: &Creation) -> Result<ProjectInputs> {
    let repo = git::open(&c.state.root)?;
    let tree_id = c.from.tree;
    let text = |path: &str| -> Result<Option<String>> {
        Ok(git::read_blob(&repo, tree_id, path)?.and_then(|b| String::from_utf8(b).ok()))
    };
    let package_json_text = text("package.json")?;
    let package_json = package_json_text
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok());
    let mut lockfiles = Vec::new();
    for l in LOCKFILES {
        if git::read_blob(&repo, tree_id, l)?.is_some() {
            lockfiles.push(l.to_string());
        }
    }
    let compose_text = text(c.state.settings.compose_file())?;
    let key_inputs = key_inputs_if(&repo, tree_id, package_json.is_some())?;
    Ok(ProjectInputs {
        cache_key: key_inputs.as_ref().map(KeyInputs::key),
        package_json,
        package_json_text,
        lockfiles,
        compose_text,
        key_inputs,
    })
}

/// What the node_modules cache key of the project in `tree_id` is computed from, when its
/// package.json parses: the key a creation from that tree restores, and the key a pool spare of
/// that tree is made with (`worktree/pool/`).
pub fn tree_key_inputs(repo: &git2::Repository, tree_id: git2::Oid) -> Result<Option<KeyInputs>> {
    let parses = git::read_blob(repo, tree_id, "package.json")?
        .is_some_and(|b| serde_json::from_slice::<Value>(&b).is_ok());
    key_inputs_if(repo, tree_id, parses)
}

fn key_inputs_if(
    repo: &git2::Repository,
    tree_id: git2::Oid,
    package_json: bool,
) -> Result<Option<KeyInputs>> {
    if !package_json {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id).map_err(|e| Error::git("tree", e))?;
    Ok(Some(KeyInputs::from_git_tree(repo, &tree, Path::new(""))?))
}
