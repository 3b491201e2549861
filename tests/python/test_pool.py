"""The pool of spare worktrees through vibetrees.WorktreeManager (fill_pool, pool_status,
clear_pool) on real git repositories with a real node_modules: a fill makes a spare, a creation
from its commit claims it, the refill after the claim makes another, clear removes it."""

from pathlib import Path

import pytest

import vibetrees
from conftest import git
from test_worktree import manager, warm_cache  # noqa: F401  (the fixture is used by name)


def test_fill_status_claim_refill_clear(node_project, warm_cache):  # noqa: F811
    mgr = manager(node_project, warm_cache, pool_size=1)
    empty = mgr.pool_status()
    assert empty["spares"] == [] and empty["size"] == 1 and empty["bytes"] == 0

    report = mgr.fill_pool()
    assert report["made"] == 1, report
    assert report["from"] == "refs/heads/main"
    status = mgr.pool_status()
    assert len(status["spares"]) == 1, status
    spare = status["spares"][0]
    assert spare["commit"] == git(node_project, "rev-parse", "main").strip()
    assert spare["from"] == "refs/heads/main"
    assert spare["nodeModules"] is True
    assert spare["files"] > 0 and spare["bytes"] > 0 and status["bytes"] == spare["bytes"]
    assert isinstance(spare["ageMs"], int)
    assert Path(spare["path"]).parent.resolve() == Path(status["dir"]).resolve()
    assert (Path(spare["path"]) / "index.js").is_file()
    assert ".pool" not in git(node_project, "worktree", "list", "--porcelain")

    # full: a second fill (an explicit ref, positional) makes nothing
    assert mgr.fill_pool("main")["made"] == 0

    made = mgr.create_worktree_optimized("Pooled One", "main")
    assert made["success"] is True, made
    pool = made["worktree"]["pool"]
    assert pool["claimed"] is True, pool
    assert isinstance(pool["spareAgeMs"], int)
    wt = Path(made["worktree"]["path"])
    assert git(wt, "status", "--porcelain") == ""
    assert git(wt, "rev-parse", "--abbrev-ref", "HEAD").strip() == "pooled-one"
    assert (wt / "node_modules" / "left-pad-local" / "lib" / "index.js").is_file()
    assert not Path(spare["path"]).exists()

    # the claim started a refill; then clear removes that spare
    mgr.wait_background()
    assert len(mgr.pool_status()["spares"]) == 1
    assert mgr.clear_pool() == 1
    cleared = mgr.pool_status()
    assert cleared["spares"] == [] and cleared["bytes"] == 0
    assert mgr.clear_pool() == 0
    assert (wt / "index.js").is_file(), "clear never touches a claimed worktree"

    normal = mgr.create_worktree_optimized("not-pooled", "main")
    assert normal["worktree"]["pool"] == {"claimed": False}
    mgr.wait_background()
    mgr.clear_pool()


def test_pool_size_zero_and_bad_from(node_project, warm_cache):  # noqa: F811
    off = manager(node_project, warm_cache, pool_size=0)
    report = off.fill_pool()
    assert report["made"] == 0 and isinstance(report["stopped"], str)
    assert off.pool_status()["size"] == 0
    made = off.create_worktree_optimized("no-pool")
    assert made["worktree"]["pool"]["claimed"] is False
    off.wait_background()
    assert off.pool_status()["spares"] == [], "no refill with pool_size 0"

    mgr = manager(node_project, warm_cache, pool_size=1)
    with pytest.raises(vibetrees.NotFoundError, match="no-such-branch"):
        mgr.fill_pool(from_="no-such-branch")
    assert mgr.pool_status()["spares"] == []
    with pytest.raises(TypeError):
        mgr.fill_pool(42)  # type: ignore[arg-type]
    mgr.wait_background()
