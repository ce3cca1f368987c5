"""onnxruntime engine: the light default; picks CUDA, CoreML or DirectML when present, else CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from greenless.errors import GreenlessError

_PREFERRED = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider")


def pick_providers(device: str | None = None) -> list[str]:
    """Providers in order of preference among those this onnxruntime build has; ``device='cpu'`` forces CPU."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if device == "cpu":
        return ["CPUExecutionProvider"]
    return [p for p in _PREFERRED if p in available] or ["CPUExecutionProvider"]


class OnnxEngine:
    """One onnxruntime session over an exported MODNet (input ``input`` NCHW, output ``matte``)."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None, device: str | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=pick_providers(device))
        except Exception as exc:  # onnxruntime raises several unrelated types for unreadable models
            raise GreenlessError(f"{path}: cannot load ONNX model ({str(exc).splitlines()[0]})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        #: The weights' card (reference sizes, hint, training record) when the file carries one, as exports do.
        self.card: dict | None = json.loads(meta["greenless_card"]) if "greenless_card" in meta else None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.in_channels = int(inp.shape[1]) if isinstance(inp.shape[1], int) else 3
        self.input_type = np.float16 if "float16" in inp.type else np.float32

    def run(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: batch.astype(self.input_type, copy=False)})[0]
        return out.astype(np.float32, copy=False)
