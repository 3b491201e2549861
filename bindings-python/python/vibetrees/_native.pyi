"""Type stubs of the extension module ``vibetrees._native`` (re-exported by ``vibetrees``)."""

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Awaitable, Callable, ClassVar, Iterable, Literal, Mapping, Optional, final

from .types import (
    CreateResult,
    ProgressEvent,
    RemoveOutcome,
    WorktreeInfo,
    CacheStats,
    PopulateReport,
    PruneReport,
    RestoreOutcome,
    VerifyReport,
)
from .types import GraphPlan, GraphRunResult, Metrics, OperationResult, OperationStats, Report

__version__: str
__all__ = [
    "ALL_CODES",
    "WorktreeManager",
    "CacheManager",
    "PerformanceOptimizer",
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
    "VibetreesError",
]
ALL_CODES: list[str]

class VibetreesError(Exception):
    """Base class of every error raised by vibetrees; ``code`` is the core's stable error code."""

    code: ClassVar[str]

class InvalidArgumentError(VibetreesError): ...
class NotFoundError(VibetreesError): ...
class AlreadyExistsError(VibetreesError): ...
class InvalidGraphError(VibetreesError): ...

class CycleError(InvalidGraphError):
    cycle: str

class TaskFailedError(VibetreesError):
    task: str

class CancelledError(VibetreesError): ...
class TimeoutError(VibetreesError): ...
class IoError(VibetreesError): ...
class GitError(VibetreesError): ...
class ProcessError(VibetreesError): ...
class CacheError(VibetreesError): ...
class LockError(VibetreesError): ...
class ParseError(VibetreesError): ...
class InternalError(VibetreesError): ...

@final
class Profiler:
    """Records nested timed operations and their statistics. Thread-safe."""

    def __new__(
        cls, *, max_results: Optional[int] = None, max_names: Optional[int] = None
    ) -> Profiler: ...
    def start(self, name: str, parent_id: Optional[str] = None) -> str: ...
    def end(self, id: str) -> OperationResult: ...
    def end_failed(self, id: str, error: str) -> OperationResult: ...
    def is_running(self, id: str) -> bool: ...
    def running_count(self) -> int: ...
    def get_result(self, id: str) -> Optional[OperationResult]: ...
    def get_stats(self, name: str) -> Optional[OperationStats]: ...
    def generate_report(self) -> Report: ...
    def metrics(self) -> Metrics: ...
    def to_chrome_trace(self) -> str: ...
    def now_ms(self) -> float: ...
    def clear(self) -> None: ...
    def span(self, name: str, parent_id: Optional[str] = None) -> Span: ...

@final
class Span:
    """A timed block: ``with profiler.span("step") as span: ...``."""

    @property
    def id(self) -> Optional[str]: ...
    @property
    def name(self) -> str: ...
    @property
    def result(self) -> Optional[OperationResult]: ...
    def __enter__(self) -> Span: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]] = None,
        exc_value: Optional[BaseException] = None,
        _traceback: Optional[TracebackType] = None,
    ) -> bool: ...

_TaskSpec = Mapping[str, Any]
"""A task: ``{"name": str, "fn": callable, "dependencies": [str], "optional": bool}``."""

@final
class PerformanceOptimizer:
    """Runs graphs of Python tasks; each task starts as soon as its dependencies are done."""

    def __new__(
        cls,
        profiler: Optional[Profiler] = None,
        concurrency: Optional[int] = None,
        *,
        failure_policy: str = "stop",
    ) -> PerformanceOptimizer: ...
    @property
    def profiler(self) -> Optional[Profiler]: ...
    @property
    def concurrency(self) -> Optional[int]: ...
    def run_parallel(self, tasks: Iterable[_TaskSpec]) -> list[Any]: ...
    def run_with_dependencies(self, tasks: Iterable[_TaskSpec]) -> dict[str, Any]: ...
    def run_graph(self, tasks: Iterable[_TaskSpec]) -> GraphRunResult: ...
    def dry_run(self, tasks: Iterable[_TaskSpec]) -> GraphPlan: ...
    def run_parallel_async(self, tasks: Iterable[_TaskSpec]) -> Awaitable[list[Any]]: ...
    def run_with_dependencies_async(self, tasks: Iterable[_TaskSpec]) -> Awaitable[dict[str, Any]]: ...

