"""Reference-size resizing (both sides multiples of the network's stride, the long side bounded) and [-1, 1]
normalisation for the network.

The stride is 32 for MODNet's encoder, 64 for networks whose encoder sees the image at half size (the packaged
modnet; ``greenless.card.network_stride``): off that grid their features do not line up with the image.

Two rules (``greenless.card.PREPROCESS_RULES``; the registry says which weights use which):

- ``greenless`` (every weight set greenless trains and ships): sizes rounded to the *nearest* multiple of
  the stride, OpenCV area resizing when shrinking and bilinear when enlarging, the matte brought back bilinearly.
  Rounding keeps the aspect ratio closest to the image's; bilinear enlarging and a bilinear matte are
  smooth where area resizing (an adaptive average pool) enlarges in blocks.
- ``modnet-demo`` (converted official MODNet checkpoints): exactly the official demo
  (``demo/image_matting/colab/inference.py``): sizes *truncated* to multiples of 32, the input and the matte
  resized with PyTorch's ``mode='area'`` both ways (here in numpy, so the onnx engine needs no torch). For
  57 % of image sizes the two rules pick different network sizes; official weights' users get the mattes
  they know from the demo.
"""

from __future__ import annotations

import cv2
import numpy as np

from greenless.card import MAX_REF_SIZE  # noqa: F401  (re-exported: the largest reference size lives with the card's rules)

LONG_SIDE_FACTOR = 4
"""The network input's long side is at most ``LONG_SIDE_FACTOR * ref_size`` (see ``inference_size``)."""


