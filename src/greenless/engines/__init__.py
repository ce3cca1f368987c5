"""Runtimes behind one protocol: ``run(batch NCHW float32 in [-1,1]) -> matte N1HW float32``."""

from __future__ import annotations

import os
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


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else all the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def bound_threads(threads: int | None) -> int | None:
    """``threads`` lowered to ``usable_cpus()`` (None: the runtime's own choice, which is all of them).

    More compute threads than CPUs only queue behind each other, and onnxruntime and OpenMP start every one
    they are asked for: ``--threads 100000`` used to crash the process while starting them.
    """
    if threads is None:
        return None
    if threads < 1:
        from greenless.errors import GreenlessError

        raise GreenlessError(f"--threads must be at least 1, not {threads}")
    return min(threads, usable_cpus())


def make_engine(name: str, weights: Path, threads: int | None = None, device: str | None = None) -> Engine:
    """Build the engine called ``name`` for ``weights`` (.onnx for onnx; .safetensors for torch), with at most
    ``usable_cpus()`` threads (``bound_threads``)."""
    threads = bound_threads(threads)
    if name == "onnx":
        from greenless.engines.onnx import OnnxEngine

        return OnnxEngine(weights, threads=threads, device=device)
    if name == "torch":
        from greenless.engines.torch import TorchEngine

        return TorchEngine(weights, device=device, threads=threads)
    from greenless.errors import GreenlessError

    raise GreenlessError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
