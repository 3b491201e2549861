//! Where hooks are declared, read into [`Hook`]s: the host's option, then the repository's
//! `vibetrees.json`, `.config/wt.toml` (worktrunk) and `conductor.json` (Conductor). The
//! repository files are read from the `from` tree of a creation (or, for the CLI, the working
//! files of the main worktree, never through a link). Mapping, in docs/include.md:
//!
//! | file | key | phase |
//! | --- | --- | --- |
//! | `vibetrees.json` | `hooks.post-create` / `hooks.post-ready` | the same |
//! | `.config/wt.toml` | `post-create` (and its newer name `pre-start`) | post-create |
//! | `.config/wt.toml` | `post-start` | post-ready |
//! | `conductor.json` | `scripts.setup` | post-create |

use super::{DEFAULT_HOOK_TIMEOUT, Hook, HookDef, HookPhase, HookSource, HooksConfig};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// The hooks of the host's `hooks` option.
pub fn host_hooks(cfg: &HooksConfig) -> Result<Vec<Hook>> {
    let mut out = Vec::new();
    add_config(&mut out, cfg, HookSource::Host, "host")?;
    Ok(out)
}

/// The repository's hooks, reading each config file through `read(path)` (`None`: absent).
pub fn repository_hooks(read: &dyn Fn(&str) -> Result<Option<String>>) -> Result<Vec<Hook>> {
    let mut out = Vec::new();
    if let Some(text) = read("vibetrees.json")? {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| parse("vibetrees.json", e))?;
        if let Some(h) = v.get("hooks") {
            let cfg: HooksConfig =
                serde_json::from_value(h.clone()).map_err(|e| parse("vibetrees.json", e))?;
            add_config(&mut out, &cfg, HookSource::VibetreesJson, "project")?;
        }
    }
    if let Some(text) = read(".config/wt.toml")? {
        wt_toml(&mut out, &text)?;
    }
    if let Some(text) = read("conductor.json")? {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| parse("conductor.json", e))?;
        match v.pointer("/scripts/setup") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => {}
            Some(serde_json::Value::String(s)) => push(
                &mut out,
                named(
                    s,
                    HookPhase::PostCreate,
                    HookSource::ConductorJson,
                    "conductor-setup",
                ),
            )?,
            Some(other) => {
                return Err(Error::Parse {
                    what: "conductor.json".into(),
                    message: format!("scripts.setup must be a string, not {other}"),
                });
            }
        }
    }
    Ok(out)
}

/// The repository's hooks in the commit tree `tree`.
pub fn repository_hooks_in_tree(repo: &git2::Repository, tree: git2::Oid) -> Result<Vec<Hook>> {
    repository_hooks(&|p| crate::worktree::include::text_in_tree(repo, tree, p))
}

/// The repository's hooks in the working files of `root`, read beneath it without following a
/// link.
pub fn repository_hooks_in_dir(root: &Path) -> Result<Vec<Hook>> {
    let dir = crate::platform::ConfinedDir::open(root)?;
    repository_hooks(&|p| match dir.read_if_exists(p)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b).map(Some).map_err(|_| Error::Parse {
            what: p.to_string(),
            message: "not UTF-8 text".into(),
        }),
    })
}

