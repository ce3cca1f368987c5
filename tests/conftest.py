"""Shared fixtures: the real data folder beside the checkout and the tiny training set in the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository (real portraits, photos, backgrounds, videos)."""
    path = (REPO.parent / "shared" / "data").resolve()
    assert path.is_dir(), f"shared data not found at {path}: tests need ../shared beside the checkout"
    return path


@pytest.fixture(scope="session")
def tiny_set() -> Path:
    """A few-KB training set (fg/, alpha/, image/, bg/) cut from the pseudo-labelled data."""
    return FIXTURES / "tiny_set"
