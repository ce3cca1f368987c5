"""Shared fixtures: the real data beside the checkout, the tiny training set, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository; fails loudly (never skips) when it is missing."""
    path = (REPO / ".." / "shared" / "data").resolve()
    assert path.is_dir(), f"shared test data not found at {path}"
    return path


@pytest.fixture(scope="session")
def reference_model() -> Path:
    """The reference selfie-segmentation model in ``../shared/models`` (never shipped); fails loudly when missing."""
    path = (REPO / ".." / "shared" / "models" / "selfie_segmentation.onnx").resolve()
    assert path.is_file(), f"reference model not found at {path}"
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (for examples/ and the packaged weights)."""
    return REPO


@pytest.fixture(scope="session")
def tiny_set() -> Path:
    """A few-KB training set (fg/, alpha/, image/, bg/) cut from the pseudo-labelled data."""
    return FIXTURES / "tiny_set"


def run_greenless(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
                  timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m greenless ARGS`` with this checkout's src/ first on the path; bytes in, bytes out."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "2")
    return subprocess.run([sys.executable, "-m", "greenless", *args], cwd=cwd, input=stdin,
                          capture_output=True, timeout=timeout, env=env,
                          stdin=None if stdin is not None else subprocess.DEVNULL)
