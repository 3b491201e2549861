"""vibetrees: fast git worktree creation for Node projects, from Python.

The engine is Rust (vibetrees-core); this package is its Python face:

- ``Profiler``: nested timed operations, per-name statistics, Chrome trace export.
- ``PerformanceOptimizer``: run a graph of Python tasks (plain callables on worker threads, or
  ``async def`` functions on your event loop), each started as soon as its dependencies finish.
- ``CacheManager``: the content-addressed ``node_modules`` cache.
- ``WorktreeManager``: ``create_worktree_optimized(branch)``, the whole creation as one graph.
- ``PortRegistry``: the VibeTrees server's ports registry object, never stale, locked changes.

Every error is a ``VibetreesError`` subclass whose ``code`` is the engine's stable error code.
"""

from . import types
from ._native import (
    ALL_CODES,
    CacheManager,
    PerformanceOptimizer,
    PortRegistry,
    Profiler,
    Span,
    AlreadyExistsError,
    CacheError,
    CancelledError,
    CycleError,
    GitError,
    InternalError,
    InvalidArgumentError,
    InvalidGraphError,
    IoError,
    LockError,
    NotFoundError,
    ParseError,
    ProcessError,
    TaskFailedError,
    TimeoutError,
    UnsafePathError,
    VibetreesError,
    WorktreeDirtyError,
    WorktreeLockedError,
    WorktreeManager,
    __version__,
)

__all__ = [
    "ALL_CODES",
    "CacheManager",
    "PerformanceOptimizer",
    "PortRegistry",
    "Profiler",
    "Span",
    "AlreadyExistsError",
    "CacheError",
    "CancelledError",
    "CycleError",
    "GitError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidGraphError",
    "IoError",
    "LockError",
    "NotFoundError",
    "ParseError",
    "ProcessError",
    "TaskFailedError",
    "TimeoutError",
    "UnsafePathError",
    "VibetreesError",
    "WorktreeDirtyError",
    "WorktreeLockedError",
    "WorktreeManager",
    "__version__",
    "types",
]
