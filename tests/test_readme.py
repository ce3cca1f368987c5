"""The README's commands and code run as pasted: its Python example, and the install hints it and the CLI give."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def _python_blocks(readme: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", readme, flags=re.S)


def test_python_example_runs_as_pasted(tmp_path: Path, repo_root: Path) -> None:
    """The "From Python" block, run in a fresh interpreter from a folder laid out like the clone."""
    blocks = [b for b in _python_blocks((repo_root / "README.md").read_text()) if "greenless.remove" in b]
    assert len(blocks) == 1
    (tmp_path / "examples").mkdir()
    shutil.copy(repo_root / "examples" / "astronaut.jpg", tmp_path / "examples" / "astronaut.jpg")
    proc = subprocess.run([sys.executable, "-c", blocks[0]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    cut = Image.open(tmp_path / "astronaut_cut.png")
    assert cut.mode == "RGBA" and cut.size == (512, 512)
    alpha = np.asarray(cut)[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255  # a real cut-out: background gone, the astronaut kept


def test_install_lines_work_from_a_clone(repo_root: Path) -> None:
    """Every pip line in the README installs from the clone (greenless is not on PyPI) with an extra that exists."""
    import tomllib

    extras = set(tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    readme = (repo_root / "README.md").read_text()
    assert not re.search(r"pip install [\"']?greenless\[", readme)
    named = re.findall(r"pip install -e ['\"]?\.\[([\w,]+)\]", readme)
    assert named, "no install lines found"
    for group in named:
        assert set(group.split(",")) <= extras, group


def test_missing_extra_hint_names_this_clone(repo_root: Path) -> None:
    from greenless.errors import install_hint

    hint = install_hint("video")
    assert hint == f"pip install -e '{repo_root.resolve()}[video]'"
