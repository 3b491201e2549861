"""vibetrees.CacheManager on real projects whose node_modules npm installed."""

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

import vibetrees


def copy_project_without_node_modules(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ["package.json", "package-lock.json"]:
        shutil.copy2(src / name, dst / name)
    return dst


def test_default_cache_dir_is_under_home(private_home):
    cache = vibetrees.CacheManager()
    assert Path(cache.cache_dir) == private_home / ".vibetrees" / "cache"
    assert Path(cache.cache_dir).is_dir()
    assert "CacheManager(" in repr(cache)


def test_docker_cache_env():
    env = {"DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain", "COMPOSE_DOCKER_CLI_BUILD": "1"}
    assert vibetrees.CacheManager.get_docker_cache_env() == env
    assert vibetrees.CacheManager().get_docker_cache_env() == env


def test_cache_then_restore_into_another_checkout(node_project, tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache")
    assert cache.is_cache_valid(node_project) is False

    report = cache.cache_node_modules(node_project / "node_modules")
    assert report["outcome"] == "created"
    assert report["key"] == cache.key(node_project)
    assert len(report["key"]) == 64
    assert report["files"] >= 60
    assert cache.is_cache_valid(node_project) is True
    assert cache.cache_node_modules(str(node_project / "node_modules"))["outcome"] == "already-present"

    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    assert cache.is_cache_valid(other) is True  # same manifests, same key
    progress = []
    outcome = cache.restore_node_modules(other / "node_modules", on_progress=lambda d, t: progress.append((d, t)))
    assert outcome["restored"] is True and outcome["reason"] is None
    stats = outcome["stats"]
    assert stats["files"] == report["files"]
    assert stats["linked"] + stats["cloned"] + stats["copied"] == stats["files"]
    restored = other / "node_modules" / "left-pad-local" / "lib" / "index.js"
    original = node_project / "node_modules" / "left-pad-local" / "lib" / "index.js"
    assert restored.read_text() == original.read_text()
    assert progress and progress[-1][0] == progress[-1][1]

    # Node resolves the restored packages for real.
    if shutil.which("node"):
        import subprocess

        out = subprocess.run(["node", "index.js"], cwd=node_project, capture_output=True, text=True)
        shutil.copy2(node_project / "index.js", other / "index.js")
        out2 = subprocess.run(["node", "index.js"], cwd=other, capture_output=True, text=True, check=True)
        assert out2.stdout == out.stdout == "hello from left-pad-local\n"

    st = cache.stats()
    assert st["entries"] == 1 and st["hits"] >= 1
    assert set(st) >= {"cacheDir", "entries", "files", "bytes", "apparentBytes", "hits", "misses"}


def test_restore_copy_method_and_replacing_an_existing_folder(node_project, tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache", method="copy")
    cache.cache_node_modules(node_project / "node_modules")
    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    (other / "node_modules" / "stale").mkdir(parents=True)
    # an existing node_modules is replaced only when told (issue 13)
    with pytest.raises(vibetrees.AlreadyExistsError):
        cache.restore_node_modules(other / "node_modules")
    assert (other / "node_modules" / "stale").exists()
    outcome = cache.restore_node_modules(other / "node_modules", replace=True)
    stats = outcome["stats"]
    assert stats["copied"] == stats["files"] and stats["linked"] == 0
    assert stats["replacedExisting"] is True
    assert not (other / "node_modules" / "stale").exists()
    restored = other / "node_modules" / "left-pad-local" / "package.json"
    assert os.stat(restored).st_ino != os.stat(node_project / "node_modules" / "left-pad-local" / "package.json").st_ino
    linked = cache.restore_node_modules(other / "node_modules", method="hardlink", replace=True)["stats"]
    assert linked["linked"] == linked["files"]


def test_a_target_that_is_not_node_modules_is_never_replaced(node_project, tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache")
    cache.cache_node_modules(node_project / "node_modules")
    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    mine = other / "src"
    mine.mkdir()
    (mine / "main.js").write_text("mine\n")
    with pytest.raises(vibetrees.InvalidArgumentError, match="not a node_modules folder"):
        cache.restore_node_modules(mine, replace=True)
    assert (mine / "main.js").read_text() == "mine\n"


def test_a_miss_is_reported_not_raised(node_project, tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache")
    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    outcome = cache.restore_node_modules(other / "node_modules")
    assert outcome["restored"] is False
    assert outcome["stats"] is None
    assert outcome["reason"]
    assert not (other / "node_modules").exists()
    assert cache.stats()["misses"] == 1


def test_errors_name_the_path(tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache")
    missing = tmp_path / "no-such-project" / "node_modules"
    with pytest.raises(vibetrees.NotFoundError) as info:
        cache.cache_node_modules(missing)
    assert str(tmp_path / "no-such-project") in str(info.value)
    with pytest.raises(vibetrees.InvalidArgumentError, match="restore method 'teleport'"):
        vibetrees.CacheManager(tmp_path / "cache", method="teleport")
    with pytest.raises(vibetrees.InvalidArgumentError, match="workers"):
        vibetrees.CacheManager(tmp_path / "cache", workers=0)
    with pytest.raises(vibetrees.InvalidArgumentError, match="on_progress"):
        cache.restore_node_modules(tmp_path / "x" / "node_modules", on_progress=3)
    with pytest.raises(OverflowError):
        cache.prune(-1)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(vibetrees.IoError) as info:
        vibetrees.CacheManager(not_a_dir / "cache")
    assert str(not_a_dir) in str(info.value)
    assert info.value.code == "IO"
    # The OS error is chained, as the errno's own OSError subclass.
    assert isinstance(info.value.__cause__, NotADirectoryError)
    assert info.value.__cause__.errno == 20


def test_verify_finds_a_mutated_entry_and_evicts_it(node_project, tmp_path):
    cache = vibetrees.CacheManager(tmp_path / "cache", method="hardlink")
    cache.cache_node_modules(node_project / "node_modules")
    assert cache.verify() == {"entriesChecked": 1, "filesChecked": cache.stats()["files"], "bad": []}
    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    cache.restore_node_modules(other / "node_modules")
    # A hardlinked file edited in place changes the entry too: verify must notice.
    victim = other / "node_modules" / "right-pad-local" / "lib" / "file3.js"
    with open(victim, "a") as f:
        f.write("// edited\n")
    report = cache.verify(evict_bad=True)
    assert len(report["bad"]) == 1
    bad = report["bad"][0]
    assert bad["evicted"] is True and bad["problemCount"] >= 1
    assert any("file3.js" in p for p in bad["problems"])
    assert cache.is_cache_valid(node_project) is False


def test_prune_and_clear(node_project, tmp_path):
    profiler = vibetrees.Profiler()
    cache = vibetrees.CacheManager(tmp_path / "cache", profiler=profiler)
    cache.cache_node_modules(node_project / "node_modules")
    big = cache.prune(10**12)
    assert big["evicted"] == [] and big["bytesLeft"] > 0
    pruned = cache.prune(0)
    assert pruned["evicted"] == [cache.key(node_project)]
    assert cache.stats()["entries"] == 0
    cache.cache_node_modules(node_project / "node_modules")
    assert len(cache.clear()["evicted"]) == 1
    # The cache's phases were recorded in the profiler.
    names = {op["name"] for op in profiler.generate_report()["operations"]}
    assert any(n.startswith("cache-") for n in names)


def test_other_threads_run_during_a_restore(node_project, tmp_path):
    """The restore waits detached: a progress callback that needs another Python thread to
    answer it (through an Event) would deadlock if the caller held the interpreter."""
    cache = vibetrees.CacheManager(tmp_path / "cache", workers=1)
    cache.cache_node_modules(node_project / "node_modules")
    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    asked = threading.Event()
    answered = threading.Event()

    def helper():
        if asked.wait(20):
            answered.set()

    t = threading.Thread(target=helper)
    t.start()

    def on_progress(done, total):
        if not asked.is_set():
            asked.set()
            assert answered.wait(20)

    outcome = cache.restore_node_modules(other / "node_modules", on_progress=on_progress)
    t.join()
    assert outcome["restored"] and answered.is_set()


def test_ctrl_c_during_a_restore_leaves_a_whole_tree_or_none(node_project, tmp_path):
    """A restore is atomic on disk: Ctrl-C lets it finish, then raises KeyboardInterrupt."""
    import _thread

    cache = vibetrees.CacheManager(tmp_path / "cache", workers=1)
    report = cache.cache_node_modules(node_project / "node_modules")
    other = copy_project_without_node_modules(node_project, tmp_path / "checkout")
    pressed = threading.Event()

    def on_progress(done, total):
        if not pressed.is_set():
            pressed.set()
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        cache.restore_node_modules(other / "node_modules", on_progress=on_progress)
    assert pressed.is_set()
    files = [p for p in (other / "node_modules").rglob("*") if p.is_file()]
    assert len(files) == report["files"]
    # Nothing but the project's own files and the finished node_modules beside it.
    assert sorted(p.name for p in other.iterdir()) == ["node_modules", "package-lock.json", "package.json"]
    assert cache.verify()["bad"] == []
