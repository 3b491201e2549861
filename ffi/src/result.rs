//! `vt_result`: the status every fallible `vt_` function returns, one value per core error code.

use std::ffi::c_char;

/// The status of a `vt_` call. `VT_OK` (0) is success; every other value is a failure whose message
/// (with its whole cause chain) `vt_last_error_message` returns on the same thread.
///
/// Values 1..=18 are the core's error kinds, one-to-one with the stable codes the Node and Python
/// packages use (`vt_result_code` gives the code string, e.g. `"NOT_FOUND"`). Values from 100 are
/// failures of the C call itself (a NULL pointer, bad UTF-8, a buffer too small, a caught panic).
/// The numbers are stable: new kinds get new numbers, none is reused.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum vt_result {
    /// Success.
    VT_OK = 0,
    /// `INVALID_ARGUMENT`: a value that can never work (bad branch name, empty task name, bad option).
    VT_INVALID_ARGUMENT = 1,
    /// `NOT_FOUND`: a named thing does not exist (profiler id, repository, ref, cache entry, worktree).
    VT_NOT_FOUND = 2,
    /// `ALREADY_EXISTS`: a named thing exists already where a new one was asked for.
    VT_ALREADY_EXISTS = 3,
    /// `CYCLE`: a task graph has a cycle; the message shows it as `a -> b -> a`.
    VT_CYCLE = 4,
    /// `INVALID_GRAPH`: a task graph is malformed (duplicate name, unknown or self dependency).
    VT_INVALID_GRAPH = 5,
    /// `TASK_FAILED`: a task of a graph failed; the message names it and carries its own message.
    VT_TASK_FAILED = 6,
    /// `CANCELLED`: the work was cancelled before it finished.
    VT_CANCELLED = 7,
    /// `TIMEOUT`: an operation ran past its time limit.
    VT_TIMEOUT = 8,
    /// `IO`: a filesystem or OS call failed; the message names the path.
    VT_IO = 9,
    /// `GIT`: a git operation failed.
    VT_GIT = 10,
    /// `PROCESS`: a child process (npm, git, compose) failed to start or exited with an error.
    VT_PROCESS = 11,
    /// `CACHE`: a node_modules cache entry is unusable.
    VT_CACHE = 12,
    /// `LOCK`: a lock (ports registry, cache entry) could not be taken.
    VT_LOCK = 13,
    /// `PARSE`: malformed JSON/YAML input (for example an options string that is not valid JSON).
    VT_PARSE = 14,
    /// `INTERNAL`: a bug or broken invariant inside the library.
    VT_INTERNAL = 15,
    /// `WORKTREE_LOCKED`: the worktree is locked (`git worktree lock`); removing it needs `forceLocked`.
    VT_WORKTREE_LOCKED = 16,
    /// `WORKTREE_DIRTY`: the worktree has modified, staged or untracked files; removing it needs `force`.
    VT_WORKTREE_DIRTY = 17,
    /// `UNSAFE_PATH`: a path others could change (a cache folder of another user, or writable by
    /// the group or others) is refused; nothing was done in it.
    VT_UNSAFE_PATH = 18,
    /// `NULL_ARGUMENT`: a pointer argument that must not be NULL was NULL; nothing was done.
    VT_NULL_ARGUMENT = 100,
    /// `INVALID_UTF8`: a string argument was not valid UTF-8; nothing was done.
    VT_INVALID_UTF8 = 101,
    /// `BUFFER_TOO_SMALL`: the caller's buffer cannot hold the answer; `*needed` says how many bytes do.
    VT_BUFFER_TOO_SMALL = 102,
    /// `PANIC`: a panic (a bug) was caught at the C boundary; the call did not complete.
    VT_PANIC = 103,
}

