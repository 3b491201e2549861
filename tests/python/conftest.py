"""Shared fixtures: a private HOME for every test, real git repositories with real node_modules."""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

# The Ctrl-C tests press Ctrl-C with `_thread.interrupt_main()`, which does nothing when SIGINT is
# ignored, as it is for a job started in the background (`cmd &`) by a non-interactive shell:
# Python then never installs its KeyboardInterrupt handler. Install it for the tests.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch):
    """Every test gets its own HOME: nothing touches the real ~/.vibetrees."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    # git must not read the machine's config (identity comes from the environment below).
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "vibetrees tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@vibetrees.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "vibetrees tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@vibetrees.invalid")
    monkeypatch.setenv("npm_config_cache", str(home / ".npm"))
    monkeypatch.setenv("npm_config_update_notifier", "false")
    return home


def git(cwd, *args):
    """Runs git in `cwd` and returns its stdout (raises on failure)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_local_package(root: Path, name: str, version: str, files: int) -> Path:
    """A small npm package folder (installed by npm from the disk: no network)."""
    pkg = root / name
    (pkg / "lib").mkdir(parents=True)
    (pkg / "package.json").write_text(
        json.dumps({"name": name, "version": version, "main": "lib/index.js"})
    )
    for i in range(files):
        (pkg / "lib" / f"file{i}.js").write_text(f"module.exports = {i};\n" * 20)
    (pkg / "lib" / "index.js").write_text("module.exports = 'hello from %s';\n" % name)
    return pkg


@pytest.fixture(scope="session")
def npm_available():
    if shutil.which("npm") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm is required in CI")
        pytest.skip("npm is not installed")
    return True


@pytest.fixture(scope="session")
def vendored_packages(tmp_path_factory, npm_available):
    """Two small npm packages packed as tarballs (made once): projects depend on them by
    `file:vendor/<tarball>`, so npm installs them with no network, in any checkout."""
    root = tmp_path_factory.mktemp("packages")
    out = root / "tarballs"
    out.mkdir()
    for name, version in [("left-pad-local", "1.0.0"), ("right-pad-local", "2.1.0")]:
        pkg = make_local_package(root, name, version, 30)
        subprocess.run(
            ["npm", "pack", "--pack-destination", str(out)],
            cwd=pkg, check=True, capture_output=True, text=True,
        )
    return sorted(out.iterdir())


@pytest.fixture
def node_project(tmp_path, vendored_packages):
    """A real git repository (branch main) of a Node project: package.json and package-lock.json
    committed, its dependencies vendored as tarballs, and node_modules installed by npm."""
    repo = tmp_path / "project"
    (repo / "vendor").mkdir(parents=True)
    deps = {}
    for tarball in vendored_packages:
        shutil.copy2(tarball, repo / "vendor" / tarball.name)
        name = tarball.name.rsplit("-", 1)[0]
        deps[name] = f"file:vendor/{tarball.name}"
    (repo / "package.json").write_text(
        json.dumps(
            {"name": "demo-project", "version": "1.0.0", "private": True, "dependencies": deps},
            indent=2,
        )
    )
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--offline"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    assert (repo / "node_modules" / "left-pad-local" / "lib" / "index.js").is_file()
    (repo / ".gitignore").write_text("node_modules/\n.env\n.claude/\n.worktrees/\n")
    (repo / "index.js").write_text("console.log(require('left-pad-local'));\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    return repo
