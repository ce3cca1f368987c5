"""PyTorch engine: MODNet on CPU or CUDA (fp16 and channels-last on CUDA), for our weights or official checkpoints.

How the network runs (eager, ``torch.compile``, CUDA graphs) is :class:`greenless.engines.accel.TensorRunner`'s
job; this class adapts it to the numpy protocol ``Matter`` speaks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from greenless.card import in_channels
from greenless.errors import GreenlessError, first_line, install_hint


class TorchEngine:
    """Runs the network in PyTorch; needs the ``torch`` extra.

    ``device`` None picks CUDA when available; ``mode`` (eager, compile, cudagraph) defaults to eager on CPU
    and ``CUDA_DEFAULT_MODE`` on CUDA.
    """

    name = "torch"

    def __init__(self, path: Path, device: str | None = None, threads: int | None = None,
                 mode: str | None = None) -> None:
        try:
            import torch
        except ImportError as exc:
            raise GreenlessError(f"the torch engine needs PyTorch: {install_hint('torch')}") from exc
        from greenless.engines.accel import CUDA_DEFAULT_MODE, TensorRunner, resolve_device
        from greenless.model.checkpoint import is_torchscript, load_torchscript, load_weights

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        try:
            scripted = is_torchscript(path)  # a `greenless export --torchscript` file: the traced network
            model, self.card = (load_torchscript if scripted else load_weights)(path)
        except GreenlessError:
            raise
        except Exception as exc:
            raise GreenlessError(f"{path}: cannot load weights ({first_line(exc)})") from exc
        mode = mode or (CUDA_DEFAULT_MODE if self.device.type == "cuda" else "eager")
        # A traced network keeps the dtype and layout it was traced in (fp32, contiguous) and cannot be compiled.
        self.runner = (TensorRunner(model, self.device, mode="eager", half=False, channels_last=False) if scripted
                       else TensorRunner(model, self.device, mode=mode))
        self.half = self.runner.half
        self.model = self.runner.model
        self.in_channels = in_channels(self.card)

    def run(self, batch: np.ndarray) -> np.ndarray:
        out = self.runner(self.torch.from_numpy(np.ascontiguousarray(batch)))
        return out.float().cpu().numpy()


def module_runner(model: Any, device: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    """A PyTorch MODNet as a numpy runner (what ``greenless.pipeline.recipe`` runs between its halves): an
    N x C x h x w float32 batch in, the N x 1 x h x w float32 matte out, with the batch sent to ``device``
    (default: where the model's weights are), in inference mode and in whatever train/eval mode the model is
    (callers put it in eval mode)."""
    import torch

    device = device if device is not None else next(model.parameters()).device

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
            return model(x, all_outputs=False).float().cpu().numpy()

    return run
