"""The photo detail stage: closed-form matting of the edge band at (near) full resolution.

A network at reference size 384 sees a 1080x1920 portrait at a fifth of its size, so its matte is a
smooth outline: no strand of hair survives the upsampling. Closed-form matting (Levin, Lischinski and
Weiss, "A Closed-Form Solution to Natural Image Matting", PAMI 2008) solves alpha from the image itself
under the local colour-line model: in each 3x3 window alpha is an affine function of the colour. Given
where alpha is surely 0 and surely 1 it fills in the rest, following edges the network never saw.
rembg offers the same idea as its opt-in "alpha matting"; here it is one step of the photo recipe:

1. **Trimap from the matte and the guide** (``band_trimap``): the network's matte says where the edge
   is; the guide (the segmentation model's mask) is a second opinion about what is background. Pixels
   are sure foreground where the matte is solid (above ``fg_threshold``) farther than the band's
   half-width from anything softer, sure background where the matte *or* the guide is clear background
   (below ``bg_threshold``) that far in; the rest, a band of ``band`` of the short side around the
   outline, is unknown. Trusting either one for background removes what one of them wrongly keeps
   (the foot of a sculpture, a lit window); trusting only the network for foreground keeps the person
   solid where the guide's own edge is soft.
2. **Solve inside the band only** (``solve_band``): the matting Laplacian is built for the windows that
   touch unknown pixels (never for the whole image), and the unknowns are solved with the known
   alphas as boundary values, plus a weak pull (``prior``) towards the network's matte so that where
   the colour model says nothing the network's answer stands. Where the network and the guide are both
   sure of the person (above ``trust_above``) the pull is stronger (``trust``): closed-form matting
   punches holes in clothes whose colours match the background (white flowers of a dress before a
   light wall), which the network, seeing the whole person, does not.
   Solved directly at half the working size, then polished by a few Jacobi-preconditioned conjugate-gradient
   steps at the working size; scipy's sparse tools, no numba.
3. **Back to full size with the image as guide** (``guided_upsample``): the solve runs at a working
   size (long side ``work_size``); the result is lifted to the photo's size by a fast guided filter
   (He and Sun, "Fast Guided Filter", 2015): per-pixel affine colour-to-alpha coefficients fitted at the
   working size, enlarged, and applied to the full-resolution colours, so edges sharpen to the photo's
   own pixels. Outside the band alpha is the trimap's sure 0 or 1, and only the band is lifted this way.

Foreground colours for cut-outs and composites are then estimated at full size from the refined alpha
(``greenless.pipeline.compose.estimate_foreground``), as for any matte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from greenless.errors import GreenlessError

#: What ``--refine`` takes: ``band`` (the closed-form detail stage) or ``none`` (the network's matte).
REFINERS = ("band", "none")


@dataclass(frozen=True)
class DetailSettings:
    """How the detail stage draws its trimap and solves the band (defaults: the photo recipe's)."""

    band: float = 0.02  # half-width of the unknown band, as a fraction of the working image's short side
    fg_threshold: float = 0.98  # matte at or above this (away from softer pixels) is sure foreground
    bg_threshold: float = 0.02  # matte or guide at or below this (away from the edge) is sure background
    guide_fg: float = 0.5  # sure foreground also needs the guide to call it person (its own 0.5 decision)
    work_size: int = 768  # long side the band is solved at (smaller photos are solved at their own size)
    epsilon: float = 1e-6  # the colour-line model's regulariser (Levin et al.): larger is smoother
    prior: float = 1e-5  # pull of each unknown pixel towards the network's matte (keeps the system definite)
    trust: float = 0.03  # extra pull towards the network where it and the guide are both sure of the person
    trust_above: float = 0.9  # ... that is, where both are above this (the guide's own "confident", as in bounding)
    levels: int = 2  # halvings below the working size where the band is solved directly (coarse to fine)
    iterations: int = 60  # conjugate-gradient steps at the working size, from the half-size direct solve
    # Guided-filter radius (working pixels) when lifting to full size: 1, the colour-line model's own 3x3 windows.
    upsample_radius: int = 1
    upsample_eps: float = 1e-4  # guided-filter regulariser

    def __post_init__(self) -> None:
        checks = {
            "band": 0.0 < self.band <= 0.25,
            "fg_threshold": 0.5 < self.fg_threshold <= 1.0,
            "bg_threshold": 0.0 <= self.bg_threshold < 0.5,
            "work_size": 64 <= self.work_size <= 8192,
            "epsilon": 0.0 < self.epsilon <= 1.0,
            "prior": 0.0 < self.prior <= 100.0,
            "trust": 0.0 <= self.trust <= 100.0,
            "trust_above": 0.0 <= self.trust_above < 1.0,
            "iterations": 1 <= self.iterations <= 10_000,
            "levels": 0 <= self.levels <= 4,
            "upsample_radius": 1 <= self.upsample_radius <= 32,
            "upsample_eps": 0.0 < self.upsample_eps <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise GreenlessError(f"detail stage: {name} = {getattr(self, name)!r} is out of range")


def check_refiner(refine: str) -> str:
    """``refine`` if it is one of REFINERS, else a one-line error."""
    if refine not in REFINERS:
        raise GreenlessError(f"unknown refiner {refine!r}; choose from {', '.join(REFINERS)}")
    return refine


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def band_trimap(alpha: np.ndarray, guide: np.ndarray | None, settings: DetailSettings) -> tuple[np.ndarray, np.ndarray]:
    """``(fg, bg)`` boolean masks of sure foreground and sure background; the rest is the unknown band.

    See the module docstring, step 1. ``guide`` may be None (the network's matte alone decides).
    """
    radius = max(1, round(settings.band * min(alpha.shape)))
    disk = _disk(radius)
    sure = alpha >= settings.fg_threshold
    if guide is not None:
        sure &= guide >= settings.guide_fg
    fg = cv2.erode(sure.astype(np.uint8), disk) > 0
    background = alpha <= settings.bg_threshold
    if guide is not None:
        background |= guide <= settings.bg_threshold
    bg = cv2.erode(background.astype(np.uint8), disk) > 0
    return fg, bg & ~fg


def solve_band(image: np.ndarray, alpha: np.ndarray, unknown: np.ndarray, settings: DetailSettings,
               x0: np.ndarray | None = None, trust: np.ndarray | None = None) -> np.ndarray:
    """Alpha with the ``unknown`` pixels solved by closed-form matting; the others keep ``alpha``.

    ``image`` is HxWx3 float in [0, 1], ``alpha`` HxW float (the known values and the prior). Only the
    3x3 windows that touch an unknown pixel enter the system (see the module docstring, step 2). Without
    ``x0`` the system is solved directly; with ``x0`` (a starting alpha, HxW) by ``settings.iterations``
    conjugate-gradient steps from it.
    """
    from scipy.sparse import coo_matrix, diags
    from scipy.sparse.linalg import spsolve

    h, w = alpha.shape
    out = alpha.astype(np.float64, copy=True)
    # Window centres whose window holds an unknown pixel; windows must lie inside the image.
    centres = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    centres[[0, -1], :] = False
    centres[:, [0, -1]] = False
    cy, cx = np.nonzero(centres)
    if cy.size == 0:
        return out
    image = image.astype(np.float64, copy=False)
    # Levin et al.'s 3x3 windows, regularised by epsilon / |window| (only interior windows are used, so the
    # border rule of the box filter never enters).
    mean, cov = _box_stats(image, (3, 3), settings.epsilon / 9.0)
    inv = np.linalg.inv(cov[cy, cx])  # n x 3 x 3
    dy, dx = np.mgrid[-1:2, -1:2]
    py, px = cy[:, None] + dy.ravel(), cx[:, None] + dx.ravel()  # n x 9 window pixels
    diff = image[py, px] - mean[cy, cx][:, None, :]  # n x 9 x 3
    gram = np.einsum("nia,nab,njb->nij", diff, inv, diff, optimize=True)
    values = np.eye(9)[None] - (1.0 + gram) / 9.0  # Levin et al.'s window term
    # Compact numbering of the pixels the windows touch: unknowns first, then their known neighbours.
    flat = (py * w + px).ravel()
    touched = np.unique(flat)
    is_unknown = unknown.ravel()[touched]
    order = np.concatenate([touched[is_unknown], touched[~is_unknown]])
    index = np.full(h * w, -1, np.int64)
    index[order] = np.arange(order.size)
    local = index[py * w + px]  # n x 9
    rows = np.repeat(local, 9, axis=1).ravel()
    cols = np.tile(local, (1, 9)).ravel()
    lap = coo_matrix((values.ravel(), (rows, cols)), shape=(order.size, order.size)).tocsr()
    n_unknown = int(is_unknown.sum())
    lap_uu, lap_uk = lap[:n_unknown, :n_unknown], lap[:n_unknown, n_unknown:]
    known = alpha.ravel()[order[n_unknown:]].astype(np.float64)
    prior = alpha.ravel()[order[:n_unknown]].astype(np.float64)
    weight = np.full(n_unknown, settings.prior)
    if trust is not None:
        weight += settings.trust * trust.ravel()[order[:n_unknown]]
    system = (lap_uu + diags(weight)).tocsr()
    rhs = weight * prior - lap_uk @ known
    if x0 is None:  # small enough for a direct solve
        x = spsolve(system.tocsc(), rhs, permc_spec="MMD_AT_PLUS_A")
    else:  # a few Jacobi-preconditioned CG steps from the enlarged coarse solution
        x = _jacobi_cg(system, rhs, x0.ravel()[order[:n_unknown]].astype(np.float64), settings.iterations)
    out.ravel()[order[:n_unknown]] = np.clip(x, 0.0, 1.0)
    return out


def _jacobi_cg(system: Any, rhs: np.ndarray, x: np.ndarray, iterations: int) -> np.ndarray:
    """``iterations`` steps of Jacobi-preconditioned conjugate gradients on the SPD ``system`` from ``x``.

    Written out (a dozen lines) rather than scipy's ``cg``: its per-step BLAS calls on vectors this short spend
    more time starting threads than computing, a third of the stage's time on two busy cores."""
    inv_diag = 1.0 / np.maximum(system.diagonal(), 1e-12)
    r = rhs - system @ x
    z = inv_diag * r
    p = z.copy()
    rz = float((r * z).sum())
    for _ in range(iterations):
        if rz <= 1e-30:
            break
        q = system @ p
        step = rz / float((p * q).sum())
        x += step * p
        r -= step * q
        z = inv_diag * r
        rz, rz_old = float((r * z).sum()), rz
        p = z + (rz / rz_old) * p
    return x


def guided_upsample(alpha: np.ndarray, image: np.ndarray, rgb: np.ndarray, active: np.ndarray, radius: int,
                    eps: float, block: int = 32) -> np.ndarray:
    """Fast guided filter: fit ``alpha ~ A . colour + b`` per window on the small ``image`` (HxWx3 float in
    [0, 1]), enlarge A and b to the photo ``rgb`` (uint8, full size) and apply them to its colours.

    Only where ``active`` (working size) marks pixels: elsewhere ``alpha`` is a sure 0 or 1 and is simply
    enlarged. The photo is walked in runs of ``block`` x ``block`` working pixels that hold an active pixel,
    each enlarged with ``cv2.remap`` at exactly the positions ``cv2.resize`` would sample, so a 12 MP photo
    costs about its band, not its size. Returns the full-size alpha (float32, not clipped)."""
    box = (2 * radius + 1, 2 * radius + 1)
    mean_i, cov = _box_stats(image, box, eps)
    mean_a = cv2.blur(alpha, box)
    cov_ia = np.stack([cv2.blur(image[:, :, c] * alpha, box) - mean_i[:, :, c] * mean_a for c in range(3)], -1)
    coef = np.linalg.solve(cov, cov_ia[..., None])[..., 0]  # HxWx3
    offset = mean_a - np.einsum("hwc,hwc->hw", coef, mean_i)
    lifted = np.dstack([cv2.blur(coef, box), cv2.blur(offset, box)]).astype(np.float32)  # HxWx4
    h, w = alpha.shape
    height, width = rgb.shape[:2]
    out = cv2.resize(alpha.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    sy, sx = height / h, width / w
    grow = np.ones((2 * radius + 3, 2 * radius + 3), np.uint8)  # the filter's reach, and one pixel to spare
    reach = cv2.dilate(active.astype(np.uint8), grow)
    for by in range(0, h, block):
        rows = reach[by:by + block].any(axis=0)
        cols = np.flatnonzero(np.add.reduceat(rows, np.arange(0, w, block)) > 0) * block
        for bx0, bx1 in _runs(cols, block, w):
            y0, y1 = round(by * sy), min(height, round((by + block) * sy))
            x0, x1 = round(bx0 * sx), min(width, round(bx1 * sx))
            map_x = np.broadcast_to(((np.arange(x0, x1) + 0.5) / sx - 0.5).astype(np.float32), (y1 - y0, x1 - x0))
            map_y = np.broadcast_to(((np.arange(y0, y1) + 0.5) / sy - 0.5).astype(np.float32)[:, None],
                                    (y1 - y0, x1 - x0))
            ab = cv2.remap(lifted, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
            colours = rgb[y0:y1, x0:x1].astype(np.float32) * (1.0 / 255.0)
            out[y0:y1, x0:x1] = np.einsum("hwc,hwc->hw", ab[:, :, :3], colours) + ab[:, :, 3]
    return out


def _runs(starts: np.ndarray, block: int, limit: int) -> list[tuple[int, int]]:
    """Merge block starts (sorted, multiples of ``block``) into ``(begin, end)`` runs of touching blocks."""
    runs: list[tuple[int, int]] = []
    for start in starts.tolist():
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], min(limit, start + block))
        else:
            runs.append((start, min(limit, start + block)))
    return runs


def _box_stats(image: np.ndarray, box: tuple[int, int], eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour (HxWx3) and covariance plus ``eps`` on the diagonal (HxWx3x3) of every ``box`` window of
    ``image``: the closed-form solve's colour-line windows and the guided filter's alike."""
    mean = cv2.blur(image, box)
    cov = np.empty(image.shape[:2] + (3, 3), image.dtype)
    for a in range(3):
        for b in range(a, 3):
            cov[:, :, a, b] = cov[:, :, b, a] = cv2.blur(image[:, :, a] * image[:, :, b], box) - mean[:, :, a] * mean[:, :, b]
    cov += np.eye(3, dtype=image.dtype) * eps
    return mean, cov


def refine_matte(rgb: np.ndarray, alpha: np.ndarray, guide: np.ndarray | None,
                 settings: DetailSettings | None = None) -> np.ndarray:
    """The detail stage: the photo ``rgb`` (HxWx3 uint8) and the network's bounded matte ``alpha`` (float in
    [0, 1]) -> a full-size HxW float32 matte whose edge band is re-solved from the photo's colours.

    ``alpha`` and ``guide`` (the segmentation guide, or None) may be at any size, e.g. the network's: both are
    brought to the working size directly, so a 12 MP photo never has a full-size copy of either.
    """
    settings = settings or DetailSettings()
    h, w = rgb.shape[:2]
    scale = min(1.0, settings.work_size / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = rgb if scale == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) * (1.0 / 255.0)
    small_alpha = np.clip(_to_size(alpha, size), 0.0, 1.0)
    small_guide = None if guide is None else np.clip(_to_size(guide, size), 0.0, 1.0)
    fg, bg = band_trimap(small_alpha, small_guide, settings)
    unknown = ~(fg | bg)
    known = np.where(fg, 1.0, np.where(bg, 0.0, small_alpha)).astype(np.float32)
    if unknown.any():
        sure = small_alpha if small_guide is None else np.minimum(small_alpha, small_guide)
        trust = np.clip((sure - settings.trust_above) / (1.0 - settings.trust_above), 0.0, 1.0) ** 2
        known = _solve_coarse_to_fine(small, known, unknown, settings, trust)
    if scale == 1.0:
        return np.clip(known, 0.0, 1.0).astype(np.float32)
    # Sure pixels keep their 0 or 1; the band is lifted with the photo's own colours as the guide.
    full = guided_upsample(known, small, rgb, unknown, settings.upsample_radius, settings.upsample_eps)
    return np.clip(full, 0.0, 1.0, out=full)


def _to_size(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``array`` (HxW float) resized to ``size`` (w, h): by area when shrinking, bilinear when enlarging."""
    array = np.asarray(array, np.float32)
    if (array.shape[1], array.shape[0]) == size:
        return array
    shrink = size[0] < array.shape[1] and size[1] < array.shape[0]
    return cv2.resize(array, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _solve_coarse_to_fine(image: np.ndarray, known: np.ndarray, unknown: np.ndarray,
                          settings: DetailSettings, trust: np.ndarray, levels: int | None = None) -> np.ndarray:
    """``solve_band`` at the working size, coarse to fine: solved directly ``levels`` halvings down (a
    direct solve is cheap on a sixteenth of the unknowns), then at each finer level enlarged and polished by
    ``settings.iterations`` CG steps."""
    levels = settings.levels if levels is None else levels
    if levels == 0:
        return solve_band(image, known, unknown, settings, trust=trust).astype(np.float32)
    h, w = known.shape
    half = (max(1, w // 2), max(1, h // 2))
    coarse = _solve_coarse_to_fine(cv2.resize(image, half, interpolation=cv2.INTER_AREA),
                                   cv2.resize(known, half, interpolation=cv2.INTER_AREA),
                                   cv2.resize(unknown.astype(np.uint8), half, interpolation=cv2.INTER_NEAREST) > 0,
                                   settings, cv2.resize(trust, half, interpolation=cv2.INTER_AREA), levels - 1)
    start = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    return solve_band(image, known, unknown, settings, x0=start, trust=trust).astype(np.float32)
