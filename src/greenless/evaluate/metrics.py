"""Image matting quality metrics: MSE, MAD, SAD, Grad and Conn on alpha mattes in [0, 1].

Conventions follow Rhemann et al. (CVPR 2009) as implemented by the Deep Image Matting evaluation code
that the matting literature reports: SAD, Grad and Conn are sums divided by 1000; MSE and MAD are means.
``band`` is MAD inside the transition band (the trimap's unknown region matting papers report the error of:
pixels within 1% of the short side of a true edge), so edge quality is a number of its own.
All metrics are computed over the whole image (the PPM-100 / MODNet protocol, no trimap) unless a
``mask`` restricts them (e.g. ``trimap == 128`` for the DIM unknown-region protocol).
Only NumPy and OpenCV are used, so ``greenless eval`` works on the light install.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import cv2
import numpy as np

from greenless.errors import GreenlessError

METRIC_NAMES = ("mse", "mad", "sad", "grad", "conn", "band")
#: Half-width of the transition band (``transition_band``), as a fraction of the image's short side.
BAND_WIDTH = 0.01
GRAD_SIGMA = 1.4
CONN_STEP = 0.1
CONN_THETA = 0.15


def as_alpha(alpha: Any) -> np.ndarray:
    """HxW alpha as float64 in [0, 1]: uint8 is divided by 255, uint16 by 65535, floats are clipped."""
    arr = np.asarray(alpha)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise GreenlessError(f"an alpha matte must be HxW, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float64) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float64)
    return np.clip(arr.astype(np.float64), 0.0, 1.0)


def _pair(pred: Any, gt: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p, g = as_alpha(pred), as_alpha(gt)
    if p.shape != g.shape:
        raise GreenlessError(f"prediction is {p.shape[1]}x{p.shape[0]} but ground truth is {g.shape[1]}x{g.shape[0]}")
    m = None
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        if m.shape != g.shape:
            raise GreenlessError(f"mask shape {m.shape} does not match alpha shape {g.shape}")
    return p, g, m


def _masked(err: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return err if mask is None else err[mask]


def mse(pred: Any, gt: Any, mask: Any = None) -> float:
    """Mean squared error of alpha in [0, 1]."""
    p, g, m = _pair(pred, gt, mask)
    err = _masked((p - g) ** 2, m)
    return float(err.mean()) if err.size else 0.0


def mad(pred: Any, gt: Any, mask: Any = None) -> float:
    """Mean absolute difference of alpha in [0, 1]."""
    p, g, m = _pair(pred, gt, mask)
    err = _masked(np.abs(p - g), m)
    return float(err.mean()) if err.size else 0.0


def sad(pred: Any, gt: Any, mask: Any = None) -> float:
    """Sum of absolute differences of alpha in [0, 1], divided by 1000."""
    p, g, m = _pair(pred, gt, mask)
    return float(_masked(np.abs(p - g), m).sum() / 1000.0)


def gaussian_derivative_kernels(sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D Gaussian ``g`` and derivative-of-Gaussian ``dg`` factors of the DIM gradient filter.

    The 2-D filter is ``outer(g, dg)`` (x-derivative), truncated where the Gaussian falls below 1% of
    its peak-normalised value (half size ``ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma 0.01)))``, 4 for
    sigma 1.4) and scaled to unit L2 norm, as in the DIM evaluation code. ``dg`` is already flipped
    for correlation, so filtering a left-to-right increasing ramp gives a positive x-gradient.
    """
    half = int(math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 1e-2))))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dg = x * g / sigma**2  # -d/dx g(x), i.e. the derivative kernel flipped for correlation
    norm = float(np.linalg.norm(g) * np.linalg.norm(dg))  # L2 norm of the separable 2-D kernel
    return g, dg / norm


