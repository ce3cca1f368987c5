"""Reference-size resizing (both sides multiples of 32) and [-1, 1] normalisation for the network."""

from __future__ import annotations

import cv2
import numpy as np


def inference_size(height: int, width: int, ref_size: int = 512) -> tuple[int, int]:
    """Size the network sees: the short side becomes ``ref_size``, then both sides round to multiples of 32.

    Images whose both sides are already within ``ref_size`` keep their size (rounded), as in MODNet's demo.
    """
    if ref_size < 32:
        raise ValueError("ref_size must be at least 32")
    if max(height, width) < ref_size or min(height, width) > ref_size:
        scale = ref_size / min(height, width)
        height, width = height * scale, width * scale
    new_h = max(32, int(round(height / 32)) * 32)
    new_w = max(32, int(round(width / 32)) * 32)
    return new_h, new_w


def to_network_input(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 RGB -> 1x3xhxw float32 in [-1, 1] at ``size`` (h, w), area-resized when shrinking."""
    h, w = size
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


def network_input(rgb: np.ndarray, size: tuple[int, int], channels: int = 3,
                  prev: np.ndarray | None = None) -> np.ndarray:
    """``to_network_input`` plus, for 4-channel networks, the previous-alpha channel (blank by default)."""
    x = to_network_input(rgb, size)
    return np.concatenate([x, prev_alpha_channel(prev, size)], axis=1) if channels == 4 else x


def matte_to_size(matte: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a network matte back to the original image size, clipped to [0, 1]."""
    if matte.shape != (height, width):
        matte = cv2.resize(matte, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(matte, 0.0, 1.0).astype(np.float32, copy=False)
