//! The one place a git CLI command is built: every `git` the core runs (`worktree add`, the
//! background push, `cat-file` of a big blob) starts from [`git_command`] /
//! [`git_command_async`], which remove from its environment the variables that would point git
//! at another repository, index, object store or work tree than the one its arguments name. A
//! host that runs inside a git hook (where git sets `GIT_DIR` and `GIT_INDEX_FILE`) or a shell
//! with a stray `GIT_WORK_TREE` must not make a creation write into another repository.

use std::ffi::OsStr;

/// Removed from every git command's environment: git's own list of repository-local variables
/// (`git rev-parse --local-env-vars`), plus `GIT_NAMESPACE`, `GIT_CEILING_DIRECTORIES` and
/// `GIT_DISCOVERY_ACROSS_FILESYSTEM`, which change which repository or refs git finds.
/// (`GIT_CONFIG_COUNT` removed disables every `GIT_CONFIG_KEY_<n>`/`GIT_CONFIG_VALUE_<n>`.)
pub const GIT_ENV_REMOVED: &[&str] = &[
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// A blocking git command for `program` with [`GIT_ENV_REMOVED`] removed.
pub fn git_command(program: impl AsRef<OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for var in GIT_ENV_REMOVED {
        cmd.env_remove(var);
    }
    cmd
}

/// An async git command for `program` with [`GIT_ENV_REMOVED`] removed.
pub fn git_command_async(program: impl AsRef<OsStr>) -> tokio::process::Command {
    tokio::process::Command::from(git_command(program))
}
