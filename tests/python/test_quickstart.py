"""The Python quick start (bindings-python/examples/quickstart.py) runs as the README says, with the
installed package, and README.md shows it verbatim."""

import json
import subprocess
import sys
from pathlib import Path

import vibetrees

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "bindings-python" / "examples" / "quickstart.py"


def test_readme_shows_the_example_verbatim():
    readme = (ROOT / "README.md").read_text()
    start = readme.find("<!-- quickstart:python begin -->")
    end = readme.find("<!-- quickstart:python end -->")
    assert 0 <= start < end, "the quickstart:python markers are in README.md"
    block = readme[start:end]
    code = block[block.index("```python\n") + len("```python\n") : block.rindex("```")]
    assert code == EXAMPLE.read_text(), "keep README.md and the example identical"


def test_quickstart_runs_the_graph_and_reports(tmp_path):
    # Run from an unrelated folder with this interpreter (the one the package is installed in).
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"vibetrees {vibetrees.__version__}"

    def got(task):
        for i, line in enumerate(lines):
            if line.lstrip().startswith(f"{task} ") and " got " in line:
                return i
        raise AssertionError(f"task {task} printed no inputs:\n{out.stdout}")

    assert lines[got("scan")].endswith(" got {}")
    assert lines[got("lint")].endswith(' got {"scan": "scan: ok"}')
    assert lines[got("test")].endswith(' got {"scan": "scan: ok"}')
    assert lines[got("package")].endswith(' got {"lint": "lint: ok", "test": "test: ok"}')
    assert got("scan") < got("lint") < got("package")
    assert got("scan") < got("test") < got("package")

    [results] = [l.removeprefix("results: ") for l in lines if l.startswith("results: ")]
    assert json.loads(results) == {
        "scan": "scan: ok",
        "lint": "lint: ok",
        "test": "test: ok",
        "package": "package: ok",
    }
    assert (
        "ending op-404 (expected) failed [NOT_FOUND]: not found: unknown operation id 'op-404'"
        in lines
    )

    [metrics] = [json.loads(l.removeprefix("metrics: ")) for l in lines if l.startswith("metrics: ")]
    assert sorted(op["name"] for op in metrics["operations"]) == ["lint", "package", "scan", "test"]
    assert all(op["count"] == 1 for op in metrics["operations"])
    assert metrics["totalTime"] > 0
