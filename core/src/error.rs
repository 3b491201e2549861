//! The one error type of the core. Every binding (C, Node, Python) maps from it through
//! [`Error::code`], a stable machine-readable string: treat codes as public API and never rename one.

use std::path::PathBuf;

/// Result alias used across the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the core reports. Messages name the thing at fault (the id, the task, the path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A caller passed something that can never work (bad branch name, empty task name, bad option).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A named thing does not exist (profiler id, repository, ref, cache entry, worktree).
    #[error("not found: {0}")]
    NotFound(String),

    /// A named thing exists already where a new one was asked for.
    #[error("already exists: {0}")]
    AlreadyExists(String),

    /// A task graph has a cycle; `path` is the cycle as `a -> b -> a`.
    #[error("dependency cycle: {path}")]
    Cycle {
        /// The cycle, e.g. `a -> b -> c -> a`.
        path: String,
    },

    /// A task graph is malformed: duplicate name, unknown or self dependency.
    #[error("invalid task graph: {0}")]
    InvalidGraph(String),

    /// A task of a graph failed; `task` names it, `message` is its own error message.
    #[error("task '{task}' failed: {message}")]
    TaskFailed {
        /// The failed task's name.
        task: String,
        /// The failed task's own message.
        message: String,
    },

    /// The work was cancelled (Ctrl-C, a dropped future, a stop request) before it finished.
    #[error("cancelled: {0}")]
    Cancelled(String),

    /// An operation ran past its time limit.
    #[error("timed out: {0}")]
    Timeout(String),

    /// A filesystem or OS call failed; `context` says what was being done and on which path.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A git operation failed.
    #[error("git: {context}: {message}")]
    Git {
        /// What was being done.
        context: String,
        /// libgit2's or the git CLI's message.
        message: String,
    },

    /// A child process (npm, git, compose) failed to start or exited with an error.
    #[error("process '{program}' failed: {message}")]
    Process {
        /// The program that was run.
        program: String,
        /// Exit status and the tail of its output.
        message: String,
    },

    /// A node_modules cache entry is unusable (corrupt, mutated, half-written).
    #[error("cache: {0}")]
    Cache(String),

    /// A lock (ports registry, cache entry) could not be taken.
    #[error("lock: {0}")]
    Lock(String),

    /// Malformed JSON/YAML input or a file in a format we could not parse.
    #[error("parse error in {what}: {message}")]
    Parse {
        /// The file or input that failed to parse.
        what: String,
        /// The parser's message.
        message: String,
    },

    /// A bug or broken invariant inside the library (including a caught panic).
    #[error("internal error: {0}")]
    Internal(String),

    /// A worktree is locked (`git worktree lock`) and the caller did not say to remove it anyway.
    #[error("worktree locked: {0}")]
    WorktreeLocked(String),

    /// A worktree has modified, staged or untracked files and the caller did not say `force`.
    #[error("worktree has changes: {0}")]
    WorktreeDirty(String),
    /// A path we refuse to use because others could change what is in it: a cache folder that
    /// belongs to another user or that the group or others may write.
    #[error("unsafe path: {0}")]
    UnsafePath(String),
}

impl Error {
    /// The stable, machine-readable code of this error kind, shared by the C, Node and Python packages.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::AlreadyExists(_) => "ALREADY_EXISTS",
            Error::Cycle { .. } => "CYCLE",
            Error::InvalidGraph(_) => "INVALID_GRAPH",
            Error::TaskFailed { .. } => "TASK_FAILED",
            Error::Cancelled(_) => "CANCELLED",
            Error::Timeout(_) => "TIMEOUT",
            Error::Io { .. } => "IO",
            Error::Git { .. } => "GIT",
            Error::Process { .. } => "PROCESS",
            Error::Cache(_) => "CACHE",
            Error::Lock(_) => "LOCK",
            Error::Parse { .. } => "PARSE",
            Error::Internal(_) => "INTERNAL",
            Error::WorktreeLocked(_) => "WORKTREE_LOCKED",
            Error::WorktreeDirty(_) => "WORKTREE_DIRTY",
            Error::UnsafePath(_) => "UNSAFE_PATH",
        }
    }

    /// Every code [`Error::code`] can return, for bindings that declare one class per kind.
    pub const ALL_CODES: &'static [&'static str] = &[
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "CYCLE",
        "INVALID_GRAPH",
        "TASK_FAILED",
        "CANCELLED",
        "TIMEOUT",
        "IO",
        "GIT",
        "PROCESS",
        "CACHE",
        "LOCK",
        "PARSE",
        "INTERNAL",
        "WORKTREE_LOCKED",
        "WORKTREE_DIRTY",
        "UNSAFE_PATH",
    ];

    /// An [`Error::Io`] whose context names what was done to which path.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// An [`Error::Io`] for `op` on `path`, e.g. `Error::io_path("create directory", &p, e)`.
    pub fn io_path(op: &str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context: format!("{op} {}", path.into().display()),
            source,
        }
    }

    /// An [`Error::Git`] from a libgit2 error.
    pub fn git(context: impl Into<String>, err: git2::Error) -> Self {
        Error::Git {
            context: context.into(),
            message: err.message().to_string(),
        }
    }

    /// The message with its whole cause chain, `outer: cause: cause`, for C and logs.
    pub fn full_message(&self) -> String {
        let mut msg = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let s_str = s.to_string();
            if !msg.contains(&s_str) {
                msg.push_str(": ");
                msg.push_str(&s_str);
            }
            src = s.source();
        }
        msg
    }

    /// True for a full disk (ENOSPC/EDQUOT), so callers can name it plainly.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Parse {
            what: "JSON".into(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_listed() {
        let samples = [
            Error::InvalidArgument("x".into()),
            Error::NotFound("x".into()),
            Error::AlreadyExists("x".into()),
            Error::Cycle {
                path: "a -> b -> a".into(),
            },
            Error::InvalidGraph("x".into()),
            Error::TaskFailed {
                task: "t".into(),
                message: "m".into(),
            },
            Error::Cancelled("x".into()),
            Error::Timeout("x".into()),
            Error::io("read", std::io::Error::from_raw_os_error(libc::ENOENT)),
            Error::Git {
                context: "c".into(),
                message: "m".into(),
            },
            Error::Process {
                program: "npm".into(),
                message: "m".into(),
            },
            Error::Cache("x".into()),
            Error::Lock("x".into()),
            Error::Parse {
                what: "f".into(),
                message: "m".into(),
            },
            Error::Internal("x".into()),
            Error::WorktreeLocked("x".into()),
            Error::WorktreeDirty("x".into()),
            Error::UnsafePath("x".into()),
        ];
        let codes: Vec<_> = samples.iter().map(|e| e.code()).collect();
        assert_eq!(codes, Error::ALL_CODES);
    }

    #[test]
    fn messages_name_the_thing() {
        let e = Error::TaskFailed {
            task: "install".into(),
            message: "exit 1".into(),
        };
        assert_eq!(e.to_string(), "task 'install' failed: exit 1");
        let e = Error::io_path(
            "create directory",
            "/x/y",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(e.is_disk_full());
        assert!(e.full_message().starts_with("create directory /x/y: "));
    }
}
