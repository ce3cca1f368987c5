"""The semantic guide: a coarse person mask from the packaged selfie-segmentation model.

MediaPipe's selfie segmentation (Apache-2.0, 450 KB, about 3 ms on 2 cores) ships in
``greenless/assets`` with its licence. Guided networks take its mask as a 4th input channel and refine
it into a matte: the guide says where the person is, the network says how much of each pixel is person
(hair, edges) and overrules the guide where the image disagrees with it (training feeds it shifted,
eroded, dilated, holed, blotched and missing guides, and the model's own mistakes on composites).

``mode='pad'`` letterboxes the image into the model's square input (the aspect ratio is kept: the mode
guides use); ``mode='squash'`` stretches the whole image to 256x256, which is how the reference is scored
in the project's comparison tables.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from greenless.errors import GreenlessError

SIZE = 256  # the selfie model's square input side
GUIDES = ("selfie", "none")  # what --guide takes


def packaged_segmenter_path() -> Path:
    """Path of the selfie-segmentation model that ships inside the package."""
    path = Path(str(resources.files("greenless") / "assets" / "selfie_segmentation.onnx"))
    if not path.is_file():
        raise GreenlessError(f"the packaged guide model {path.name} is missing; reinstall greenless")
    return path


def check_guide(guide: str) -> str:
    """``guide`` if it is one of GUIDES, else a one-line error."""
    if guide not in GUIDES:
        raise GreenlessError(f"unknown guide {guide!r}; choose from {', '.join(GUIDES)}")
    return guide


class SelfieSegmenter:
    """onnxruntime session over the selfie-segmentation model: RGB uint8 in, soft mask HxW float32 out.

    ``path`` defaults to the packaged model. Calls are serialised by a lock so that one instance can be
    shared by the threads of a server or a video pipeline.
    """

    def __init__(self, path: str | Path | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 1  # a 3 ms model: more threads cost more than they give
        opts.log_severity_level = 3
        self.path = Path(path) if path is not None else packaged_segmenter_path()
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for unreadable models
            raise GreenlessError(f"{self.path}: cannot load the segmentation model ({str(exc).splitlines()[0]})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, mode: str = "pad", size: tuple[int, int] | None = None) -> np.ndarray:
        """Person probability for an HxWx3 uint8 RGB image, resized to ``size`` (h, w; default the image's)."""
        h, w = rgb.shape[:2]
        out_h, out_w = size if size is not None else (h, w)
        if mode == "squash":
            mask = self._run(cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
        elif mode == "pad":
            scale = SIZE / max(h, w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
            canvas = np.zeros((SIZE, SIZE, 3), np.uint8)
            canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
            mask = self._run(canvas)[top:top + nh, left:left + nw]
        else:
            raise ValueError(f"unknown mode {mode!r}")
        if mask.shape != (out_h, out_w):
            mask = cv2.resize(mask, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0)

    def _run(self, rgb256: np.ndarray) -> np.ndarray:
        x = (rgb256.astype(np.float32) / 255.0)[None]
        with self._lock:
            out = self.session.run(None, {self.input_name: x})[0]
        return out[0, :, :, 0].astype(np.float32)


_SHARED: dict[str, SelfieSegmenter] = {}
_SHARED_LOCK = threading.Lock()


def shared_segmenter() -> SelfieSegmenter:
    """One packaged segmenter per process (training workers and Matter instances share it)."""
    with _SHARED_LOCK:
        if "selfie" not in _SHARED:
            _SHARED["selfie"] = SelfieSegmenter()
        return _SHARED["selfie"]
