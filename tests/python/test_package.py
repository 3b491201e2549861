"""The package itself: import, version, typing markers, stubs checked against the built module."""

import os
import subprocess
import sys
from pathlib import Path

import vibetrees


def test_imports_the_native_module_from_the_installed_package():
    assert vibetrees._native.__name__ == "vibetrees._native"
    # Installed, not the source tree: the tests run from tests/python.
    assert "site-packages" in vibetrees.__file__
    assert vibetrees.__version__.count(".") == 2


def test_package_ships_py_typed_and_stubs():
    pkg = Path(vibetrees.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_native.pyi").is_file()


def test_all_names_are_exported():
    for name in vibetrees.__all__:
        assert hasattr(vibetrees, name), name
    # Everything the native module defines is re-exported by the package.
    assert set(vibetrees._native.__all__) <= set(vibetrees.__all__)


def test_stubs_match_the_built_module():
    """mypy's stubtest compares _native.pyi (and the package) with the runtime objects."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "vibetrees"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


TYPED_USAGE = '''
import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional

import vibetrees
from vibetrees.types import CreateResult, Metrics, OperationResult, ProgressEvent


def on_progress(event: ProgressEvent) -> None:
    print(event["step"], event["message"])


def use(root: Path) -> None:
    p = vibetrees.Profiler(max_results=10)
    op: str = p.start("x")
    result: OperationResult = p.end(op)
    children: List[OperationResult] = result["children"]
    with p.span("y", parent_id=None) as span:
        ident: Optional[str] = span.id
    opt = vibetrees.PerformanceOptimizer(profiler=p, concurrency=2)
    out: Dict[str, Any] = opt.run_with_dependencies([{"name": "a", "fn": lambda deps: 1}])
    cache = vibetrees.CacheManager(root / "cache", method="copy")
    valid: bool = cache.is_cache_valid(root)
    hits: int = cache.stats()["hits"]
    mgr = vibetrees.WorktreeManager(root, runtime="none", on_progress=on_progress)
    created: CreateResult = mgr.create_worktree_optimized("b", from_branch="main")
    metrics: Metrics = mgr.get_performance_metrics()
    avg: Optional[float] = metrics["avgWorktreeCreation"]
    try:
        pass
    except vibetrees.TaskFailedError as e:
        task: str = e.task
        code: str = e.code


async def use_async(root: Path) -> None:
    mgr = vibetrees.WorktreeManager(root)
    created = await mgr.create_worktree_optimized_async("c")
    opt = vibetrees.PerformanceOptimizer()
    results = await opt.run_with_dependencies_async([])
'''


def test_the_stubs_type_check_user_code(tmp_path):
    """mypy --strict accepts typical user code against the shipped stubs and TypedDicts."""
    script = tmp_path / "usage.py"
    script.write_text(TYPED_USAGE)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
