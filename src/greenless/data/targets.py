"""Supervision targets derived from a ground-truth alpha: the semantic thumbnail and the transition band."""

from __future__ import annotations

import cv2
import numpy as np


def semantic_target(alpha: np.ndarray) -> np.ndarray:
    """Alpha downsampled 16x and Gaussian-blurred: what the low-resolution branch is asked to predict."""
    h, w = alpha.shape
    small = cv2.resize(alpha, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (3, 3), 0)


def transition_band(alpha: np.ndarray, fraction: float = 0.02) -> np.ndarray:
    """1 where dilation and erosion of the alpha differ (the boundary), kernel proportional to image size."""
    h, w = alpha.shape
    k = max(3, int(round(fraction * (h + w) / 2)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    dilated = cv2.dilate(alpha, kernel)
    eroded = cv2.erode(alpha, kernel)
    return (dilated - eroded > 1e-3).astype(np.float32)
