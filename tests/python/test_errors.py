"""The exception hierarchy: one class per stable core code, `code`, chained causes, clear messages."""

import pytest

import vibetrees


CLASS_OF_CODE = {
    "INVALID_ARGUMENT": vibetrees.InvalidArgumentError,
    "NOT_FOUND": vibetrees.NotFoundError,
    "ALREADY_EXISTS": vibetrees.AlreadyExistsError,
    "CYCLE": vibetrees.CycleError,
    "INVALID_GRAPH": vibetrees.InvalidGraphError,
    "TASK_FAILED": vibetrees.TaskFailedError,
    "CANCELLED": vibetrees.CancelledError,
    "TIMEOUT": vibetrees.TimeoutError,
    "IO": vibetrees.IoError,
    "GIT": vibetrees.GitError,
    "PROCESS": vibetrees.ProcessError,
    "CACHE": vibetrees.CacheError,
    "LOCK": vibetrees.LockError,
    "PARSE": vibetrees.ParseError,
    "INTERNAL": vibetrees.InternalError,
    "WORKTREE_LOCKED": vibetrees.WorktreeLockedError,
    "WORKTREE_DIRTY": vibetrees.WorktreeDirtyError,
    "UNSAFE_PATH": vibetrees.UnsafePathError,
}


def test_every_core_code_has_its_own_class():
    # ALL_CODES comes from the core (vibetrees_core::Error::ALL_CODES): a new code fails here.
    assert sorted(vibetrees.ALL_CODES) == sorted(CLASS_OF_CODE)
    for code, cls in CLASS_OF_CODE.items():
        assert cls.code == code
        assert issubclass(cls, vibetrees.VibetreesError)
        assert issubclass(cls, Exception)
        assert cls.__module__ == "vibetrees"
    assert len(set(CLASS_OF_CODE.values())) == len(CLASS_OF_CODE)


def test_cycle_is_an_invalid_graph():
    assert issubclass(vibetrees.CycleError, vibetrees.InvalidGraphError)


def test_a_raised_error_carries_its_code_and_names_the_thing_at_fault():
    profiler = vibetrees.Profiler()
    with pytest.raises(vibetrees.NotFoundError) as info:
        profiler.end("op-424242")
    assert info.value.code == "NOT_FOUND"
    assert "op-424242" in str(info.value)
    # Catchable by the base class too.
    with pytest.raises(vibetrees.VibetreesError):
        profiler.end("not-an-id")
