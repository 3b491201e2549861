"""vibetrees.PortRegistry: the server's calls give the server's results; never stale; changes
touch only their keys; Python and Node (and plain Node with the real npm proper-lockfile@4)
writing one registry at once never hand out a port twice nor lose a key. The shared profiler of
WorktreeManager. HOME is private (conftest)."""

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

import vibetrees

ROOT = Path(__file__).resolve().parents[2]
NODE_TESTS = ROOT / "tests" / "node"


def free_base(n, reg):
    """A port with `n` free ports after it (none listening)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 60000 and not any(reg.is_port_in_use(q) for q in range(port, port + n)):
            return port


def test_the_server_calls_give_the_server_results(private_home, tmp_path):
    reg = vibetrees.PortRegistry("/home/me/code/shop")
    assert reg.project_root == "/home/me/code/shop"
    assert reg.registry_dir == private_home / ".vibetrees" / "code-shop"
    assert reg.registry_file == private_home / ".vibetrees" / "code-shop" / "ports.json"
    assert reg.ports == {}
    base = free_base(6, reg)
    assert reg.allocate("feat-a", "postgres", base) == base
    assert reg.allocate("feat-a", "api", base) == base + 1
    assert reg.allocate("feat-a", "postgres", base + 50) == base
    got = reg.allocate_atomic("feat-b", {"web": base, "api": base})
    assert list(got.items()) == [("web", base + 2), ("api", base + 3)]
    assert reg.registry_file.read_text() == json.dumps(
        {"feat-a:postgres": base, "feat-a:api": base + 1, "feat-b:web": base + 2, "feat-b:api": base + 3},
        indent=2,
    )
    assert reg.get_worktree_ports("feat-a") == {"postgres": base, "api": base + 1}
    assert reg.release("feat-a") == 2
    assert reg.release_atomic("feat-b") == 2
    assert reg.load() == {}

    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 10))
        s.listen()
        assert reg.is_port_in_use(base + 10) and reg.is_port_in_use_sync(base + 10)
        assert reg.allocate("busy", "api", base + 10) == base + 11
    assert not reg.is_port_in_use(base + 10)

    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".env").write_text("COMPOSE_PROJECT_NAME=vibe_x\nPOSTGRES_PORT=6543\nMINIO_CONSOLE_PORT=9101\n")
    worktrees = [{"name": "old", "path": str(wt)}, {"name": "gone", "path": str(tmp_path / "nope")}]
    assert reg.sync_from_worktrees(worktrees) == 2
    assert reg.sync_from_worktrees(worktrees) == 0
    assert reg.get_worktree_ports("old") == {"postgres": 6543, "minio-console": 9101}

    # save(): only what changed in the last `ports` dict reaches the file
    ports = reg.ports
    ports["hand:api"] = base + 20
    del ports["old:postgres"]
    other = vibetrees.PortRegistry("/home/me/code/shop")
    other.allocate("late", "api", base + 30)
    assert reg.save() == 2
    assert reg.load() == {"busy:api": base + 11, "old:minio-console": 9101, "late:api": base + 30, "hand:api": base + 20}


def test_bad_input_raises_and_writes_nothing(tmp_path):
    reg = vibetrees.PortRegistry(tmp_path / "proj")
    reg.allocate("a", "api", free_base(2, reg))
    before = reg.registry_file.read_text()
    for call in (
        lambda: reg.allocate("x", "api", 0),
        lambda: reg.allocate("x", "api", 70000),
        lambda: reg.allocate("x:y", "api", 3000),
        lambda: reg.allocate_atomic("x", ["api"]),
        lambda: reg.allocate_atomic("x", {"api": "high"}),
        lambda: vibetrees.PortRegistry("/"),
    ):
        with pytest.raises(vibetrees.InvalidArgumentError):
            call()
    assert reg.registry_file.read_text() == before
    reg.registry_file.write_text("{ broken")
    with pytest.raises(vibetrees.ParseError):
        reg.ports
    with pytest.raises(vibetrees.ParseError):
        reg.allocate("b", "api", 3000)
    assert reg.registry_file.read_text() == "{ broken"


def test_projects_sharing_a_registry_name_are_warned():
    vibetrees.PortRegistry("/one/code/same")
    with pytest.warns(UserWarning, match="/one/code/same"):
        b = vibetrees.PortRegistry("/two/code/same")
    assert b.shared_with == ["/one/code/same"]


def node_package_ready():
    native = NODE_TESTS / "node_modules" / "@vibetrees" / "native"
    built = list((ROOT / "bindings-node").glob("*.node"))
    if native.exists() and built:
        return True
    if os.environ.get("CI") == "true":
        pytest.fail("the Node package is not built (run tests/node/run.sh first)")
    pytest.skip("the Node package is not built (run tests/node/run.sh first)")


def proper_lockfile(home):
    d = home / "plf"
    d.mkdir()
    (d / "package.json").write_text('{"name":"plf","private":true}')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "proper-lockfile@4"],
        cwd=d, check=True, capture_output=True, text=True,
    )
    return d


def test_python_node_and_proper_lockfile_write_at_once(private_home, tmp_path):
    node_package_ready()
    root = tmp_path / "multi"
    reg = vibetrees.PortRegistry(root)
    reg.registry_file.write_text("{}")
    base = free_base(60, reg)
    rounds = 8
    plf = proper_lockfile(private_home)
    env = dict(os.environ)
    node = subprocess.Popen(
        ["node", str(NODE_TESTS / "fixtures" / "registry-writer.mjs"), str(root), "node", str(rounds), str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    third = subprocess.Popen(
        ["node", str(NODE_TESTS / "fixtures" / "proper-lockfile-writer.cjs"), str(plf), str(reg.registry_file), "plf", str(rounds), str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    handed = {}

    def python_writer():
        for i in range(rounds):
            got = reg.allocate_atomic(f"py-{i}", {"api": base, "postgres": base})
            handed[f"py-{i}:api"] = got["api"]
            handed[f"py-{i}:postgres"] = got["postgres"]
            reg.allocate("py-scratch", "api", base)
            reg.release("py-scratch")

    t = threading.Thread(target=python_writer)
    t.start()
    outs = [p.communicate(timeout=120) for p in (node, third)]
    t.join(120)
    for p, (out, err) in zip((node, third), outs):
        assert p.returncode == 0, err
        for line in out.strip().splitlines():
            handed.update(json.loads(line))
    assert len(handed) == 3 * rounds * 2
    on_disk = reg.load()
    assert on_disk == handed, "a key was lost or changed"
    assert len(set(on_disk.values())) == len(on_disk), f"a port handed out twice: {on_disk}"


def test_an_object_made_before_another_process_allocates_sees_it(tmp_path):
    node_package_ready()
    root = tmp_path / "seen"
    reg = vibetrees.PortRegistry(root)  # made first
    base = free_base(3, reg)
    subprocess.run(
        ["node", str(NODE_TESTS / "fixtures" / "registry-writer.mjs"), str(root), "js", "1", str(base)],
        check=True, capture_output=True, text=True,
    )
    assert reg.get_worktree_ports("js-0") == {"api": base, "postgres": base + 1}
    assert reg.ports["js-0:api"] == base


def test_the_manager_records_into_a_given_profiler(node_project, tmp_path):
    cache_dir = tmp_path / "cache"
    vibetrees.CacheManager(cache_dir).cache_node_modules(node_project / "node_modules")
    profiler = vibetrees.Profiler()
    wm = vibetrees.WorktreeManager(
        node_project, cache_dir=cache_dir, runtime="none", history_path=tmp_path / "h.sqlite", profiler=profiler
    )
    assert wm.profiler is profiler
    made = wm.create_worktree_optimized("shared-profile")
    assert made["success"], made
    names = [op["name"] for op in profiler.generate_report()["operations"]]
    for span in ("create-worktree-total", "git-worktree-add", "allocate-ports", "mcp-discovery", "npm-bootstrap", "docker-compose-up"):
        assert span in names, names
    own = vibetrees.WorktreeManager(node_project, cache_dir=cache_dir, runtime="none", history_path=tmp_path / "h.sqlite")
    assert own.profiler is not profiler
    assert own.profiler.get_stats("create-worktree-total") is None
    with pytest.raises(TypeError):
        vibetrees.WorktreeManager(node_project, profiler="not a profiler")
    wm.wait_background()
