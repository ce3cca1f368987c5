"""The semantic guide: a coarse person mask from the packaged selfie-segmentation model.

MediaPipe's selfie segmentation (Apache-2.0, 450 KB, about 3 ms on 2 cores) ships in
``greenless/assets`` with its licence, which records how it was made: converted from Google's own tflite (in the
mediapipe wheel on PyPI) by ``scripts/derive_guide.py``. Guided networks take its mask as a 4th input channel and refine
it into a matte: the guide says where the person is, the network says how much of each pixel is person
(hair, edges) and overrules the guide where the image disagrees with it (training feeds it shifted,
eroded, dilated, holed, blotched and missing guides, and the model's own mistakes on composites).

The guide also bounds the matte (``bound_by_guide``): far outside the guide's person (more than twice
``GUIDE_MARGIN`` of the short side; specks of "person" on the background dropped) alpha is 0, and deep
inside where the guide is confident (beyond twice ``GUIDE_INNER_MARGIN``) it is 1; the network's matte
decides the band between, where hair and edges are. This is the trimap a classical
matting pipeline would draw from the mask, with the network in place of closed-form matting; it removes
the faint haze and the stray blobs a small network leaves on large backgrounds, and the holes it punches
in dark, plain clothing. On the four validation portraits it cut the packaged real-time model's mean MAD
from 0.052 to 0.026 (``benchmarks/guide_compare.py``).

``mode='pad'`` letterboxes the image into the model's square input (the aspect ratio is kept: the mode
streams use); ``mode='squash'`` stretches the whole image to 256x256, which is how the reference is scored
in the project's comparison tables; ``mode='both'`` (photos) runs both views and keeps their minimum. The
two views make different mistakes (letterboxed, the model took in a sunlit city behind a woman's head;
squashed, a sculpture beside a man), and a person is rarely missed by either, so the minimum drops most
of what only one view takes in. On the four validation portraits it ties the letterboxed guide (MAD
0.0187 at 384); it costs a second 3-5 ms run, which photos can afford and 25-fps streams cannot.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from greenless.errors import GreenlessError, first_line

SIZE = 256  # the selfie model's square input side
GUIDES = ("selfie", "none")  # what --guide takes
GUIDE_MARGIN = 0.02  # of the short side: the band outside the guide's edge where the network decides alone
# Inside, the network's own matte is overruled sooner: a small network punches holes in plain clothes far
# more often than the guide's edge sits far outside the person (1% against 2% cut mean MAD on all four
# validation portraits at 384, benchmarks/guide_compare.py).
GUIDE_INNER_MARGIN = 0.01
# Blobs of the guide under 5% of its largest are dropped before the bounds are drawn: the segmentation model
# marks specks of background (a statue's head, a lamp) as person, the network then keeps them.
GUIDE_KEEP_FRACTION = 0.05


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
            raise GreenlessError(f"{self.path}: cannot load the segmentation model ({first_line(exc)})") from exc
        self.input_name = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, mode: str = "pad", size: tuple[int, int] | None = None) -> np.ndarray:
        """Person probability for an HxWx3 uint8 RGB image, resized to ``size`` (h, w; default the image's)."""
        h, w = rgb.shape[:2]
        out_h, out_w = size if size is not None else (h, w)
        if mode == "both":  # two views that err differently: person only where both see one
            pad = self(rgb, "pad", size)
            return pad if h == w else np.minimum(pad, self(rgb, "squash", size))  # a square image has one view
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


def largest_components(mask: np.ndarray, keep_fraction: float = 0.15) -> np.ndarray:
    """Drop specks: keep the connected components of ``mask`` at least ``keep_fraction`` of the largest one."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(np.uint8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= keep_fraction * areas.max()) + 1
    return np.isin(labels, keep).astype(np.uint8)


def guide_bounds(guide: np.ndarray, margin: float = GUIDE_MARGIN, inner_margin: float = GUIDE_INNER_MARGIN,
                 keep_fraction: float = GUIDE_KEEP_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, solid)`` for a ``guide`` (HxW float in [0, 1]): the bounded matte is ``max(matte * keep, solid)``.

    The guide's person is where it is above 0.5, less the blobs smaller than ``keep_fraction`` of the
    largest (the stray objects a segmentation model marks on a background; a second person or a hand is
    kept). Outside that person ``keep`` fades from 1 to 0 between ``margin`` and twice ``margin`` of the
    short side from its edge; inside, where the guide is above 0.9, ``solid`` rises to 1 between
    ``inner_margin`` and twice ``inner_margin``. Near the edge the matte is the network's own. Both depend
    on the guide alone, so a batched video path computes them on the CPU beside the network and applies
    them on the device.
    """
    short = min(guide.shape)
    person = largest_components(guide > 0.5, keep_fraction)
    # Distances are capped at the short side: with no pixel of the other kind OpenCV returns FLT_MAX.
    outside = np.minimum(cv2.distanceTransform(1 - person, cv2.DIST_L2, 5), short) / (short * margin)
    inside = np.minimum(cv2.distanceTransform(person, cv2.DIST_L2, 5), short) / (short * inner_margin)
    keep = np.clip(2.0 - outside, 0.0, 1.0)
    solid = np.clip(inside - 1.0, 0.0, 1.0) * (guide > 0.9)
    return keep.astype(np.float32, copy=False), solid.astype(np.float32, copy=False)


def bound_by_guide(matte: np.ndarray, guide: np.ndarray, margin: float = GUIDE_MARGIN) -> np.ndarray:
    """The network's ``matte`` bounded by the ``guide`` (both HxW float in [0, 1], same size); see ``guide_bounds``."""
    keep, solid = guide_bounds(guide, margin)
    return np.maximum(matte * keep, solid).astype(np.float32, copy=False)


_SHARED: dict[str, SelfieSegmenter] = {}
_SHARED_LOCK = threading.Lock()


def shared_segmenter() -> SelfieSegmenter:
    """One packaged segmenter per process (training workers and Matter instances share it)."""
    with _SHARED_LOCK:
        if "selfie" not in _SHARED:
            _SHARED["selfie"] = SelfieSegmenter()
        return _SHARED["selfie"]
