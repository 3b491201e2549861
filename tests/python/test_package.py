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
