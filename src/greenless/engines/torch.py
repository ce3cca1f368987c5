"""PyTorch engine: eager MODNet on CPU or CUDA (fp16 on CUDA), for our weights or official checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from greenless.errors import GreenlessError


class TorchEngine:
    """Runs the network in PyTorch; needs the ``torch`` extra."""

    name = "torch"

    def __init__(self, path: Path, device: str | None = None, threads: int | None = None) -> None:
        try:
            import torch
        except ImportError as exc:
            raise GreenlessError("the torch engine needs PyTorch: pip install 'greenless[torch]'") from exc
        from greenless.model.checkpoint import load_weights

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            model, self.card = load_weights(path)
        except GreenlessError:
            raise
        except Exception as exc:
            raise GreenlessError(f"{path}: cannot load weights ({str(exc).splitlines()[0]})") from exc
        self.half = self.device.type == "cuda"
        model = model.to(self.device)
        self.model = model.half() if self.half else model
        self.in_channels = int(self.card.get("model", {}).get("in_channels", 3))

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            x = x.half() if self.half else x.float()
            out = self.model(x)
        return out.float().cpu().numpy()
