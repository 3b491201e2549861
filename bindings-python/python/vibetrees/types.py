"""The shapes of the dicts vibetrees returns (the same keys as the Node package and the server).

They are ``TypedDict`` classes, for type checkers only: at run time results are plain dicts.
Times and durations are milliseconds as floats.
"""

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

__all__ = [
    "OperationResult",
    "OperationStats",
    "Report",
    "MetricsOperation",
    "Metrics",
    "ProgressEvent",
    "TaskErrorInfo",
    "TaskOutcome",
    "RunReport",
    "GraphRunResult",
    "PlannedTask",
    "GraphPlan",
    "PhaseTime",
    "PopulateReport",
    "RestoreStats",
    "RestoreOutcome",
    "CacheStats",
    "BadEntry",
    "VerifyReport",
    "PruneReport",
    "StepTiming",
    "WorktreeCacheReport",
    "HooksReport",
    "SkippedHook",
    "PoolReport",
    "SpareInfo",
    "PoolStatus",
    "PoolFillReport",
    "CreatedWorktree",
    "CreatedResult",
    "ExistedResult",
    "CreateResult",
    "WorktreeInfo",
    "RemoveOutcome",
    "TrashEntry",
]


class _OperationResultRequired(TypedDict):
    id: str
    name: str
    duration: float
    startTime: float
    endTime: float
    children: List["OperationResult"]
    failed: bool


class OperationResult(_OperationResultRequired, total=False):
    """One ended operation (``Profiler.end``), with its ended children."""

    parentId: str
    error: str
    runningChildren: List[str]


class OperationStats(TypedDict):
    """Statistics of every ended operation of one name (``Profiler.get_stats``)."""

    name: str
    count: int
    failures: int
    avg: float
    min: float
    max: float
    total: float
    p50: float
    p95: float
    p99: float


class Report(TypedDict):
    """``Profiler.generate_report``: statistics per name, largest total first."""

    operations: List[OperationStats]
    totalDuration: float


class MetricsOperation(TypedDict):
    """One entry of ``Metrics.operations``."""

    name: str
    count: int
    avg: float
    min: float
    max: float
    total: float


class Metrics(TypedDict):
    """What the server's ``GET /api/performance/metrics`` returns."""

    operations: List[MetricsOperation]
    totalTime: float
    avgWorktreeCreation: Optional[float]


class ProgressEvent(TypedDict):
    """A progress event of a worktree creation: ``{name, step, message}``."""

    name: str
    step: str
    message: str


class TaskErrorInfo(TypedDict, total=False):
    """Why a task failed: its message and, for a Python exception, the code ``PYTHON``."""

    message: str
    code: str


class TaskOutcome(TypedDict):
    """One task of a run: status ``ok``, ``failed``, ``skipped`` or ``cancelled``; times in ms since
    the run started."""

    name: str
    status: str
    optional: bool
    dependencies: List[str]
    startMs: Optional[float]
    endMs: Optional[float]
    durationMs: Optional[float]
    error: Optional[TaskErrorInfo]
    reason: Optional[str]
    spanId: Optional[str]


class RunReport(TypedDict):
    """The summary of a run (``PerformanceOptimizer.run_graph``)."""

    success: bool
    cancelled: bool
    failedTask: Optional[str]
    totalMs: float
    criticalPath: List[str]
    criticalPathMs: float
    tasks: List[TaskOutcome]


class GraphRunResult(TypedDict):
    """``PerformanceOptimizer.run_graph``: the results, the report and the graph in DOT."""

    results: Dict[str, Any]
    report: RunReport
    dot: str


class PlannedTask(TypedDict):
    """One task of a dry run, with its level (0: no dependencies)."""

    name: str
    dependencies: List[str]
    optional: bool
    level: int


class GraphPlan(TypedDict):
    """``PerformanceOptimizer.dry_run``: what a run would do, computed without running."""

    tasks: List[PlannedTask]
    order: List[str]
    levels: List[List[str]]
    longestChain: List[str]


class PhaseTime(TypedDict):
    """The time of one phase of a cache operation."""

    name: str
    ms: float


class PopulateReport(TypedDict):
    """``CacheManager.cache_node_modules``: outcome ``created`` or ``already-present``."""

    key: str
    outcome: str
    files: int
    dirs: int
    symlinks: int
    specialSkipped: int
    bytes: int
    linked: int
    cloned: int
    copied: int
    durationMs: float
    phases: List[PhaseTime]


class RestoreStats(TypedDict):
    """What one restore did; ``methodUsed`` is ``hardlink``, ``clone`` or ``copy``."""

    key: str
    target: str
    method: str
    methodUsed: str
    linked: int
    cloned: int
    copied: int
    files: int
    dirs: int
    symlinks: int
    bytes: int
    workers: int
    verified: bool
    replacedExisting: bool
    durationMs: float
    phases: List[PhaseTime]


class RestoreOutcome(TypedDict):
    """``CacheManager.restore_node_modules``: a miss is ``restored: False`` with the reason."""

    restored: bool
    key: Optional[str]
    stats: Optional[RestoreStats]
    reason: Optional[str]


