"""The habits of the field: ``ruff check src`` and ``mypy src`` pass with the settings in pyproject.toml.

Both are in the ``test`` extra; where one is not installed its test is skipped and says so. Each runs as a
subprocess from the repository root so it reads the project's own configuration.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(tool) is None:
        pytest.skip(f"{tool} is not installed (it comes with the test extra: pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", tool, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing_in_src() -> None:
    result = _run("ruff", "check", "--no-cache", "src")
    assert result.returncode == 0, f"ruff check src:\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing_in_src() -> None:
    result = _run("mypy", "--no-incremental", "src")
    assert result.returncode == 0, f"mypy src:\n{result.stdout}{result.stderr}"
    assert "Success: no issues found" in result.stdout
