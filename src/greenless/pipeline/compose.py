"""Turning an image and its matte into results: cut-out (RGBA), foreground colours, composites on a background.

Foreground colour estimation removes the halo of old background colour that raw pixels leave in hair
and soft edges. The reference method, pymatting's multilevel ``estimate_foreground_ml``, needs numba
and takes several seconds on a 12 MP photo; we use blur-fusion instead (Forte & Pitie, "Approximate
fast foreground colour estimation", ICIP 2021): passes of box-filtered, alpha-weighted means
(a large box, then smaller ones) with ``cv2.blur``. It is a few tenths of a second at 12 MP, light
(numpy + OpenCV only), and its composites are within a whisker of pymatting's (see tests/pipeline/test_compose.py).
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from greenless.errors import GreenlessError


class OutputKind(StrEnum):
    """What to make of an image and its matte; the one list every face offers (API, CLI, server, batch, video)."""

    rgba = "rgba"  #: the cut-out: colours (de-haloed) and the matte as transparency
    alpha = "alpha"  #: the matte as 8-bit grey
    foreground = "foreground"  #: estimated foreground colours, to pair with the matte
    composite = "composite"  #: the person over a background

    @classmethod
    def parse(cls, value: str, what: str = "output") -> OutputKind:
        """``value`` (any case) as an ``OutputKind``; one ``GreenlessError`` line naming ``what`` when it is none."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise GreenlessError(f"{what} must be one of {', '.join(OUTPUT_KINDS)}, not {value!r}") from None


#: The output kinds' names, in the order help lists them.
OUTPUT_KINDS = tuple(kind.value for kind in OutputKind)

_EPS = 1e-4
#: Box sizes of the blur-fusion passes: the paper's large-then-small pair (90, 6), refined into three
#: passes (91, 15, 3), which measured about 20% closer to pymatting's composites on our portraits.
BLUR_RADII = (91, 15, 3)
# Alpha closer than this to 0 or 1 counts as solid when finding the soft region (below 8-bit resolution).
_SOFT = 0.5 / 255.0
#: Above this many pixels of soft-edge region, colours are estimated on a downscaled copy and the
#: correction (F - I, smooth by nature) is upsampled: a 12 MP photo costs about what 2.5 MP does.
FG_MAX_PIXELS = 2_500_000


