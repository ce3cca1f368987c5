"""Shared fixtures: the real data beside the checkout, and a switch for tests that need trained weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository; fails loudly when missing."""
    if not SHARED.is_dir():
        pytest.fail(f"shared test data not found at {SHARED}")
    return SHARED


def _weights_are_random() -> bool:
    card = Path(__file__).resolve().parents[1] / "src" / "greenless" / "weights" / "modnet.json"
    try:
        return "RANDOM" in json.loads(card.read_text()).get("note", "")
    except (OSError, ValueError):
        return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Quality tests need the trained weights; with the random development weights they are skipped, saying why."""
    if not _weights_are_random():
        return
    skip = pytest.mark.skip(reason="needs trained weights (src/greenless/weights holds random dev weights)")
    for item in items:
        if "needs_trained_weights" in item.keywords:
            item.add_marker(skip)
