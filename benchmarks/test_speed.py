"""pytest-benchmark timings of the packaged model's engine call (not part of the test suite).

Run: ``pytest benchmarks --benchmark-only`` (``greenless bench`` gives the full side-by-side table).
"""

from __future__ import annotations

import numpy as np
import pytest

from greenless.engines.onnx import OnnxEngine
from greenless.registry import packaged


@pytest.fixture(scope="module")
def engine() -> OnnxEngine:
    return OnnxEngine(packaged("modnet").path("onnx"))


@pytest.mark.parametrize(("height", "width"), [(288, 512), (512, 512)], ids=["512x288", "512x512"])
def test_onnx_engine_call(benchmark, engine: OnnxEngine, height: int, width: int) -> None:
    """One network call on a 1x3xHxW input at the network size (no resizing, no I/O)."""
    x = np.random.default_rng(0).uniform(-1, 1, (1, engine.in_channels, height, width)).astype(np.float32)
    out = benchmark.pedantic(engine.run, args=(x,), warmup_rounds=2, rounds=10, iterations=1)
    assert out.shape == (1, 1, height, width)


def test_matter_end_to_end_720p(benchmark) -> None:
    """``Matter.matte`` on a 1280x720 frame: resize to the reference size, network, upsample back."""
    from greenless import Matter

    matter = Matter()
    frame = np.random.default_rng(1).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    alpha = benchmark.pedantic(matter.matte, args=(frame,), warmup_rounds=1, rounds=5, iterations=1)
    assert alpha.shape == (720, 1280)