def _blur_fusion_pass(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
                      radius: int) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion step: local alpha-weighted means of F and B, then the compositing-residual correction."""
    ksize = (radius, radius)
    a = alpha[:, :, None]
    blurred_a = cv2.blur(alpha, ksize)[:, :, None]
    mean_fg = cv2.blur(fg * a, ksize) / (blurred_a + _EPS)
    mean_bg = cv2.blur(bg * (1.0 - a), ksize) / ((1.0 - blurred_a) + _EPS)
    # I = aF + (1-a)B: move the smooth F estimate along the residual, in proportion to alpha.
    residual = image - a * mean_fg - (1.0 - a) * mean_bg
    new_fg = np.clip(mean_fg + a * residual, 0.0, 1.0)
    return new_fg, mean_bg


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray, radii: tuple[int, ...] = BLUR_RADII,
                        max_pixels: int = FG_MAX_PIXELS) -> np.ndarray:
    """Foreground colours F (HxWx3 uint8) such that ``alpha * F + (1 - alpha) * B`` reproduces the image.

    Blur-fusion passes with shrinking box sizes; only pixels near the matte's soft edge can change, so
    the work is done on that region's bounding box, on a downscaled copy above ``max_pixels``.
    """
    rgb = np.asarray(rgb)
    alpha = np.asarray(alpha, dtype=np.float32)
    if rgb.shape[:2] != alpha.shape[:2]:
        raise GreenlessError(f"image {rgb.shape[1]}x{rgb.shape[0]} and matte {alpha.shape[1]}x{alpha.shape[0]} differ in size")
    soft = (alpha > _SOFT) & (alpha < 1.0 - _SOFT)
    if not soft.any():
        return np.ascontiguousarray(rgb[:, :, :3])
    # Pixels farther than the large radius from any soft pixel keep their own colour; crop to save time.
    margin = radii[0]
    rows = np.flatnonzero(soft.any(axis=1))
    cols = np.flatnonzero(soft.any(axis=0))
    top, bottom = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, alpha.shape[0])
    left, right = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, alpha.shape[1])
    crop = np.ascontiguousarray(rgb[top:bottom, left:right, :3])
    a = np.ascontiguousarray(alpha[top:bottom, left:right])
    out = np.array(rgb[:, :, :3], dtype=np.uint8, copy=True)
    scale = min(1.0, (max_pixels / a.size) ** 0.5)
    if scale < 1.0:
        size = (max(1, round(a.shape[1] * scale)), max(1, round(a.shape[0] * scale)))
        small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32) * (1.0 / 255.0)
        small_a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
        small_radii = tuple(max(3, int(r * scale) | 1) for r in radii)
        correction = (_blur_fusion(small, small_a, small_radii) - small) * 255.0
        correction = cv2.resize(correction, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
        out[top:bottom, left:right] = cv2.add(crop, correction, dtype=cv2.CV_8U)  # saturating, rounds
    else:
        fg = _blur_fusion(crop.astype(np.float32) * (1.0 / 255.0), a, radii)
        out[top:bottom, left:right] = (fg * 255.0 + 0.5).astype(np.uint8)
    return out


def _blur_fusion(image: np.ndarray, alpha: np.ndarray, radii: tuple[int, ...]) -> np.ndarray:
    fg, bg = image, image
    for radius in radii:
        fg, bg = _blur_fusion_pass(image, fg, bg, alpha, radius)
    return fg


def _alpha_u8(alpha: np.ndarray) -> np.ndarray:
    return (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def foreground(rgb: np.ndarray, alpha: np.ndarray, fg_estimate: bool = True,
               fg_max_pixels: int = FG_MAX_PIXELS) -> np.ndarray:
    """Foreground colours (HxWx3 uint8): estimated, or the raw pixels when ``fg_estimate`` is False."""
    if not fg_estimate:
        return np.ascontiguousarray(np.asarray(rgb)[:, :, :3])
    return estimate_foreground(rgb, alpha, max_pixels=fg_max_pixels)


def cutout(rgb: np.ndarray, alpha: np.ndarray, fg_estimate: bool = True, fg_max_pixels: int = FG_MAX_PIXELS) -> np.ndarray:
    """Transparent cut-out: HxWx4 uint8 RGBA, colours from the foreground estimate, alpha from the matte."""
    fg = foreground(rgb, alpha, fg_estimate, fg_max_pixels)
    return np.dstack([fg, _alpha_u8(alpha)])


def parse_color(spec: str) -> tuple[int, int, int] | None:
    """``white``, ``#00ff00``, ``#0f0``, ``0,255,0`` or ``rgb(0,255,0)`` -> (r, g, b); None if not a colour."""
    from PIL import ImageColor

    text = spec.strip()
    match = re.fullmatch(r"(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})", text)
    if match:
        values = tuple(int(v) for v in match.groups())
        if any(v > 255 for v in values):
            raise GreenlessError(f"colour {spec!r}: components must be 0-255")
        return values  # type: ignore[return-value]
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        return None


