"""The house rules on imports, as import-linter contracts in pyproject.toml ([tool.importlinter]): layers import
only downward (the CLI over the server and Ray, over the tools, over ``Matter``, over training data, over the
pipeline and engines, over the registry, over cards, media and the network), ``model/`` knows nothing of the
rest, ``pipeline/`` never imports ``matter.py``, ``data/`` never imports ``evaluate/``, and no package has an
import cycle between its modules."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = (
    "Layers: CLI > server, Ray > tools > Matter",
    "model/ is the network only",
    "pipeline/ is below Matter",
    "Training data never imports evaluation",
    "No import cycles between the modules of any package",
)


def lint_imports() -> str:
    """The ``lint-imports`` command beside this interpreter (or on PATH); skips when import-linter is absent."""
    if importlib.util.find_spec("importlinter") is None:
        pytest.skip("the import contracts need import-linter (pip install 'greenless[test]')")
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.is_file() else shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is installed but its lint-imports command is not on PATH")
    return found


def test_the_import_contracts_hold() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}  # this checkout's code, not an installed copy
    result = subprocess.run([lint_imports(), "--no-cache"], check=False, cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=600)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    for name in CONTRACTS:  # every rule is checked (a contract dropped from pyproject.toml fails here)
        assert name in " ".join(report.split()), name
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in report