impl vt_result {
    /// Every value, in numeric order.
    pub const ALL: &'static [vt_result] = &[
        vt_result::VT_OK,
        vt_result::VT_INVALID_ARGUMENT,
        vt_result::VT_NOT_FOUND,
        vt_result::VT_ALREADY_EXISTS,
        vt_result::VT_CYCLE,
        vt_result::VT_INVALID_GRAPH,
        vt_result::VT_TASK_FAILED,
        vt_result::VT_CANCELLED,
        vt_result::VT_TIMEOUT,
        vt_result::VT_IO,
        vt_result::VT_GIT,
        vt_result::VT_PROCESS,
        vt_result::VT_CACHE,
        vt_result::VT_LOCK,
        vt_result::VT_PARSE,
        vt_result::VT_INTERNAL,
        vt_result::VT_WORKTREE_LOCKED,
        vt_result::VT_WORKTREE_DIRTY,
        vt_result::VT_UNSAFE_PATH,
        vt_result::VT_NULL_ARGUMENT,
        vt_result::VT_INVALID_UTF8,
        vt_result::VT_BUFFER_TOO_SMALL,
        vt_result::VT_PANIC,
    ];

    /// The stable code string of this value: the core's `Error::code()` for values 1..=18.
    pub fn code(self) -> &'static str {
        match self {
            vt_result::VT_OK => "OK",
            vt_result::VT_INVALID_ARGUMENT => "INVALID_ARGUMENT",
            vt_result::VT_NOT_FOUND => "NOT_FOUND",
            vt_result::VT_ALREADY_EXISTS => "ALREADY_EXISTS",
            vt_result::VT_CYCLE => "CYCLE",
            vt_result::VT_INVALID_GRAPH => "INVALID_GRAPH",
            vt_result::VT_TASK_FAILED => "TASK_FAILED",
            vt_result::VT_CANCELLED => "CANCELLED",
            vt_result::VT_TIMEOUT => "TIMEOUT",
            vt_result::VT_IO => "IO",
            vt_result::VT_GIT => "GIT",
            vt_result::VT_PROCESS => "PROCESS",
            vt_result::VT_CACHE => "CACHE",
            vt_result::VT_LOCK => "LOCK",
            vt_result::VT_PARSE => "PARSE",
            vt_result::VT_INTERNAL => "INTERNAL",
            vt_result::VT_WORKTREE_LOCKED => "WORKTREE_LOCKED",
            vt_result::VT_WORKTREE_DIRTY => "WORKTREE_DIRTY",
            vt_result::VT_UNSAFE_PATH => "UNSAFE_PATH",
            vt_result::VT_NULL_ARGUMENT => "NULL_ARGUMENT",
            vt_result::VT_INVALID_UTF8 => "INVALID_UTF8",
            vt_result::VT_BUFFER_TOO_SMALL => "BUFFER_TOO_SMALL",
            vt_result::VT_PANIC => "PANIC",
        }
    }

    /// The value for a core error code string; an unknown code (a kind newer than this mapping)
    /// becomes `VT_INTERNAL`, and the unit test below fails until the mapping is extended.
    pub fn from_core_code(code: &str) -> vt_result {
        vt_result::ALL
            .iter()
            .copied()
            .find(|r| (1..=18).contains(&(*r as u32)) && r.code() == code)
            .unwrap_or(vt_result::VT_INTERNAL)
    }

    /// The value for a core error.
    pub fn from_core_error(err: &vibetrees_core::Error) -> vt_result {
        vt_result::from_core_code(err.code())
    }

    /// The value for a raw number, if it is one of ours.
    pub fn from_u32(n: u32) -> Option<vt_result> {
        vt_result::ALL.iter().copied().find(|r| *r as u32 == n)
    }
}

/// The NUL-terminated code strings, indexed like [`vt_result::ALL`].
const CODE_CSTRS: &[&std::ffi::CStr] = &[
    c"OK",
    c"INVALID_ARGUMENT",
    c"NOT_FOUND",
    c"ALREADY_EXISTS",
    c"CYCLE",
    c"INVALID_GRAPH",
    c"TASK_FAILED",
    c"CANCELLED",
    c"TIMEOUT",
    c"IO",
    c"GIT",
    c"PROCESS",
    c"CACHE",
    c"LOCK",
    c"PARSE",
    c"INTERNAL",
    c"WORKTREE_LOCKED",
    c"WORKTREE_DIRTY",
    c"UNSAFE_PATH",
    c"NULL_ARGUMENT",
    c"INVALID_UTF8",
    c"BUFFER_TOO_SMALL",
    c"PANIC",
];

/// The stable code string of a `vt_result` (`"OK"`, `"NOT_FOUND"`, `"CYCLE"`, ...): the same strings
/// the Node and Python packages put on their errors. Takes the raw number, so any value is safe:
/// one that is not a `vt_result` gives `"UNKNOWN"`. The string is static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn vt_result_code(result: u32) -> *const c_char {
    crate::boundary::ffi_call_or(c"UNKNOWN".as_ptr(), || {
        let s = vt_result::ALL
            .iter()
            .position(|r| *r as u32 == result)
            .map(|i| CODE_CSTRS[i])
            .unwrap_or(c"UNKNOWN");
        s.as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibetrees_core::Error;

    #[test]
    fn every_core_code_has_its_own_value() {
        let mut seen = std::collections::HashSet::new();
        for code in Error::ALL_CODES {
            let r = vt_result::from_core_code(code);
            assert_eq!(
                r.code(),
                *code,
                "core code {code} has no vt_result value: add one (and regenerate the header)"
            );
            assert!(seen.insert(r), "two core codes share {r:?}");
        }
        // And nothing else in 1..=18 is unmapped.
        let core_range: Vec<_> = vt_result::ALL
            .iter()
            .filter(|r| (1..=18).contains(&(**r as u32)))
            .collect();
        assert_eq!(core_range.len(), Error::ALL_CODES.len());
    }

    #[test]
    fn code_strings_match_the_static_table() {
        assert_eq!(vt_result::ALL.len(), CODE_CSTRS.len());
        for (r, c) in vt_result::ALL.iter().zip(CODE_CSTRS) {
            assert_eq!(r.code(), c.to_str().unwrap());
            assert_eq!(vt_result::from_u32(*r as u32), Some(*r));
        }
        assert_eq!(vt_result::from_u32(99), None);
    }
}