def max_long_side(ref_size: int) -> int:
    """Longest network side allowed at ``ref_size``: ``LONG_SIDE_FACTOR * ref_size`` rounded down to 32 (at least 32)."""
    return max(32, LONG_SIDE_FACTOR * ref_size // 32 * 32)


def inference_size(height: int, width: int, ref_size: int = 512, rule: str = "greenless",
                   stride: int = 32) -> tuple[int, int]:
    """Size (h, w) the network sees for an image of ``height`` x ``width``: both sides multiples of ``stride``
    (the network's, ``greenless.card.network_stride``).

    The short side becomes ``ref_size``; images whose short side is within ``ref_size`` and whose long
    side is at least ``ref_size`` keep their size (MODNet's demo decides when to scale the same way). Then
    the long side is capped at ``max_long_side(ref_size)`` (4 x ``ref_size``), scaling both sides down
    together, and each side is rounded to the nearest multiple of ``stride`` (``rule="greenless"``; a tie goes to
    the even multiple, Python's ``round``: a 288x512 frame is 256x512 at stride 64) or truncated to one as the
    official demo does (``rule="modnet-demo"``, see ``demo_inference_size``); never below ``stride``.

    Why the cap: without it, scaling the short side up to ``ref_size`` makes a thin strip enormous (a
    255x1 PNG became a 512x130,560 input and needed over 8 GB; 1x2047 at ref 2048 asked OpenCV for
    25 GB). With it the input holds at most about 4 x ``ref_size``^2 pixels whatever the aspect ratio,
    three times a 4:3 photo's, so any image the pixel limits accept costs about what a photo costs. Why
    4 and not a tighter pixel budget: every camera and video format (4:3, 16:9, 21:9, 32:9 panoramas)
    is within 4:1, so those sizes are exactly what they always were; only strips beyond 4:1 are seen
    with a short side below ``ref_size`` (down to the 32-pixel minimum).

    Every caller goes through this one function (through ``greenless.pipeline.recipe``), so the rule lives only
    here.
    """
    if ref_size < 32:
        raise ValueError("ref_size must be at least 32")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, not {height}x{width}")
    if rule == "modnet-demo":
        return demo_inference_size(height, width, ref_size, stride)
    if rule != "greenless":
        raise ValueError(f"unknown preprocessing rule {rule!r}")
    short, long = min(height, width), max(height, width)
    scale = 1.0
    if long < ref_size or short > ref_size:
        scale = ref_size / short
    cap = max_long_side(ref_size)
    if long * scale > cap:
        scale = cap / long
    new_h = max(stride, int(round(height * scale / stride)) * stride)
    new_w = max(stride, int(round(width * scale / stride)) * stride)
    return new_h, new_w


def demo_inference_size(height: int, width: int, ref_size: int = 512, stride: int = 32) -> tuple[int, int]:
    """The official MODNet demo's network size: when the long side is below ``ref_size`` or the short side
    above it, the short side becomes ``ref_size`` and the long side ``int(long / short * ref_size)``; else the
    size is kept; then each side is truncated to a multiple of 32 (``stride``: the network's, 32 for the
    official checkpoints).

    Two guards the demo lacks, which change nothing within 4:1 aspect ratios and sides of at least 32: the
    long side is capped at ``max_long_side(ref_size)`` as in ``inference_size`` (the demo would ask for
    gigabytes on a thin strip), and no side goes below 32 (the demo fails on a side under 32).
    """
    short, long = min(height, width), max(height, width)
    if long < ref_size or short > ref_size:
        if width >= height:
            new_h, new_w = ref_size, int(width / height * ref_size)
        else:
            new_h, new_w = int(height / width * ref_size), ref_size
    else:
        new_h, new_w = height, width
    cap = max_long_side(ref_size)
    if max(new_h, new_w) > cap:
        scale = cap / max(new_h, new_w)
        new_h, new_w = int(new_h * scale), int(new_w * scale)
    return max(stride, new_h - new_h % stride), max(stride, new_w - new_w % stride)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """PyTorch's ``F.interpolate(mode='area')`` (an adaptive average pool) on an HxW or HxWxC array: output
    pixel i averages input pixels ``floor(i * n / m)`` to ``ceil((i + 1) * n / m)``, shrinking or enlarging.

    OpenCV's ``INTER_AREA`` weighs partial pixels and enlarges differently, so the official demo's numbers
    need this. Computed with cumulative sums (exact integers for uint8 input); returns float64.
    """
    out = np.asarray(image)
    for axis, size in ((0, height), (1, width)):
        n = out.shape[axis]
        if size == n and out.dtype == np.float64:
            continue
        idx = np.arange(size)
        start = idx * n // size
        end = -(-(idx + 1) * n // size)
        acc = np.int64 if out.dtype.kind in "ui" else np.float64
        padded = list(out.shape)
        padded[axis] = n + 1
        sums = np.zeros(padded, acc)  # sums[k] = sum of the first k pixels along the axis
        np.cumsum(out, axis=axis, dtype=acc, out=sums[1:] if axis == 0 else sums[:, 1:])
        shape = [1] * out.ndim
        shape[axis] = size
        counts = (end - start).reshape(shape)
        out = (np.take(sums, end, axis=axis) - np.take(sums, start, axis=axis)) / counts
    return out


def to_network_input(rgb: np.ndarray, size: tuple[int, int], rule: str = "greenless") -> np.ndarray:
    """HxWx3 uint8 RGB -> 1x3xhxw float32 in [-1, 1] at ``size`` (h, w): area-resized when shrinking and
    bilinear when enlarging (``greenless``), or area-resized both ways as the official demo (``modnet-demo``)."""
    h, w = size
    if rule == "modnet-demo":
        x = (area_resize(rgb, h, w) * (2.0 / 255.0) - 1.0).astype(np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    interp = cv2.INTER_AREA if h * w < rgb.shape[0] * rgb.shape[1] else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (w, h), interpolation=interp) if (h, w) != rgb.shape[:2] else rgb
    x = resized.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def prev_alpha_channel(prev: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """The previous-frame-alpha input of 4-channel networks, 1x1xhxw in [-1, 1]; no previous alpha is a
    blank channel (-1, zero alpha), as training blanks it."""
    h, w = size
    if prev is None:
        return np.full((1, 1, h, w), -1.0, np.float32)
    prev = np.asarray(prev, np.float32)
    if prev.shape != (h, w):
        prev = cv2.resize(prev, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray((prev * 2.0 - 1.0)[None, None])


def matte_to_size(matte: np.ndarray, height: int, width: int, rule: str = "greenless") -> np.ndarray:
    """A network matte back at the original image size, clipped to [0, 1]: bilinear (``greenless``) or area
    resizing as the official demo (``modnet-demo``)."""
    if rule == "modnet-demo" and matte.shape != (height, width):
        matte = area_resize(matte, height, width)
    elif matte.shape != (height, width):
        matte = cv2.resize(matte, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(matte, 0.0, 1.0).astype(np.float32, copy=False)
