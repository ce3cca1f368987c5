"""The reference person-segmentation model (MediaPipe selfie segmentation, ONNX) for side-by-side figures.

It is never shipped: callers pass the path of ``shared/models/selfie_segmentation.onnx``. ``mode='squash'``
is how the reference is scored (the whole image squashed to 256x256, mask resized back);
``mode='pad'`` letterboxes to keep the aspect ratio, which gives better pseudo-labels for training.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIZE = 256


class ReferenceSegmenter:
    """onnxruntime session over the selfie-segmentation model: RGB uint8 in, soft mask HxW float32 out."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, rgb: np.ndarray, mode: str = "squash") -> np.ndarray:
        h, w = rgb.shape[:2]
        if mode == "squash":
            x = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
            mask = self._run(x)
            return np.clip(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
        if mode != "pad":
            raise ValueError(f"unknown mode {mode!r}")
        scale = SIZE / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
        canvas = np.zeros((SIZE, SIZE, 3), np.uint8)
        canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        mask = self._run(canvas)[top:top + nh, left:left + nw]
        return np.clip(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)

    def _run(self, rgb256: np.ndarray) -> np.ndarray:
        x = (rgb256.astype(np.float32) / 255.0)[None]
        return self.session.run(None, {self.input_name: x})[0][0, :, :, 0].astype(np.float32)
