"""vibetrees.WorktreeManager on real git repositories, checked on disk with git itself."""

import _thread
import asyncio
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import vibetrees
from conftest import git

WAIT = 60


def registered_worktrees(repo: Path):
    """Paths of the worktrees git itself has registered (the main one included)."""
    out = git(repo, "worktree", "list", "--porcelain")
    return [Path(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("worktree ")]


def branches(repo: Path):
    return git(repo, "branch", "--format=%(refname:short)").split()


@pytest.fixture
def warm_cache(node_project, tmp_path):
    """A cache folder already holding the project's node_modules (creations are cache hits)."""
    cache_dir = tmp_path / "cache"
    vibetrees.CacheManager(cache_dir).cache_node_modules(node_project / "node_modules")
    return cache_dir


def manager(repo, cache_dir, events=None, **kw):
    return vibetrees.WorktreeManager(
        repo,
        cache_dir=cache_dir,
        runtime="none",
        on_progress=(events.append if events is not None else None),
        **kw,
    )


def test_create_worktree_optimized_end_to_end(node_project, warm_cache, private_home):
    events = []
    mgr = manager(node_project, warm_cache, events)
    assert Path(mgr.root_dir) == node_project.resolve()
    assert Path(mgr.worktree_base) == node_project.resolve() / ".worktrees"

    result = mgr.create_worktree_optimized("Feature/Login Page")
    assert result["success"] is True
    wt = result["worktree"]
    assert wt["name"] == "feature-login-page"
    assert wt["branch"] == "feature-login-page"
    path = Path(wt["path"])
    assert path == node_project.resolve() / ".worktrees" / "feature-login-page"
    assert wt["dockerStatus"] == []
    assert wt["createdBranch"] is True
    assert wt["cache"]["outcome"] == "hit"
    assert wt["totalMs"] > 0
    assert {"git-worktree-add", "cache-restore", "allocate-ports"} <= {t["name"] for t in wt["timings"]}

    # git itself sees the worktree, on its new branch, with a clean checkout of main's commit.
    assert path in [p.resolve() for p in registered_worktrees(node_project)]
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "feature-login-page"
    assert git(path, "rev-parse", "HEAD") == git(node_project, "rev-parse", "main")
    assert git(path, "status", "--porcelain") == ""
    assert "feature-login-page" in branches(node_project)
    assert (path / "index.js").read_text() == (node_project / "index.js").read_text()

    # node_modules came from the cache and works.
    assert (path / "node_modules" / "left-pad-local" / "lib" / "index.js").is_file()
    if shutil.which("node"):
        out = subprocess.run(["node", "index.js"], cwd=path, capture_output=True, text=True, check=True)
        assert out.stdout == "hello from left-pad-local\n"

    # Ports: in the result, in .env, and in the registry under the private HOME.
    assert wt["ports"] and all(isinstance(p, int) for p in wt["ports"].values())
    env = (path / ".env").read_text()
    assert env.startswith("COMPOSE_PROJECT_NAME=vibe_feature_login_page\n")
    registry = private_home / ".vibetrees" / f"{node_project.parent.name}-{node_project.name}" / "ports.json"
    ports = json.loads(registry.read_text())
    for service, port in wt["ports"].items():
        assert ports[f"feature-login-page:{service}"] == port

    # Progress events: the contract's shape, ending with a ✓ complete.
    assert events and all(set(e) == {"name", "step", "message"} for e in events)
    assert all(e["name"] == "feature-login-page" for e in events)
    steps = [e["step"] for e in events]
    assert "git" in steps and "ports" in steps
    done = [e for e in events if e["step"] == "complete"]
    assert done and done[-1]["message"].startswith("✓")

    # Metrics in the server's shape, the creation in the manager's profiler.
    metrics = mgr.get_performance_metrics()
    assert isinstance(metrics["avgWorktreeCreation"], float)
    assert "create-worktree-total" in {o["name"] for o in metrics["operations"]}
    assert mgr.profiler.get_stats("create-worktree-total")["count"] == 1
    mgr.wait_background()

    # Asked again: it is all there, nothing changes.
    again = mgr.create_worktree_optimized("feature/login-page")
    assert again == {
        "success": True,
        "name": "feature-login-page",
        "path": str(path),
        "branch": "feature-login-page",
        "existed": True,
        "message": "Worktree already exists",
    }


def test_existing_branch_is_checked_out_not_recreated(node_project, warm_cache):
    git(node_project, "branch", "already-there")
    mgr = manager(node_project, warm_cache)
    wt = mgr.create_worktree_optimized("already-there")["worktree"]
    assert wt["createdBranch"] is False
    assert git(Path(wt["path"]), "rev-parse", "--abbrev-ref", "HEAD").strip() == "already-there"
    mgr.wait_background()


def test_bad_names_and_refs_raise_and_touch_nothing(node_project, warm_cache):
    mgr = manager(node_project, warm_cache)
    before = (registered_worktrees(node_project), branches(node_project))
    for bad in ["..", "", "   ", "---", ".hidden", "a..b", "topic.lock"]:
        with pytest.raises(vibetrees.InvalidArgumentError) as info:
            mgr.create_worktree_optimized(bad)
        assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(vibetrees.VibetreesError) as info:
        mgr.create_worktree_optimized("good-name", from_branch="no-such-branch")
    assert "no-such-branch" in str(info.value)
    assert (registered_worktrees(node_project), branches(node_project)) == before
    assert not (node_project / ".worktrees" / "good-name").exists()
    with pytest.raises(vibetrees.InvalidArgumentError, match="runtime"):
        vibetrees.WorktreeManager(node_project, runtime="vm")
    with pytest.raises(vibetrees.VibetreesError) as info:
        vibetrees.WorktreeManager(node_project / "missing")
    assert str(node_project / "missing") in str(info.value)


def test_list_and_remove(node_project, warm_cache):
    mgr = manager(node_project, warm_cache)
    wt = mgr.create_worktree_optimized("to-remove")["worktree"]
    listed = mgr.list_worktrees()
    assert listed[0]["isMain"] is True
    entry = next(w for w in listed if w["name"] == "to-remove")
    assert entry["branch"] == "to-remove" and entry["halfMade"] is False and entry["missing"] is False
    assert entry["ports"] == wt["ports"]

    removed = mgr.remove_worktree("to-remove")
    assert removed["success"] is True and removed["name"] == "to-remove"
    assert removed["releasedPorts"] == wt["ports"]
    mgr.wait_background()
    assert Path(wt["path"]) not in [p.resolve() for p in registered_worktrees(node_project)]
    assert not Path(wt["path"]).exists()
    assert "to-remove" in branches(node_project)  # the branch is kept
    with pytest.raises(vibetrees.NotFoundError, match="to-remove"):
        mgr.remove_worktree("to-remove")
    assert mgr.background_jobs() == []


def test_remove_refuses_dirty_and_locked_unless_told_and_the_trash_restores(node_project, warm_cache):
    mgr = manager(node_project, warm_cache)
    wt = Path(mgr.create_worktree_optimized("dirty-one")["worktree"]["path"])
    (wt / "mine.txt").write_text("mine\n")
    with pytest.raises(vibetrees.WorktreeDirtyError, match="mine.txt") as info:
        mgr.remove_worktree("dirty-one")
    assert info.value.code == "WORKTREE_DIRTY"
    subprocess.run(["git", "worktree", "lock", str(wt)], cwd=node_project, check=True)
    with pytest.raises(vibetrees.WorktreeLockedError):
        mgr.remove_worktree("dirty-one", force=True)
    removed = mgr.remove_worktree("dirty-one", force=True, force_locked=True)
    assert removed["kept"]["name"] == "dirty-one"
    assert not wt.exists()
    assert [t["name"] for t in mgr.trash_list()] == ["dirty-one"]
    mgr.trash_restore("dirty-one")
    assert (wt / "mine.txt").read_text() == "mine\n"
    mgr.wait_background()


def test_three_worktrees_at_once_with_asyncio(node_project, warm_cache):
    mgr = manager(node_project, warm_cache)

    async def main():
        return await asyncio.gather(
            *(mgr.create_worktree_optimized_async(f"bulk-{i}") for i in range(3))
        )

    results = asyncio.run(main())
    names = sorted(r["worktree"]["name"] for r in results)
    assert names == ["bulk-0", "bulk-1", "bulk-2"]
    paths = {p.resolve() for p in registered_worktrees(node_project)}
    all_ports = []
    for r in results:
        path = Path(r["worktree"]["path"])
        assert path in paths
        assert git(path, "rev-parse", "--abbrev-ref", "HEAD").strip() == r["worktree"]["name"]
        all_ports += list(r["worktree"]["ports"].values())
    assert len(all_ports) == len(set(all_ports))  # no port handed out twice
    assert mgr.get_performance_metrics()["operations"][0]["count"] >= 3
    mgr.wait_background()


def test_creations_from_several_python_threads(node_project, warm_cache):
    mgr = manager(node_project, warm_cache)
    results, errors = {}, []

    def create(name):
        try:
            results[name] = mgr.create_worktree_optimized(name)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=create, args=(f"thread-{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert errors == []
    assert sorted(results) == ["thread-0", "thread-1", "thread-2"]
    mgr.wait_background()


def test_another_python_thread_makes_progress_during_a_creation(node_project, warm_cache):
    """The progress callback (called while the creation runs) waits for a rendezvous with another
    Python thread. If the caller held the interpreter during the creation, that thread could not
    run and the creation would hang."""
    ticks = []
    stop = threading.Event()
    seen_progress = threading.Event()
    ticked_during_creation = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            if seen_progress.is_set():
                ticked_during_creation.set()
            stop.wait(0.001)

    def on_progress(event):
        if event["step"] == "git" and not seen_progress.is_set():
            seen_progress.set()
            assert ticked_during_creation.wait(WAIT)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        mgr = vibetrees.WorktreeManager(node_project, cache_dir=warm_cache, runtime="none", on_progress=on_progress)
        result = mgr.create_worktree_optimized("with-ticker")
    finally:
        stop.set()
        t.join()
    assert result["success"] and ticked_during_creation.is_set()
    mgr.wait_background()


def test_host_steps_run_inside_the_creation_graph(node_project, warm_cache):
    seen = []

    def write_marker(step_input):
        seen.append(step_input)
        Path(step_input["path"], "marker.txt").write_text("made by a host step\n")
        return {"written": "marker.txt"}

    mgr = manager(
        node_project,
        warm_cache,
        host_steps=[{"name": "python-marker", "fn": write_marker, "dependencies": ["git-worktree-add"]}],
        mcp_extra={"bridge": {"command": "node", "args": ["/opt/bridge.js"]}},
    )
    wt = mgr.create_worktree_optimized("hosted")["worktree"]
    assert wt["steps"]["python-marker"] == {"written": "marker.txt"}
    assert (Path(wt["path"]) / "marker.txt").read_text() == "made by a host step\n"
    assert seen[0]["name"] == "hosted" and seen[0]["branch"] == "hosted"
    settings = json.loads((Path(wt["path"]) / ".claude" / "settings.json").read_text())
    assert settings["mcpServers"]["bridge"] == {"command": "node", "args": ["/opt/bridge.js"]}
    assert mgr.profiler.get_stats("python-marker")["count"] == 1

    def broken(step_input):
        raise RuntimeError("host step exploded")

    mgr2 = manager(node_project, warm_cache, host_steps=[{"name": "broken", "fn": broken, "dependencies": ["git-worktree-add"]}])
    with pytest.raises(vibetrees.VibetreesError, match="host step exploded"):
        mgr2.create_worktree_optimized("hosted-broken")
    assert not (node_project / ".worktrees" / "hosted-broken").exists()
    assert (node_project / ".worktrees" / "hosted-broken").resolve() not in [
        p.resolve() for p in registered_worktrees(node_project)
    ]
    mgr.wait_background()
    mgr2.wait_background()


def test_cache_miss_runs_npm_ci_then_populates_the_cache(node_project, tmp_path):
    cache_dir = tmp_path / "empty-cache"
    events = []
    mgr = manager(node_project, cache_dir, events)
    wt = mgr.create_worktree_optimized("cold")["worktree"]
    assert wt["cache"]["outcome"] == "miss"
    assert wt["cache"]["installError"] is None, wt["cache"]
    assert (Path(wt["path"]) / "node_modules" / "right-pad-local" / "package.json").is_file()
    assert "install" in [e["step"] for e in events] or "bootstrap" in [e["step"] for e in events]
    mgr.wait_background()
    assert vibetrees.CacheManager(cache_dir).is_cache_valid(node_project)
    # The next worktree is a cache hit.
    assert mgr.create_worktree_optimized("warm")["worktree"]["cache"]["outcome"] == "hit"
    mgr.wait_background()


def assert_nothing_left(repo: Path, name: str, private_home: Path):
    assert repo.resolve() / ".worktrees" / name not in [p.resolve() for p in registered_worktrees(repo)]
    assert not (repo / ".worktrees" / name).exists()
    assert name not in branches(repo)
    staging = repo / ".worktrees" / ".staging"
    assert not staging.exists() or not [p for p in staging.iterdir() if p.name.startswith(name + ".")]
    registry = private_home / ".vibetrees" / f"{repo.parent.name}-{repo.name}" / "ports.json"
    if registry.exists():
        assert not [k for k in json.loads(registry.read_text()) if k.startswith(name + ":")]


def test_ctrl_c_during_a_creation_leaves_nothing_half_made(node_project, warm_cache, private_home):
    pressed = threading.Event()

    def on_progress(event):
        if event["step"] == "git" and not pressed.is_set():
            pressed.set()
            _thread.interrupt_main()  # what Ctrl-C does (once: the events of a step repeat)

    mgr = vibetrees.WorktreeManager(node_project, cache_dir=warm_cache, runtime="none", on_progress=on_progress)
    with pytest.raises(KeyboardInterrupt):
        mgr.create_worktree_optimized("interrupted")
    assert_nothing_left(node_project, "interrupted", private_home)
    # The manager still works afterwards, for the same name too.
    ok = vibetrees.WorktreeManager(node_project, cache_dir=warm_cache, runtime="none")
    assert ok.create_worktree_optimized("interrupted")["success"]
    ok.wait_background()


def test_ctrl_c_cancels_the_creation_in_the_core_which_undoes_it(node_project, warm_cache, private_home):
    events = []

    def press_ctrl_c(step_input):
        # The graph is still running: the core sees the cancellation and undoes the creation.
        _thread.interrupt_main()
        time.sleep(0.5)
        return "pressed"

    mgr = manager(
        node_project,
        warm_cache,
        events,
        host_steps=[{"name": "press-ctrl-c", "fn": press_ctrl_c, "dependencies": ["allocate-ports", "git-worktree-add"]}],
    )
    before = branches(node_project)
    with pytest.raises(KeyboardInterrupt):
        mgr.create_worktree_optimized("ctrl-c-core")
    mgr.wait_background()
    # the core reported the cancellation (it is not a creation that finished and was removed)
    assert any(e["step"] == "error" and "cancelled" in e["message"] for e in events), events
    assert_nothing_left(node_project, "ctrl-c-core", private_home)
    assert branches(node_project) == before


def test_cancelling_an_async_creation_leaves_nothing_half_made(node_project, warm_cache, private_home):
    async def main():
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        def on_progress(event):
            if event["step"] == "git":
                loop.call_soon_threadsafe(started.set)

        mgr = vibetrees.WorktreeManager(node_project, cache_dir=warm_cache, runtime="none", on_progress=on_progress)
        task = asyncio.ensure_future(mgr.create_worktree_optimized_async("cancelled"))
        await asyncio.wait_for(started.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The creation finishes in the core and is then undone: wait for that.
        for _ in range(600):
            if not (node_project / ".worktrees" / "cancelled").exists() and "cancelled" not in branches(node_project):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        return mgr

    mgr = asyncio.run(main())
    mgr.wait_background()
    assert_nothing_left(node_project, "cancelled", private_home)


def test_warm_populates_the_cache_from_the_main_worktree(node_project, tmp_path):
    cache_dir = tmp_path / "warm-cache"
    mgr = manager(node_project, cache_dir)
    assert "WorktreeManager(" in repr(mgr)
    jobs = mgr.warm()
    assert isinstance(jobs, list) and jobs
    mgr.wait_background()
    assert mgr.background_jobs() == []
    assert vibetrees.CacheManager(cache_dir).is_cache_valid(node_project)
    assert mgr.create_worktree_optimized("after-warm")["worktree"]["cache"]["outcome"] == "hit"
    mgr.wait_background()


def test_a_failing_progress_callback_does_not_fail_the_creation(node_project, warm_cache, monkeypatch):
    import sys

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.exc_value))

    def broken(event):
        raise RuntimeError("progress UI crashed")

    mgr = vibetrees.WorktreeManager(node_project, cache_dir=warm_cache, runtime="none", on_progress=broken)
    assert mgr.create_worktree_optimized("despite-ui")["success"]
    assert unraisable and all(str(e) == "progress UI crashed" for e in unraisable)
    with pytest.raises(vibetrees.InvalidArgumentError, match="on_progress"):
        vibetrees.WorktreeManager(node_project, on_progress="not callable")
    mgr.wait_background()


def takes_direct_io(directory):
    """Whether files in ``directory`` can be opened for direct I/O (``O_DIRECT``)."""
    if not hasattr(os, "O_DIRECT"):
        return False
    probe = directory / ".direct-probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT))
        return True
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)


