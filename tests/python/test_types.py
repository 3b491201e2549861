"""types.py and _native.pyi are written by hand: these tests compare them with real results.

Every key of a real creation result, restore outcome and graph run report appears in the declared
TypedDicts, and every declared (required) key appears in the real results; the error classes
cover every code of the core; the stub of ``WorktreeManager(...)`` declares exactly the core's
settings (as snake_case keywords) besides its callbacks.
"""

import ast
import shutil
import typing
from pathlib import Path

import vibetrees
from vibetrees import types

from test_worktree import manager, warm_cache  # noqa: F401  (the fixture is used by name)


def same_keys(declared, value, where):
    """Every key of the dict `value` is declared in the TypedDict `declared`, and every required
    declared key is in `value`."""
    keys = set(value)
    known = set(declared.__required_keys__) | set(declared.__optional_keys__)
    assert keys - known == set(), f"{where}: keys not in types.py"
    assert set(declared.__required_keys__) - keys == set(), f"{where}: declared keys missing"


def hint(declared, key):
    """The TypedDict a key of `declared` holds (through List[...] and Optional[...])."""
    t = typing.get_type_hints(declared)[key]
    while typing.get_origin(t) in (list, typing.Union):
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


def test_a_real_creation_result_has_exactly_the_declared_keys(node_project, warm_cache):  # noqa: F811
    mgr = manager(node_project, warm_cache)
    made = mgr.create_worktree_optimized("typed")
    same_keys(types.CreatedResult, made, "created result")
    wt = made["worktree"]
    same_keys(types.CreatedWorktree, wt, "worktree")
    same_keys(types.WorktreeCacheReport, wt["cache"], "worktree.cache")
    same_keys(types.HooksReport, wt["hooks"], "worktree.hooks")
    assert wt["cache"]["outcome"] in typing.get_args(types.WorktreeCacheReport.__annotations__["outcome"])
    for t in wt["timings"]:
        same_keys(types.StepTiming, t, f"timing {t['name']}")
        assert t["status"] in typing.get_args(types.StepTiming.__annotations__["status"])
    existed = mgr.create_worktree_optimized("typed")
    same_keys(types.ExistedResult, existed, "existed result")
    mgr.wait_background()


def test_a_real_pool_status_fill_report_and_claim_have_exactly_the_declared_keys(node_project, warm_cache):  # noqa: F811
    mgr = manager(node_project, warm_cache, pool_size=1)
    report = mgr.fill_pool()
    assert report["made"] == 1, report
    same_keys(types.PoolFillReport, report, "fill report")
    status = mgr.pool_status()
    same_keys(types.PoolStatus, status, "pool status")
    assert len(status["spares"]) == 1
    same_keys(hint(types.PoolStatus, "spares"), status["spares"][0], "spare")
    made = mgr.create_worktree_optimized("claimed")
    assert made["worktree"]["pool"]["claimed"] is True
    same_keys(types.CreatedWorktree, made["worktree"], "claimed worktree")
    same_keys(types.PoolReport, made["worktree"]["pool"], "worktree.pool (claimed)")
    mgr.wait_background()
    mgr.clear_pool()


def test_a_real_restore_outcome_has_exactly_the_declared_keys(node_project, tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache")
    cache.cache_node_modules(node_project / "node_modules")
    other = tmp_path / "other"
    other.mkdir()
    for f in ("package.json", "package-lock.json"):
        shutil.copy(node_project / f, other / f)
    hit = cache.restore_node_modules(other / "node_modules")
    assert hit["restored"] is True
    same_keys(types.RestoreOutcome, hit, "restore outcome")
    same_keys(types.RestoreStats, hit["stats"], "restore stats")
    for phase in hit["stats"]["phases"]:
        same_keys(types.PhaseTime, phase, "phase")
    miss = vibetrees.CacheManager(tmp_path / "empty").restore_node_modules(tmp_path / "nm")
    assert miss["restored"] is False
    same_keys(types.RestoreOutcome, miss, "restore miss")


def test_a_real_graph_run_report_has_exactly_the_declared_keys():
    def bad(_):
        raise RuntimeError("no")

    run = vibetrees.PerformanceOptimizer().run_graph(
        [
            {"name": "ok", "fn": lambda _: 1},
            {"name": "bad", "fn": bad, "optional": True},
            {"name": "after", "fn": lambda _: 2, "dependencies": ["ok"]},
        ]
    )
    same_keys(types.GraphRunResult, run, "run")
    same_keys(types.RunReport, run["report"], "report")
    for t in run["report"]["tasks"]:
        same_keys(hint(types.RunReport, "tasks"), t, f"task {t['name']}")
    failed = next(t for t in run["report"]["tasks"] if t["name"] == "bad")
    same_keys(hint(types.TaskOutcome, "error"), failed["error"], "task error")


def test_error_classes_and_the_worktree_manager_stub_match_the_core():
    codes = {cls.code for cls in vars(vibetrees).values() if isinstance(cls, type) and issubclass(cls, vibetrees.VibetreesError) and cls is not vibetrees.VibetreesError}
    assert codes == set(vibetrees.ALL_CODES)
    stub = Path(vibetrees.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WorktreeManager")
    new = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    params = [a.arg for a in new.args.args[1:] + new.args.kwonlyargs]
    callbacks = {"on_progress", "host_steps", "profiler", "mcp_extra"}
    assert sorted(p for p in params if p not in callbacks) == sorted(vibetrees.WorktreeManager.setting_names())
