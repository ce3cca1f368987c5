"""The wheel stays at or under 40 MB: the package data pyproject.toml puts in it (weights, assets, the web page)
plus the code, counted uncompressed (the wheel's zip only makes it smaller). Sets that ship as a card only
(registry ``in_wheel=False``, e.g. modnet-paper) are kept out even in a clone that rebuilt them."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from greenless.registry import PACKAGED

REPO = Path(__file__).resolve().parents[1]
LIMIT = 40 * 1000 * 1000  # 40 MB


def wheel_files() -> list[Path]:
    """The files setuptools puts in the wheel: every module of the package, plus package-data matches less
    exclude-package-data matches (both read from pyproject.toml)."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = tool["package-data"]["greenless"]
    exclude = tool.get("exclude-package-data", {}).get("greenless", [])
    root = REPO / "src" / "greenless"
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(root).as_posix()
        data = any(fnmatch.fnmatch(rel, pattern) for pattern in include)
        if (path.suffix == ".py" or data) and not any(fnmatch.fnmatch(rel, pattern) for pattern in exclude):
            files.append(path)
    return files


def test_the_wheel_is_at_most_40_mb() -> None:
    files = wheel_files()
    names = {p.relative_to(REPO / "src" / "greenless").as_posix() for p in files}
    assert {"weights/modnet.onnx", "weights/modnet.safetensors", "weights/modnet.json", "cli/__init__.py"} <= names
    total = sum(p.stat().st_size for p in files)
    assert total <= LIMIT, f"{total / 1e6:.1f} MB of package data and code: over the 40 MB the wheel may hold"


def test_sets_that_ship_as_a_card_stay_out_of_the_wheel() -> None:
    names = {p.name for p in wheel_files()}
    for model in PACKAGED.values():
        assert f"{model.name}.json" in names  # every card ships
        weights = {f"{model.name}.onnx", f"{model.name}.safetensors"}
        assert weights <= names if model.in_wheel else not weights & names, model.name