def gradient_magnitude(alpha: Any, sigma: float = GRAD_SIGMA) -> np.ndarray:
    """Magnitude of the normalised Gaussian-derivative gradient of an alpha matte (replicated borders)."""
    a = as_alpha(alpha)
    g, dg = gaussian_derivative_kernels(sigma)
    gx = cv2.sepFilter2D(a, cv2.CV_64F, dg, g, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(a, cv2.CV_64F, g, dg, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx**2 + gy**2)


def grad(pred: Any, gt: Any, mask: Any = None, sigma: float = GRAD_SIGMA) -> float:
    """Gradient error: sum of squared differences of Gaussian-gradient magnitudes, divided by 1000."""
    p, g, m = _pair(pred, gt, mask)
    err = (gradient_magnitude(p, sigma) - gradient_magnitude(g, sigma)) ** 2
    return float(_masked(err, m).sum() / 1000.0)


def _thresholds(step: float) -> np.ndarray:
    """0, step, 2 step, ..., 1 rounded to decimals so 0.6 is 0.6 (not 0.6000000000000001)."""
    n = int(round(1.0 / step))
    return np.round(np.arange(n + 1) * step, 10)


def _largest_component(binary: np.ndarray) -> np.ndarray:
    """Mask of the largest 4-connected component of ``binary`` (all False when it is empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros(binary.shape, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def connection_levels(pred: Any, gt: Any, step: float = CONN_STEP) -> np.ndarray:
    """Per pixel, the highest threshold at which it still belongs to the source region.

    The source region at threshold t is the largest 4-connected component of pixels where both
    pred >= t and gt >= t. A pixel that leaves it at threshold t_i gets level t_{i-1}; a pixel that
    never leaves it gets 1.
    """
    p, g, _ = _pair(pred, gt)
    levels = np.full(p.shape, -1.0)
    thresholds = _thresholds(step)
    for prev, t in itertools.pairwise(thresholds):
        source = _largest_component((p >= t) & (g >= t))
        levels[(levels < 0) & ~source] = prev
    levels[levels < 0] = 1.0
    return levels


def conn(pred: Any, gt: Any, mask: Any = None, step: float = CONN_STEP, theta: float = CONN_THETA) -> float:
    """Connectivity error (Rhemann et al. 2009), divided by 1000.

    phi(alpha) = 1 - d * [d >= theta] with d = alpha - level, level from :func:`connection_levels`;
    the error is the sum of |phi(pred) - phi(gt)|.
    """
    p, g, m = _pair(pred, gt, mask)
    levels = connection_levels(p, g, step)
    dp, dg = p - levels, g - levels
    phi_p = 1.0 - dp * (dp >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return float(_masked(np.abs(phi_p - phi_g), m).sum() / 1000.0)


def transition_band(gt: Any, width: float = BAND_WIDTH) -> np.ndarray:
    """Pixels within ``width`` of the short side of the ground truth's transition (0 < alpha < 1, or a hard
    0/1 edge): the unknown region of the trimap a matting benchmark would draw, where hair and edges are."""
    g = as_alpha(gt)
    soft = (g > 0.0) & (g < 1.0)
    solid = (g >= 0.5).astype(np.uint8)
    edge = cv2.morphologyEx(solid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    radius = max(1, round(width * min(g.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate((soft | edge).astype(np.uint8), disk) > 0


def band_mad(pred: Any, gt: Any, mask: Any = None) -> float:
    """MAD inside the ground truth's ``transition_band`` (and ``mask``): the edge quality as one number (0 when
    the image has no transition)."""
    p, g, m = _pair(pred, gt, mask)
    band = transition_band(g) if m is None else transition_band(g) & m
    return float(np.abs(p - g)[band].mean()) if band.any() else 0.0


def all_metrics(pred: Any, gt: Any, mask: Any = None) -> dict[str, float]:
    """All metrics of one prediction as ``{mse, mad, sad, grad, conn, band}`` (``band``: ``band_mad``)."""
    p, g, m = _pair(pred, gt, mask)
    return {"mse": mse(p, g, m), "mad": mad(p, g, m), "sad": sad(p, g, m), "grad": grad(p, g, m), "conn": conn(p, g, m),
            "band": band_mad(p, g, m)}


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over several images."""
    if not rows:
        return {name: float("nan") for name in METRIC_NAMES}
    return {name: float(np.mean([r[name] for r in rows])) for name in METRIC_NAMES}
