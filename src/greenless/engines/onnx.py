"""onnxruntime engine: the light default; picks CUDA, CoreML or DirectML when present, else CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from greenless.card import CARD_KEY, IN_CHANNELS, in_channels, parse_card
from greenless.errors import GreenlessError, first_line

_PREFERRED = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider")
#: Runs whose network input is larger than this many pixels (one image) give the memory onnxruntime's CPU
#: arena grew for them back afterwards: one ``ref_size=2048`` request would otherwise leave a server 1.3 GB
#: bigger for good. Smaller runs (stream frames at their 288 reference, photos up to 512x512) keep the arena,
#: so the next frame of the same size allocates nothing.
ARENA_KEEP_PIXELS = 512 * 512
_FLOAT_TYPES = ("tensor(float)", "tensor(float16)")


def pick_providers(device: str | None = None) -> list[str]:
    """Providers in order of preference among those this onnxruntime build has; ``device='cpu'`` forces CPU."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if device == "cpu":
        return ["CPUExecutionProvider"]
    return [p for p in _PREFERRED if p in available] or ["CPUExecutionProvider"]


def check_signature(session: Any, path: Path, card: dict[str, Any] | None) -> int:
    """The input channels of a matting model (one float input N x C x H x W with C 3 or 4, a float N x 1 x H x W
    matte out); one error line naming ``path`` and what differs for any other model. A channel count the
    file leaves open comes from the card (else 3)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise GreenlessError(f"{path}: not a matting model: it takes {len(inputs)} inputs ({names}); greenless "
                             f"feeds one image batch N x C x H x W")
    inp = inputs[0]
    if inp.type not in _FLOAT_TYPES or len(inp.shape) != 4:
        raise GreenlessError(f"{path}: not a matting model: its input is a {len(inp.shape)}-d {inp.type}; greenless "
                             f"feeds a 4-d float image batch N x C x H x W")
    channels = inp.shape[1] if isinstance(inp.shape[1], int) else in_channels(card or {})
    if channels not in IN_CHANNELS:
        raise GreenlessError(f"{path}: not a matting model: its input has {channels} channels; greenless feeds 3 "
                             f"(RGB) or 4 (RGB and a guide)")
    out = outputs[0] if outputs else None
    if (out is None or out.type not in _FLOAT_TYPES or len(out.shape) != 4
            or (isinstance(out.shape[1], int) and out.shape[1] != 1)):
        shown = "nothing" if out is None else f"a {len(out.shape)}-d {out.type} of shape {out.shape}"
        raise GreenlessError(f"{path}: not a matting model: it gives {shown}; greenless needs one matte "
                             f"N x 1 x H x W (float)")
    return int(channels)


class OnnxEngine:
    """One onnxruntime session over an exported MODNet (input ``input`` NCHW, output ``matte``)."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None, device: str | None = None) -> None:
        import onnxruntime as ort

        self.path = path
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=pick_providers(device))
        except Exception as exc:  # onnxruntime raises several unrelated types for unreadable models
            raise GreenlessError(f"{path}: cannot load ONNX model ({first_line(exc)})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        #: The weights' card (reference sizes, hint, training record) when the file carries one, as exports do.
        self.card: dict[str, Any] | None = parse_card(meta[CARD_KEY], path) if CARD_KEY in meta else None
        self.in_channels = check_signature(self.session, path, self.card)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_type = np.float16 if "float16" in inp.type else np.float32
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, batch: np.ndarray) -> np.ndarray:
        big = batch.shape[-2] * batch.shape[-1] > ARENA_KEEP_PIXELS
        try:
            out = self.session.run(None, {self.input_name: batch.astype(self.input_type, copy=False)},
                                   self._shrink if big else None)[0]
        except Exception as exc:  # a model whose fixed sizes differ (onnxruntime's InvalidArgument, Fail, ...)
            raise GreenlessError(f"{self.path}: the model failed on a {' x '.join(map(str, batch.shape))} input "
                                 f"({first_line(exc)})") from None
        return out.astype(np.float32, copy=False)
