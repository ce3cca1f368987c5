"""The one stream factory: which path a stream of frames runs (frame by frame on the matter, or batched on a
torch device), which renderer makes its pictures, and how many frames go to the engine at a time.

``greenless video``, ``greenless webcam`` and ``Matter.stream()`` each make their stream with ``open_stream``,
so the choice lives here alone; the stream itself (the temporal policy) is ``pipeline.stream.MatteStream``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from greenless.errors import GreenlessError
from greenless.pipeline.stream import DEFAULT_OFD_TOL, MatteStream, resolve_temporal
from greenless.pipeline.video import frame_render

#: Frames per engine call unless told: a few on the per-frame path (on a CPU more only adds latency), 16 on the
#: batched device path (a GPU needs a full batch), 1 for a live source (each frame is shown as soon as it is matted).
DEFAULT_BATCH = 2
DEVICE_BATCH = 16
LIVE_BATCH = 1


def use_device_path(engine: str, device: str | None) -> bool:
    """Whether a stream runs the batched device path: asked for with a device (``--device``), or the torch engine
    on a machine with CUDA (the onnx engine and CPU torch without a device keep the per-frame path)."""
    if device is not None:
        return True
    if engine != "torch":
        return False
    try:
        import torch
    except ImportError:
        return False  # Matter then says the torch engine needs PyTorch
    return bool(torch.cuda.is_available())


@dataclass
class StreamSetup:
    """What a stream of frames runs on (made by ``open_stream``): ``matter`` (the matter itself, or a
    ``DeviceMatter`` over it), its ``stream`` (the temporal policy), ``render`` (``compose.render``'s arguments;
    on a GPU a ``DeviceRenderer``) and ``batch`` (frames per push). ``close()`` when done."""

    matter: Any
    stream: MatteStream
    render: Callable[..., np.ndarray]
    batch: int
    on_device: bool

    @property
    def label(self) -> str:
        """The temporal policy as reports print it."""
        return self.stream.label

    def network_fps(self) -> float | None:
        """Frames per second of the network alone on the device path (None on the per-frame path)."""
        return self.matter.network_fps() if self.on_device else None

    def close(self) -> None:
        """Stop the device path's guide threads (nothing to do on the per-frame path)."""
        if self.on_device:
            self.matter.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stream(matter: Any, *, device_path: bool | None = None, live: bool = False, batch: int | None = None,
                temporal: str | None = None, ofd: bool = True, ofd_tol: float = DEFAULT_OFD_TOL) -> StreamSetup:
    """The one factory for streams of frames (``greenless video``, ``greenless webcam``, ``Matter.stream()``)
    over ``matter`` (a ``Matter``).

    Picks the path: the batched device path (``pipeline.device.DeviceMatter``) when ``device_path`` says so, or,
    when it is None, by ``use_device_path`` for the matter's engine and the device it was asked for; else the
    matter frame by frame. Picks the renderer: on a CUDA device the composite is made there too
    (``DeviceRenderer``), elsewhere OpenCV's (``compose.render`` with the video foreground budget) is the faster.
    Picks the batch: ``batch``, else LIVE_BATCH for a ``live`` source, DEVICE_BATCH on the device path,
    DEFAULT_BATCH otherwise; the temporal policy (``temporal``, ``ofd``, ``ofd_tol``; default the recipe's) may
    lower it to one frame per call (``MatteStream.max_batch``). A live source's device path uses one guide thread.
    """
    if batch is not None and batch < 1:
        raise GreenlessError(f"--batch must be at least 1, not {batch}")
    if device_path is None:
        device_path = use_device_path(matter.engine.name, getattr(matter, "requested_device", None))
    resolve_temporal(temporal, matter.recipe, ofd, ofd_tol, getattr(matter, "weights", None))  # fails before any thread
    render: Callable[..., np.ndarray] = frame_render
    if device_path:
        from greenless.pipeline.device import DeviceMatter, DeviceRenderer  # imports torch only when built

        matter = DeviceMatter(matter, workers=1 if live else None)
        if matter.device.type == "cuda":
            render = DeviceRenderer(matter.device)
    stream = MatteStream(matter, temporal=temporal, ofd=ofd, ofd_tol=ofd_tol)
    if batch is None:
        batch = LIVE_BATCH if live else DEVICE_BATCH if device_path else DEFAULT_BATCH
    return StreamSetup(matter, stream, render, min(batch, stream.max_batch or batch), device_path)
