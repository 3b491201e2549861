"""The README's Python example (three worktrees, then the profile) runs as written, on a real project."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import git

DOC = Path(__file__).resolve().parents[2] / "README.md"


def test_three_worktrees_example_runs(node_project, tmp_path):
    text = DOC.read_text()
    section = text[text.index("<!-- python-three-worktrees begin -->") : text.index("<!-- python-three-worktrees end -->")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    script = blocks[0].replace('"/path/to/project"', repr(str(node_project)))
    path = tmp_path / "example.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for name in ["feature-login", "feature-search", "fix-typo"]:
        assert f"[{name}] git:" in out.stdout
        assert (node_project / ".worktrees" / name / "index.js").is_file()
        assert name in git(node_project, "worktree", "list")
    assert "create-worktree-total" in out.stdout
