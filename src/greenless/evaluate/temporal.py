"""Temporal coherence of alpha sequences: dtSSD (Erofeev et al. 2015) and a flicker measure that needs no ground truth.

Alphas are float arrays in [0, 1] (uint8 mattes are scaled by 1/255); frames are HxWx3 uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FLICKER_STATIC_THRESHOLD = 4  # uint8 levels: below this in every channel a pixel counts as "did not change"


def _as_alpha(alpha: np.ndarray) -> np.ndarray:
    a = np.asarray(alpha)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64, copy=False)


def dtssd(pred: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """Mean over t >= 1 of the RMS, over pixels, of (pred_t - pred_{t-1}) - (truth_t - truth_{t-1}).

    Zero when the prediction changes exactly as the ground truth does; sequences need >= 2 frames.
    Multiply by 100 for the scale RVM-style tables report.
    """
    if len(pred) != len(truth):
        raise ValueError(f"sequences differ in length: {len(pred)} vs {len(truth)}")
    if len(pred) < 2:
        raise ValueError("dtSSD needs at least two frames")
    total = 0.0
    prev_p, prev_t = _as_alpha(pred[0]), _as_alpha(truth[0])
    for p, t in zip(pred[1:], truth[1:], strict=True):
        cur_p, cur_t = _as_alpha(p), _as_alpha(t)
        if cur_p.shape != cur_t.shape:
            raise ValueError(f"frame shapes differ: {cur_p.shape} vs {cur_t.shape}")
        diff = (cur_p - prev_p) - (cur_t - prev_t)
        total += float(np.sqrt(np.mean(diff * diff)))
        prev_p, prev_t = cur_p, cur_t
    return total / (len(pred) - 1)


class FlickerMeter:
    """Streaming flicker: feed (frame, alpha) in order; constant memory, so whole videos can be measured."""

    def __init__(self, threshold: int = FLICKER_STATIC_THRESHOLD) -> None:
        self.threshold = threshold
        self.changed_sum = 0.0
        self.static_count = 0
        self.pixel_count = 0
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def update(self, frame: np.ndarray, alpha: np.ndarray) -> None:
        """Add the next frame and its alpha."""
        alpha = _as_alpha(alpha)
        if self._prev is not None:
            prev_frame, prev_alpha = self._prev
            img_diff = np.abs(frame.astype(np.int16) - prev_frame.astype(np.int16))
            static = (img_diff < self.threshold).all(axis=2) if img_diff.ndim == 3 else img_diff < self.threshold
            self.changed_sum += float(np.abs(alpha - prev_alpha)[static].sum())
            self.static_count += int(static.sum())
            self.pixel_count += static.size
        self._prev = (frame, alpha)

    @property
    def value(self) -> float:
        """Mean |alpha change| over static pixels so far (0.0 when none)."""
        return self.changed_sum / self.static_count if self.static_count else 0.0

    @property
    def static_fraction(self) -> float:
        """Share of pixel pairs counted as static."""
        return self.static_count / self.pixel_count if self.pixel_count else 0.0


def flicker(alphas: Sequence[np.ndarray], frames: Sequence[np.ndarray],
            threshold: int = FLICKER_STATIC_THRESHOLD) -> tuple[float, float]:
    """Mean |alpha_t - alpha_{t-1}| over pixels whose input did not change (|I_t - I_{t-1}| < threshold in all channels).

    Returns (flicker, static fraction): the matte should not move where the picture does not, so any
    change there is flicker. Pixels are pooled over all frame pairs; (0.0, 0.0) when no pixel is static.
    """
    if len(alphas) != len(frames):
        raise ValueError(f"{len(alphas)} alphas for {len(frames)} frames")
    meter = FlickerMeter(threshold)
    for frame, alpha in zip(frames, alphas, strict=True):
        meter.update(frame, alpha)
    return meter.value, meter.static_fraction