_Path = str | os.PathLike[str]

@final
class CacheManager:
    """The content-addressed node_modules cache (default folder ``~/.vibetrees/cache``)."""

    def __new__(
        cls,
        cache_dir: Optional[_Path] = None,
        *,
        method: str = "auto",
        workers: Optional[int] = None,
        profiler: Optional[Profiler] = None,
    ) -> CacheManager: ...
    @property
    def cache_dir(self) -> Path: ...
    def cache_node_modules(self, source_node_modules: _Path) -> PopulateReport: ...
    def restore_node_modules(
        self,
        target_node_modules: _Path,
        *,
        method: Optional[str] = None,
        on_progress: Optional[Callable[[int, int], object]] = None,
        skip_verify: bool = False,
    ) -> RestoreOutcome: ...
    def is_cache_valid(self, project_path: _Path) -> bool: ...
    def key(self, project_path: _Path) -> str: ...
    @staticmethod
    def get_docker_cache_env() -> dict[str, str]: ...
    def stats(self) -> CacheStats: ...
    def verify(self, *, evict_bad: bool = False) -> VerifyReport: ...
    def prune(self, budget_bytes: int) -> PruneReport: ...
    def clear(self) -> PruneReport: ...

_HostStep = Mapping[str, Any]
"""A host step: ``{"name": str, "fn": callable(input) -> JSON-able, "dependencies": [str]}``."""

@final
class WorktreeManager:
    """Creates, lists and removes the git worktrees of one Node project."""

    def __new__(
        cls,
        root_dir: _Path,
        worktree_base: Optional[_Path] = None,
        cache_dir: Optional[_Path] = None,
        compose_file: Optional[str] = None,
        runtime: Optional[Literal["auto", "docker", "podman", "none"]] = None,
        on_progress: Optional[Callable[[ProgressEvent], object]] = None,
        *,
        host_steps: Optional[Iterable[_HostStep]] = None,
        critical_services: Optional[list[str]] = None,
        push_branch: Optional[bool] = None,
        push_timeout: Optional[float] = None,
        use_cache: Optional[bool] = None,
        install: Optional[bool] = None,
        restore_workers: Optional[int] = None,
        history_path: Optional[_Path] = None,
        record_history: Optional[bool] = None,
        mcp_servers: Optional[Mapping[str, Any]] = None,
        checkout: Optional[Literal["git2", "cli"]] = None,
        checkout_threads: Optional[int] = None,
        git_program: Optional[_Path] = None,
        include: Optional[list[str]] = None,
        include_background: Optional[list[str]] = None,
        hooks: Optional[Mapping[str, Any]] = None,
        trust_project_hooks: Optional[bool] = None,
        mcp_extra: Optional[Mapping[str, Any]] = None,
    ) -> WorktreeManager:
        """Every keyword but ``on_progress``, ``host_steps`` and ``mcp_extra`` (the deprecated
        name of ``mcp_servers``) is a setting of the core; ``None`` means its default
        (``push_timeout`` in ms)."""
        ...
    @staticmethod
    def setting_names() -> list[str]: ...
    @property
    def root_dir(self) -> Path: ...
    @property
    def worktree_base(self) -> Path: ...
    @property
    def profiler(self) -> Profiler: ...
    def create_worktree_optimized(self, branch: str, from_branch: str = "main") -> CreateResult: ...
    def create_worktree_optimized_async(
        self, branch: str, from_branch: str = "main"
    ) -> Awaitable[CreateResult]: ...
    def get_performance_metrics(self) -> Metrics: ...
    def remove_worktree(self, name: str) -> RemoveOutcome: ...
    def list_worktrees(self) -> list[WorktreeInfo]: ...
    def warm(self) -> list[str]: ...
    def wait_background(self) -> None: ...
    def background_jobs(self) -> list[str]: ...
