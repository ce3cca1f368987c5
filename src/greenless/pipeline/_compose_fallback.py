"""Minimal composition helpers so the video branch runs on its own; greenless.pipeline.compose replaces them."""

from __future__ import annotations

import cv2
import numpy as np


def _alpha3(alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)
    if a.max() > 1.0:
        a = a / 255.0
    return a.reshape(a.shape[0], a.shape[1], 1)


def composite(rgb: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """alpha * rgb + (1 - alpha) * background, as HxWx3 uint8."""
    a = _alpha3(alpha)
    out = rgb.astype(np.float32) * a + background.astype(np.float32) * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def cutout(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGB plus the matte as a fourth channel, HxWx4 uint8."""
    a8 = np.clip(_alpha3(alpha)[:, :, 0] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.dstack([rgb, a8])


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours by one pass of blur fusion: local alpha-weighted means of fore- and background."""
    img = rgb.astype(np.float32) / 255.0
    a = _alpha3(alpha)
    k = (31, 31)
    blur_a = cv2.blur(a, k)[:, :, None]
    blur_f = cv2.blur(img * a, k) / (blur_a + 1e-5)
    blur_b = cv2.blur(img * (1.0 - a), k) / (1.0 - blur_a + 1e-5)
    fg = blur_f + a * (img - a * blur_f - (1.0 - a) * blur_b)
    return np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)
