"""Pseudo-labels for training: a coarse person mask refined into a soft alpha and a clean foreground.

Two ways to a coarse mask, both refined the same way (trimap -> closed-form matting -> multilevel
foreground estimation, both from pymatting):

- a person-segmentation mask (the reference selfie model) for photos and frames with real backgrounds;
- a fitted background plate for studio shots on a plain, smoothly lit backdrop: a low-order polynomial
  fitted to the backdrop pixels predicts the backdrop everywhere, so the difference to it marks
  everything that is not backdrop (hair strands included) far more exactly than a segmentation model.

Used by ``scripts/build_training_data.py`` and ``scripts/build_extra_data.py``. pymatting (numba) and
PyAV are imported lazily: they belong to the ``train`` and ``video`` extras.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import binary_fill_holes

from greenless.pipeline.guide import largest_components  # one rule for specks, shared with the guide's bounds


def read_frames(path: Path, every: int, start: int = 0, limit: int | None = None) -> list[tuple[int, np.ndarray]]:
    """Every ``every``-th decoded frame of a video as RGB uint8, with its index."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for idx, frame in enumerate(container.decode(video=0)):
            if idx >= start and (idx - start) % every == 0:
                frames.append((idx, frame.to_ndarray(format="rgb24")))
                if limit and len(frames) >= limit:
                    break
    return frames