def cover_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale ``image`` to cover height x width (keeping its aspect), then centre-crop to exactly that size.

    Memory stays within a few times the result's, whatever the aspect ratios: a strip far thinner than the
    frame (65500x1 behind a 640x360 frame would scale to 23.6 million x 360 pixels) is first cropped to the
    middle that shows, a pixel wider on each side for the interpolation, and only that is scaled.
    """
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    new_w, new_h = max(width, int(round(w * scale))), max(height, int(round(h * scale)))
    if new_w * new_h > 4 * width * height:
        crop_w, crop_h = min(w, math.ceil(width / scale) + 2), min(h, math.ceil(height / scale) + 2)
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image[top:top + crop_h, left:left + crop_w]
        h, w = crop_h, crop_w
        new_w, new_h = max(width, int(round(w * scale))), max(height, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp) if (new_h, new_w) != (h, w) else image
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top:top + height, left:left + width])


def parse_background(spec: str, *, files: bool = True, video: bool = False,
                     max_pixels: int | None = None) -> tuple[int, int, int] | np.ndarray | Path | str:
    """The one reading of a background given as text, for every face (API, CLI, server, batch, video, webcam).

    A colour (``white``, ``#00ff00``, bare ``00ff00``, ``0,255,0``, ``rgb(0,255,0)``) comes back as (r, g, b); an
    image file (when ``files``) as its decoded RGB array. With ``video`` (streams), ``blur`` comes back as the
    string ``"blur"`` and a video or a folder of frames as its ``Path`` (opened by the caller). Anything else
    is one ``GreenlessError`` line saying what a background may be; an out-of-range colour says so.
    """
    from greenless.media.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_rgb

    text = spec.strip()
    if video and text.lower() == "blur":
        return "blur"
    color = parse_color(text)
    if color is None and re.fullmatch(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}", text) and not Path(text).exists():
        color = parse_color("#" + text)  # '#' must be escaped in a query string and a shell: bare hex is a colour
    if color is not None:
        return color
    path = Path(text)
    if not files or not (path.exists() if video else path.is_file()):
        may = "a colour (white, #00ff00, 0,255,0)" + (", blur" if video else "") + (
            f" or an existing image{', video or folder of frames' if video else ' file'}" if files else "")
        raise GreenlessError(f"background {spec!r}: not {may}")
    if video and (path.is_dir() or path.suffix.lower() not in IMAGE_SUFFIXES):
        return path
    return load_rgb(path, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)


def resolve_background(background: Any, height: int, width: int, max_pixels: int | None = None) -> np.ndarray:
    """A background for a height x width composite: colour spec, (r, g, b), image path, PIL image or array.

    Text goes through ``parse_background``. Images are resized to cover the frame and centre-cropped; the
    result is HxWx3 uint8 (or 1x1x3 for a colour).
    """
    from greenless.media.images import DEFAULT_MAX_PIXELS, as_rgb_array, load_rgb, pil_to_rgb

    if isinstance(background, str):
        background = parse_background(background, max_pixels=max_pixels)
    if isinstance(background, (tuple, list)) and len(background) == 3:
        if not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in background):
            raise GreenlessError(f"background colour {tuple(background)}: components must be integers 0-255")
        return np.array(background, dtype=np.uint8).reshape(1, 1, 3)
    if isinstance(background, Path):
        bg = load_rgb(background, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    elif hasattr(background, "mode") and hasattr(background, "convert"):
        bg = pil_to_rgb(background)
    else:
        bg = as_rgb_array(background)
    return cover_resize(bg, height, width)


def composite(rgb: np.ndarray, alpha: np.ndarray, background: Any = "white", fg_estimate: bool = True,
              max_pixels: int | None = None, fg_max_pixels: int = FG_MAX_PIXELS) -> np.ndarray:
    """The subject over a new background (colour or image, see ``resolve_background``): HxWx3 uint8."""
    h, w = alpha.shape[:2]
    fg = foreground(rgb, alpha, fg_estimate, fg_max_pixels)
    bg = resolve_background(background, h, w, max_pixels)  # a colour comes back as 1x1x3
    bg = np.ascontiguousarray(np.broadcast_to(bg, (h, w, 3)), dtype=np.uint8)
    a = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    # a * F + (1 - a) * B in one OpenCV pass (rounded, saturated), several times faster than numpy floats.
    return cv2.blendLinear(np.ascontiguousarray(fg), bg, a, 1.0 - a)


def render(kind: str, rgb: np.ndarray, alpha: np.ndarray, background: Any = "white", *, fg_estimate: bool = True,
           max_pixels: int | None = None, fg_max_pixels: int = FG_MAX_PIXELS, gray_as_rgb: bool = False) -> np.ndarray:
    """The picture for one output kind, the one renderer of every face: rgba (HxWx4), alpha (HxW, or HxWx3 grey
    with ``gray_as_rgb`` for video encoders), foreground (HxWx3) or composite (HxWx3).

    ``background`` is anything ``resolve_background`` takes, or an object with ``for_frame(rgb)`` giving the
    background for this frame (``pipeline.video.Background``: a still, a looping video, or blur of the frame).
    Foreground colours are estimated on at most ``fg_max_pixels`` of the soft edge (video passes fewer).
    """
    kind = OutputKind.parse(kind)
    if kind is OutputKind.alpha:
        a8 = _alpha_u8(alpha)
        return np.repeat(a8[:, :, None], 3, axis=2) if gray_as_rgb else a8
    if kind is OutputKind.rgba:
        return cutout(rgb, alpha, fg_estimate, fg_max_pixels)
    if kind is OutputKind.foreground:
        return foreground(rgb, alpha, fg_estimate, fg_max_pixels)
    if background is None:
        raise GreenlessError("composite output needs a background")
    if hasattr(background, "for_frame"):
        background = background.for_frame(rgb)
    return composite(rgb, alpha, background, fg_estimate, max_pixels, fg_max_pixels)
