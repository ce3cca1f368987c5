"""Runtimes behind one protocol: ``run(batch NCHW float32 in [-1,1]) -> matte N1HW float32``."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class Engine(Protocol):
    """What ``Matter`` needs of a runtime: a batch of normalised images in, mattes out."""

    name: str
    in_channels: int

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the network on an N x C x H x W float32 batch; return N x 1 x H x W mattes in [0, 1]."""
        ...


ENGINE_NAMES = ("onnx", "torch")


def make_engine(name: str, weights: Path, threads: int | None = None, device: str | None = None) -> Engine:
    """Build the engine called ``name`` for ``weights`` (.onnx for onnx; .safetensors for torch)."""
    if name == "onnx":
        from greenless.engines.onnx import OnnxEngine

        return OnnxEngine(weights, threads=threads, device=device)
    if name == "torch":
        from greenless.engines.torch import TorchEngine

        return TorchEngine(weights, device=device, threads=threads)
    from greenless.errors import GreenlessError

    raise GreenlessError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