def trimap_from_mask(mask: np.ndarray, band_fraction: float = 0.012) -> np.ndarray:
    """Trimap (0 bg, 0.5 unknown, 1 fg) whose unknown band grows with the image diagonal."""
    h, w = mask.shape
    k = max(3, int(band_fraction * np.hypot(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    fg = cv2.erode((mask > 0.5).astype(np.uint8), kernel)
    bg = cv2.erode((mask <= 0.5).astype(np.uint8), kernel)
    trimap = np.full(mask.shape, 0.5)
    trimap[fg == 1] = 1.0
    trimap[bg == 1] = 0.0
    return trimap


def matte_trimap(rgb: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form matting of ``rgb`` (uint8) inside ``trimap``, then multilevel foreground colours.

    Returns (alpha, fg) as float64 in [0, 1]; the foreground is what composites are made of, so it must
    carry no backdrop colour at the edges (that is what ``estimate_foreground_ml`` removes).
    """
    from pymatting import estimate_alpha_cf, estimate_foreground_ml

    image = rgb.astype(np.float64) / 255.0
    alpha = np.clip(estimate_alpha_cf(image, trimap), 0.0, 1.0)
    fg = np.clip(estimate_foreground_ml(image, alpha), 0.0, 1.0)
    return alpha, fg


def refine(rgb: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form matting in the trimap band of a coarse mask, then multilevel foreground colour estimation."""
    return matte_trimap(rgb, trimap_from_mask(coarse))


def crop_to_person(rgb: np.ndarray, mask: np.ndarray, margin: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Crop a frame around the person so small full-body figures fill more of the training crop."""
    ys, xs = np.nonzero(mask > 0.5)
    h, w = mask.shape
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    ph, pw = y1 - y0, x1 - x0
    y0, y1 = max(0, int(y0 - margin * ph)), min(h, int(y1 + margin * ph))
    x0, x1 = max(0, int(x0 - margin * pw - 0.3 * ph)), min(w, int(x1 + margin * pw + 0.3 * ph))
    return rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def segment_person(segmenter: Callable[..., np.ndarray], rgb: np.ndarray,
                   min_fraction: float = 0.03) -> np.ndarray | None:
    """Coarse person mask (float32 0/1) from the reference model, letterboxed; None if the person is too small."""
    soft = segmenter(rgb, mode="pad")
    mask = largest_components(soft > 0.5).astype(np.float32)
    if mask.sum() < min_fraction * mask.size:
        return None
    return mask


def _poly_terms(ys: np.ndarray, xs: np.ndarray, degree: int) -> np.ndarray:
    """Monomials x^i y^j (i + j <= degree) of normalised coordinates, one column each."""
    return np.stack([xs ** i * ys ** j for i in range(degree + 1) for j in range(degree + 1 - i)], axis=1)


def fit_background_plate(rgb: np.ndarray, backdrop: np.ndarray, degree: int = 3, smooth: float = 0.03,
                         samples: int = 20000, seed: int = 0) -> tuple[np.ndarray, float]:
    """Fit a smooth plate to the backdrop pixels of a studio shot: per channel a polynomial in (x, y).

    ``backdrop`` marks pixels known to be backdrop (True). The fit is robust: two refits that drop the
    worst residuals (shadows, stray hair the mask missed); then, if ``smooth`` > 0, the residual of the
    backdrop pixels, blurred over ``smooth`` of the image diagonal, is added back. Returns the plate (float32, 0-255, HxWx3) and
    the robust residual scale (in 0-255 units) of the backdrop around it, which sets the thresholds of
    :func:`plate_trimap`. Low order on purpose: a studio backdrop's light falls off smoothly, and a
    stiff model cannot bend into the person the way a blur or inpainting would.
    """
    h, w = backdrop.shape
    ys, xs = np.nonzero(backdrop)
    if len(ys) < 50:
        raise ValueError("too few backdrop pixels to fit a plate")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(ys), size=min(samples, len(ys)), replace=False)
    ys, xs = ys[pick], xs[pick]
    design = _poly_terms(ys / h * 2 - 1, xs / w * 2 - 1, degree)
    values = rgb[ys, xs].astype(np.float64)
    keep = np.ones(len(ys), bool)
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        resid = np.abs(design @ coef - values).max(axis=1)
        scale = 1.4826 * float(np.median(resid[keep])) + 0.5
        keep = resid < 3.0 * scale
    gy, gx = np.mgrid[0:h, 0:w]
    plate = (_poly_terms(gy.ravel() / h * 2 - 1, gx.ravel() / w * 2 - 1, degree) @ coef).reshape(h, w, 3)
    plate = plate.astype(np.float32)
    if smooth > 0:
        # What a polynomial cannot follow (a cyclorama's floor-to-wall bend, vignetting corners): the
        # backdrop residual, smoothed by normalised convolution so it spreads only from backdrop pixels.
        resid_full = rgb.astype(np.float32) - plate
        inlier = backdrop & (np.abs(resid_full).max(axis=2) < 3.0 * scale)
        weight = inlier.astype(np.float32)
        sigma = smooth * float(np.hypot(h, w))
        num = cv2.GaussianBlur(resid_full * weight[..., None], (0, 0), sigma)
        den = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
        plate = plate + num / np.maximum(den, 1e-3) * np.minimum(den / 0.05, 1.0)
        resid = np.abs(rgb.astype(np.float32) - plate)[inlier].max(axis=1)
        scale = 1.4826 * float(np.median(resid)) + 0.5
    return plate, scale


def plate_difference(rgb: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """Per-pixel largest channel difference (0-255) between an image and its fitted backdrop plate."""
    return np.abs(rgb.astype(np.float32) - plate).max(axis=2)


def cast_shadow(rgb: np.ndarray, plate: np.ndarray, coarse: np.ndarray, floor_from: float = 0.55) -> np.ndarray:
    """Pixels that look like a shadow on the floor: the backdrop darkened by one factor in all channels.

    Only for full-body shots (the person ends above the bottom edge), only below ``floor_from`` of the
    person's height and only outside the coarse person mask, so dark hair (which also darkens a grey
    backdrop) is never taken for shadow. Shadows are not part of the person's matte (matting data sets
    leave them out), and would otherwise become a grey smear at the feet and between the legs.
    """
    person = coarse > 0.5
    rows = np.flatnonzero(person.any(axis=1))
    out = np.zeros(coarse.shape, bool)
    if len(rows) == 0 or rows[-1] >= coarse.shape[0] - 2:
        return out
    y0 = int(rows[0] + floor_from * (rows[-1] - rows[0]))
    ratio = rgb[y0:].astype(np.float32) / np.maximum(plate[y0:], 1.0)
    darker = (ratio.max(axis=2) < 0.98) & (ratio.min(axis=2) > 0.2)
    neutral = (ratio.max(axis=2) - ratio.min(axis=2)) < 0.08
    out[y0:] = darker & neutral & ~person[y0:]
    return out


def plate_trimap(diff: np.ndarray, scale: float, coarse: np.ndarray | None = None, low: float = 4.0,
                 mid: float = 6.0, high: float = 12.0, band: float = 0.006) -> np.ndarray:
    """Trimap from the difference to a backdrop plate (in units of the backdrop's residual scale).

    Definite foreground: the large connected region that differs strongly (``high``), with the coarse
    mask's core and what differs moderately (``mid``) just inside the coarse mask, holes filled (a grey
    shirt on a grey backdrop still lies inside the person) unless a hole is backdrop-coloured, eroded.
    Definite background: pixels that do not differ even weakly (``low``), away from the person by a
    thin band. Everything else (hair, soft edges, motion blur) is unknown and left to closed-form matting.
    """
    h, w = diff.shape
    k = max(2, int(band * np.hypot(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    strong = largest_components(diff > high * scale, keep_fraction=0.05)
    strong = cv2.morphologyEx(strong, cv2.MORPH_CLOSE, kernel)
    if coarse is not None:
        # The coarse mask's own edge is far rougher than the plate's: its deep core counts as person,
        # and so does what differs moderately (``mid``) a little inside its edge (legs and arms in skin
        # tones on a light floor differ less than ``high``, and are too thin for a deep core).
        person = (coarse > 0.5).astype(np.uint8)
        ellipse = cv2.MORPH_ELLIPSE
        core = cv2.erode(person, cv2.getStructuringElement(ellipse, (8 * k + 1, 8 * k + 1)),
                         borderType=cv2.BORDER_REPLICATE)
        inner: np.ndarray = cv2.erode(person, cv2.getStructuringElement(ellipse, (2 * k + 1, 2 * k + 1)),
                          borderType=cv2.BORDER_REPLICATE)
        strong = np.maximum(strong, np.maximum(core, inner & (diff > mid * scale)))
    solid = binary_fill_holes(strong).astype(np.uint8)
    # A hole that is mostly backdrop-coloured is a gap (between the legs, under an arm), not a grey shirt.
    # connectivity 8: the 4 this passed positionally went to OpenCV's ``labels`` output, so 8 (the default) is
    # what every label built so far used
    n, labels, stats, _ = cv2.connectedComponentsWithStats((solid & (1 - strong)).astype(np.uint8), connectivity=8)
    for i in range(1, n):
        hole = labels == i
        if stats[i, cv2.CC_STAT_AREA] > 4 * k * k and (diff[hole] < low * scale).mean() > 0.5:
            solid[hole] = 0
    # Weak differences count where they hang together with the person (thin strands of hair, which an
    # opening would erase); isolated specks elsewhere are noise, dust or JPEG blocks.
    near = cv2.dilate(solid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (8 * k + 1, 8 * k + 1)))
    weak = ((diff > low * scale) & (near > 0)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.maximum(weak, solid), connectivity=8)
    touching = np.unique(labels[solid > 0])
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= 30)
    anything = (np.isin(labels, np.union1d(touching, big)) & (labels > 0)).astype(np.uint8)
    trimap = np.full(diff.shape, 0.5)
    trimap[cv2.dilate(anything, kernel) == 0] = 0.0
    trimap[cv2.erode(solid, kernel) == 1] = 1.0
    return trimap


def studio_trimap(rgb: np.ndarray, coarse: np.ndarray, degree: int = 3,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Trimap of a studio shot on a plain backdrop from a fitted plate: (trimap, plate difference, scale).

    ``coarse`` is a rough person mask (from the reference model); it decides which pixels the plate is
    fitted on (everything well outside it), keeps shadows apart from the person and fills low-contrast
    parts of the person.
    """
    h, w = coarse.shape
    k = max(5, int(0.04 * np.hypot(h, w)))
    far = cv2.dilate((coarse > 0.5).astype(np.uint8),
                     cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))) == 0
    plate, scale = fit_background_plate(rgb, far, degree=degree, seed=seed)
    diff = plate_difference(rgb, plate)
    diff[cast_shadow(rgb, plate, coarse)] = 0.0
    return plate_trimap(diff, scale, coarse), diff, scale


def studio_matte(rgb: np.ndarray, coarse: np.ndarray, degree: int = 3,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Alpha and foreground of a studio shot on a plain backdrop: fitted plate -> trimap -> closed-form matting.

    Returns (alpha, fg, stats); stats carry the backdrop residual scale and the share of unknown pixels,
    which the caller can use to reject shots whose backdrop was not plain after all.
    """
    trimap, _, scale = studio_trimap(rgb, coarse, degree, seed)
    alpha, fg = matte_trimap(rgb, trimap)
    stats = {"residual_scale": scale, "unknown_fraction": float((trimap == 0.5).mean()),
             "fg_fraction": float(alpha.mean())}
    return alpha, fg, stats
