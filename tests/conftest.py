"""Shared fixtures: the real data beside the checkout (``../shared``), which tests need and never skip."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository; missing data is a loud failure, not a skip."""
    path = SHARED / "data"
    assert path.is_dir(), f"shared test data not found at {path}"
    return path


@pytest.fixture(scope="session")
def reference_model() -> Path:
    """The reference selfie-segmentation model in ``../shared/models`` (never shipped)."""
    path = SHARED / "models" / "selfie_segmentation.onnx"
    assert path.is_file(), f"reference model not found at {path}"
    return path