def test_include_and_hooks_options_copy_an_ignored_file_then_the_hook_sees_it(node_project, tmp_path):
    with open(node_project / ".gitignore", "a") as f:
        f.write("local.conf\nbig.cache\n")
    git(node_project, "commit", "-qam", "ignore local.conf")
    (node_project / "local.conf").write_text("from main\n")
    big = b"x" * (8192 + 11)
    (node_project / "big.cache").write_bytes(big)
    mgr = manager(
        node_project,
        tmp_path / "cache",
        use_cache=False,
        install=False,
        include=["local.conf", "big.cache"],
        include_direct_io=True,
        hooks={"post-create": [{"command": "cp local.conf hook-saw.txt", "name": "saw"}]},
    )
    wt = mgr.create_worktree_optimized("with-include")["worktree"]
    path = Path(wt["path"])
    assert (path / "local.conf").read_text() == "from main\n"
    assert (path / "hook-saw.txt").read_text() == "from main\n"
    assert wt["steps"]["copy-ignored"]["files"] == 2
    # include_direct_io: the file of 4 KiB or more went by direct I/O where the filesystem takes it
    assert (path / "big.cache").read_bytes() == big
    assert wt["steps"]["copy-ignored"]["direct"] == (1 if takes_direct_io(node_project) else 0)
    assert wt["steps"]["hook:saw"]["ok"] is True
    assert wt["hooks"]["postCreate"] == ["hook:saw"]
    assert wt["hooks"]["skipped"] == []
    with pytest.raises(vibetrees.ParseError):
        manager(node_project, tmp_path / "cache", hooks={"post-create": [""]})
    mgr.wait_background()
