//! The built-in steps of a creation, one file each. Every step is a plain function from its
//! typed inputs (its dependencies' outputs) to a typed output, which names the step in
//! `create/graph.rs`'s table. To add a step: write its function and output type here, add the
//! output to the `outputs!` table in `graph.rs`, and add the function to the graph in
//! `create/mod.rs` (`built_in_steps`). Steps must not reach each other except through their
//! inputs.

mod bootstrap;
mod cache_restore;
mod containers;
mod copy_ignored;
mod git_add;
mod hooks;
mod inputs;
mod ports_env_mcp;
mod services;

#[cfg(test)]
pub use bootstrap::Bootstrap;
pub use bootstrap::{Bootstrapped, bootstrap};
pub use cache_restore::{CacheRestored, restore};
pub use containers::{CriticalStarted, ImagesPulled, pull_images, start_critical};
pub use copy_ignored::copy_ignored;
pub use git_add::{WorktreeAdded, add_worktree};
pub use hooks::{
    CreationHooks, add_post_create, plan_hooks, ports_of, task_name as hook_task_name,
};
pub use inputs::{ProjectInputs, read_inputs, tree_key_inputs};
pub use ports_env_mcp::{
    EnvWritten, McpConfigured, PortsAllocated, allocate_ports, configure_mcp, write_env,
};
pub use services::{ServicesLoaded, load_services};

#[cfg(test)]
mod tests {
    //! Each output's JSON is exactly what the step returned before outputs were typed.
    use super::*;
    use crate::worktree::checkout::CheckoutMethod;
    use crate::worktree::outcome::CacheOutcome;
    use serde_json::json;

    fn json_of<T: serde::Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn outputs_serialize_to_the_step_shapes() {
        let key = crate::cache::CacheKey::parse(&"c".repeat(64)).unwrap();
        let inputs = ProjectInputs {
            package_json: Some(json!({"name": "x"})),
            package_json_text: Some("{}".into()),
            lockfiles: vec!["package-lock.json".into()],
            compose_text: None,
            cache_key: Some(key.clone()),
            key_inputs: None,
        };
        assert_eq!(
            json_of(&inputs),
            json!({ "packageJson": true, "lockfiles": ["package-lock.json"],
                    "composeFile": false, "cacheKey": key.as_str() })
        );
        let added = WorktreeAdded {
            path: "/w/x".into(),
            branch: "x".into(),
            created_branch: true,
            checkout_workers: 2,
            checkout: CheckoutMethod::Git2Parallel,
            checkout_cli_because: None,
            checkout_phases_ms: [("register", 1.25), ("files", 3.5)].into_iter().collect(),
            pool: None,
        };
        assert_eq!(
            json_of(&added),
            json!({ "path": "/w/x", "branch": "x", "createdBranch": true, "checkoutWorkers": 2,
                    "checkout": "git2-parallel", "checkoutCliBecause": null,
                    "checkoutPhasesMs": { "register": 1.25, "files": 3.5 } })
        );
        let miss = CacheRestored {
            outcome: CacheOutcome::Miss,
            files: None,
            method: None,
            entry: None,
            error: Some("bad entry".into()),
            key: Some(key.clone()),
            staged: None,
        };
        assert_eq!(
            json_of(&miss),
            json!({ "outcome": "miss", "error": "bad entry" })
        );
        let hit = CacheRestored {
            outcome: CacheOutcome::Hit,
            files: Some(3),
            method: Some("hardlink".into()),
            entry: Some(key.clone()),
            error: None,
            key: Some(key.clone()),
            staged: Some("/s".into()),
        };
        assert_eq!(
            json_of(&hit),
            json!({ "outcome": "hit", "files": 3, "method": "hardlink", "entry": key.as_str() })
        );
        let boot = |outcome| Bootstrapped {
            outcome,
            install_command: None,
            install_error: None,
            populate: false,
            near_failed: false,
        };
        assert_eq!(json_of(&boot(Bootstrap::Hit)), json!({ "outcome": "hit" }));
        assert_eq!(
            json_of(&boot(Bootstrap::NoPackage)),
            json!({ "outcome": "none" })
        );
        assert_eq!(
            json_of(&boot(Bootstrap::Near { command: None })),
            json!({ "outcome": "near", "command": null })
        );
        assert_eq!(
            json_of(&boot(Bootstrap::Failed {
                command: "npm ci".into(),
                error: "boom".into()
            })),
            json!({ "outcome": "failed", "command": "npm ci", "error": "boom" })
        );
        assert_eq!(
            json_of(&ImagesPulled::Skipped {
                skipped: "no container runtime"
            }),
            json!({ "skipped": "no container runtime" })
        );
        assert_eq!(
            json_of(&CriticalStarted::NoneCritical { started: [] }),
            json!({ "started": [] })
        );
        assert_eq!(
            json_of(&EnvWritten {
                path: "/w/x/.env".into(),
                written: true
            }),
            json!({ "path": "/w/x/.env", "written": true })
        );
        assert_eq!(
            json_of(&McpConfigured {
                path: "/w/x/.claude/settings.json".into(),
                servers: vec!["postgres".into()]
            }),
            json!({ "path": "/w/x/.claude/settings.json", "servers": ["postgres"] })
        );
    }
}