fn parse(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Parse {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn named(command: &str, phase: HookPhase, source: HookSource, name: &str) -> Hook {
    Hook {
        name: name.to_string(),
        command: command.to_string(),
        phase,
        source,
        optional: false,
        after: None,
        timeout: DEFAULT_HOOK_TIMEOUT,
    }
}

/// Adds a hook, refusing an empty command and making its name unique (`-2`, `-3`, ...).
fn push(out: &mut Vec<Hook>, mut hook: Hook) -> Result<()> {
    if hook.command.trim().is_empty() {
        return Err(Error::Parse {
            what: hook.source.as_str().to_string(),
            message: format!("hook {:?} has an empty command", hook.name),
        });
    }
    let taken: HashSet<&str> = out.iter().map(|h| h.name.as_str()).collect();
    if taken.contains(hook.name.as_str()) {
        let base = hook.name.clone();
        let mut n = 2;
        while taken.contains(format!("{base}-{n}").as_str()) {
            n += 1;
        }
        hook.name = format!("{base}-{n}");
    }
    out.push(hook);
    Ok(())
}

fn add_config(
    out: &mut Vec<Hook>,
    cfg: &HooksConfig,
    source: HookSource,
    prefix: &str,
) -> Result<()> {
    for (phase, defs) in [
        (HookPhase::PostCreate, &cfg.post_create),
        (HookPhase::PostReady, &cfg.post_ready),
    ] {
        for (i, def) in defs.iter().enumerate() {
            let default_name = format!("{prefix}-{}-{}", phase.as_str(), i + 1);
            let hook = match def {
                HookDef::Command(c) => named(c, phase, source, &default_name),
                HookDef::Full(spec) => {
                    let timeout = match spec.timeout_ms {
                        None => DEFAULT_HOOK_TIMEOUT,
                        Some(ms) if ms.is_finite() && ms > 0.0 => {
                            Duration::from_secs_f64(ms / 1000.0)
                        }
                        Some(ms) => {
                            return Err(Error::InvalidArgument(format!(
                                "hook {default_name}: timeoutMs must be positive, not {ms}"
                            )));
                        }
                    };
                    Hook {
                        name: spec.name.clone().unwrap_or(default_name),
                        command: spec.command.clone(),
                        phase,
                        source,
                        optional: spec.optional,
                        after: spec.after.clone(),
                        timeout,
                    }
                }
            };
            push(out, hook)?;
        }
    }
    Ok(())
}

/// worktrunk's project config: `post-create`/`pre-start` (blocking) and `post-start`
/// (background), each a string, a table of named commands (run concurrently), or an array of
/// such tables (blocks run in order: each block's hooks run after the previous block's).
fn wt_toml(out: &mut Vec<Hook>, text: &str) -> Result<()> {
    let doc: toml::Table = text.parse().map_err(|e| parse(".config/wt.toml", e))?;
    for (key, phase) in [
        ("post-create", HookPhase::PostCreate),
        ("pre-start", HookPhase::PostCreate),
        ("post-start", HookPhase::PostReady),
    ] {
        let Some(v) = doc.get(key) else { continue };
        let blocks: Vec<toml::Table> = match v {
            toml::Value::String(s) => {
                push(
                    out,
                    named(s, phase, HookSource::WtToml, &format!("wt-{key}")),
                )?;
                continue;
            }
            toml::Value::Table(t) => vec![t.clone()],
            toml::Value::Array(a) => a
                .iter()
                .map(|b| match b {
                    toml::Value::Table(t) => Ok(t.clone()),
                    other => Err(parse(
                        ".config/wt.toml",
                        format!("{key}: a block is {other}"),
                    )),
                })
                .collect::<Result<_>>()?,
            other => return Err(parse(".config/wt.toml", format!("{key} is {other}"))),
        };
        let mut previous: Vec<String> = Vec::new();
        for block in blocks {
            let mut this = Vec::new();
            for (name, cmd) in block {
                let toml::Value::String(cmd) = cmd else {
                    return Err(parse(
                        ".config/wt.toml",
                        format!("{key}.{name} is not a string"),
                    ));
                };
                let mut hook = named(&cmd, phase, HookSource::WtToml, &format!("wt-{name}"));
                if phase == HookPhase::PostCreate && !previous.is_empty() {
                    hook.after = Some(previous.iter().map(|n| format!("hook:{n}")).collect());
                }
                push(out, hook)?;
                this.push(out.last().map(|h| h.name.clone()).unwrap_or_default());
            }
            previous = this;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(files: &[(&str, &str)]) -> Result<Vec<Hook>> {
        repository_hooks(&|p| {
            Ok(files
                .iter()
                .find(|(n, _)| *n == p)
                .map(|(_, t)| t.to_string()))
        })
    }

    #[test]
    fn the_three_files_map_to_phases() {
        let hooks = from(&[
            (
                "vibetrees.json",
                r#"{"name": "x", "hooks": {"post-create": ["make gen", {"command": "seed", "name": "seed", "optional": true}], "post-ready": ["npm run dev"]}}"#,
            ),
            (
                ".config/wt.toml",
                "post-create = \"npm ci\"\n[post-start]\nserver = \"npm run dev\"\n",
            ),
            ("conductor.json", r#"{"scripts": {"setup": "./setup.sh", "run": "x"}}"#),
        ])
        .unwrap();
        let got: Vec<(&str, &str, HookPhase, HookSource, bool)> = hooks
            .iter()
            .map(|h| {
                (
                    h.name.as_str(),
                    h.command.as_str(),
                    h.phase,
                    h.source,
                    h.optional,
                )
            })
            .collect();
        use HookPhase::*;
        use HookSource::*;
        assert_eq!(
            got,
            vec![
                (
                    "project-post-create-1",
                    "make gen",
                    PostCreate,
                    VibetreesJson,
                    false
                ),
                ("seed", "seed", PostCreate, VibetreesJson, true),
                (
                    "project-post-ready-1",
                    "npm run dev",
                    PostReady,
                    VibetreesJson,
                    false
                ),
                ("wt-post-create", "npm ci", PostCreate, WtToml, false),
                ("wt-server", "npm run dev", PostReady, WtToml, false),
                (
                    "conductor-setup",
                    "./setup.sh",
                    PostCreate,
                    ConductorJson,
                    false
                ),
            ]
        );
    }

    #[test]
    fn wt_blocks_run_in_order_and_bad_files_are_named() {
        let hooks = from(&[(
            ".config/wt.toml",
            "[[pre-start]]\na = \"x\"\nb = \"y\"\n[[pre-start]]\nc = \"z\"\n",
        )])
        .unwrap();
        assert_eq!(hooks[2].name, "wt-c");
        assert_eq!(
            hooks[2].after,
            Some(vec!["hook:wt-a".to_string(), "hook:wt-b".to_string()])
        );
        let e = from(&[("vibetrees.json", "{\"hooks\": {\"post-create\": [1]}}")]).unwrap_err();
        assert_eq!(e.code(), "PARSE");
        assert!(e.to_string().contains("vibetrees.json"), "{e}");
        let e = from(&[(".config/wt.toml", "post-create = [")]).unwrap_err();
        assert!(e.to_string().contains("wt.toml"), "{e}");
        let e = from(&[("conductor.json", r#"{"scripts": {"setup": 3}}"#)]).unwrap_err();
        assert!(e.to_string().contains("scripts.setup"), "{e}");
    }
}