class CacheStats(TypedDict):
    """``CacheManager.stats``; ``bytes`` counts each inode once."""

    cacheDir: str
    entries: int
    files: int
    bytes: int
    apparentBytes: int
    hits: int
    misses: int


class BadEntry(TypedDict):
    """An entry whose files differ from its listing."""

    key: str
    problemCount: int
    problems: List[str]
    evicted: bool


class VerifyReport(TypedDict):
    """``CacheManager.verify``."""

    entriesChecked: int
    filesChecked: int
    bad: List[BadEntry]


class PruneReport(TypedDict):
    """``CacheManager.prune`` and ``clear``."""

    evicted: List[str]
    busy: List[str]
    bytesFreed: int
    bytesLeft: int
    abandonedRemoved: int


class StepTiming(TypedDict):
    """One step of a creation; times in ms since the creation started."""

    name: str
    status: Literal["ok", "failed", "skipped", "cancelled"]
    startMs: Optional[float]
    durationMs: Optional[float]
    error: Optional[str]


class WorktreeCacheReport(TypedDict):
    """The node_modules outcome of a creation: ``hit``, ``near``, ``miss``, ``none``, ``disabled``."""

    outcome: Literal["hit", "near", "miss", "none", "disabled"]
    key: Optional[str]
    method: Optional[str]
    files: Optional[int]
    installCommand: Optional[str]
    installError: Optional[str]
    populating: bool


class SkippedHook(TypedDict):
    """A repository hook not run because its text is not approved."""

    name: str
    source: str
    command: str


class HooksReport(TypedDict):
    """The hooks of a creation (each post-create hook's result is in ``steps["hook:<name>"]``)."""

    log: Optional[str]
    postCreate: List[str]
    postReady: List[str]
    skipped: List[SkippedHook]


class _PoolReportRequired(TypedDict):
    claimed: bool


class PoolReport(_PoolReportRequired, total=False):
    """Whether the worktree is a claimed pool spare (``pool_size``); ``spareAgeMs`` only when it is,
    ``nearChanges`` (paths updated) when the spare was of an older commit."""

    spareAgeMs: int
    nearChanges: int


# The worktree a creation made. The functional form, because "from" (the full ref it was made
# from) is a Python keyword.
CreatedWorktree = TypedDict(
    "CreatedWorktree",
    {
        "name": str,
        "path": str,
        "branch": str,
        "from": str,
        "createdBranch": bool,
        "ports": Dict[str, int],
        "dockerStatus": List[Any],
        "totalMs": float,
        "timings": List[StepTiming],
        "criticalPath": List[str],
        "cache": WorktreeCacheReport,
        "steps": Dict[str, Any],
        "background": List[str],
        "hooks": HooksReport,
        "creationId": Optional[int],
        "pool": PoolReport,
    },
)


class CreatedResult(TypedDict):
    """``create_worktree_optimized`` when it made the worktree."""

    success: Literal[True]
    worktree: CreatedWorktree


class ExistedResult(TypedDict):
    """``create_worktree_optimized`` when branch, folder and registration were all there."""

    success: bool
    name: str
    path: str
    branch: str
    existed: bool
    message: str


CreateResult = Union[CreatedResult, ExistedResult]


class WorktreeInfo(TypedDict):
    """One worktree of the project (``list_worktrees``)."""

    name: str
    path: str
    branch: Optional[str]
    ports: Dict[str, int]
    isMain: bool
    missing: bool
    halfMade: bool


class RemoveOutcome(TypedDict):
    """``remove_worktree``."""

    success: bool
    name: str
    releasedPorts: Dict[str, int]
    trashedTo: Optional[str]
    containers: str
    kept: Optional["TrashEntry"]


class TrashEntry(TypedDict):
    """A worktree kept in the trash (``trash_list``, ``trash_restore``)."""

    name: str
    originalPath: str
    registration: Optional[str]
    reason: str
    trashedAtMs: int
    expiresAtMs: int
    location: str



# One spare worktree of the pool (``pool_status``). The functional form, because "from" (the
# ref it was made from, ``refs/heads/main``) is a Python keyword.
SpareInfo = TypedDict(
    "SpareInfo",
    {
        "path": str,
        "commit": str,
        "from": str,
        "cacheKey": Optional[str],
        "nodeModules": bool,
        "bytes": int,
        "files": int,
        "ageMs": int,
    },
)


class PoolStatus(TypedDict):
    """The pool of spare worktrees of a project (``pool_status``); ``size`` and ``maxBytes`` are
    the settings ``pool_size`` and ``pool_max_bytes``; spares oldest first."""

    dir: str
    size: int
    maxBytes: int
    bytes: int
    spares: List[SpareInfo]


# What ``fill_pool`` did: the ref filled for (or None), spares made, spares and debris removed,
# and why it stopped short of ``pool_size`` (or None). Functional form: "from" is a keyword.
PoolFillReport = TypedDict(
    "PoolFillReport",
    {
        "from": Optional[str],
        "made": int,
        "discarded": int,
        "updated": int,
        "stopped": Optional[str],
    },
)
