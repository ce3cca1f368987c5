"""Image decoding and output rendering for the server and Ray batch until ``media.images`` and ``pipeline.compose`` land.

Same signatures and meaning as ``media.images.load_rgb`` and ``pipeline.compose.render``; imported only when
those are missing.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

from greenless.errors import GreenlessError


def load_rgb(source: bytes, max_pixels: int | None = None, name: str | None = None) -> np.ndarray:
    """Decode image bytes (JPEG, PNG, WebP, ...) to HxWx3 uint8 RGB, refusing more than ``max_pixels``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = name or "<image data>"
    try:
        with Image.open(io.BytesIO(source)) as im:
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise GreenlessError(f"{label}: {width}x{height} is more than the limit of {max_pixels} pixels")
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except GreenlessError:
        raise
    except UnidentifiedImageError:
        raise GreenlessError(f"{label}: not an image format greenless can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GreenlessError(f"{label}: corrupt or truncated image ({detail})") from None


def _background_array(background: str | tuple | np.ndarray, height: int, width: int) -> np.ndarray:
    """A colour (name, hex string or (r, g, b)) or an RGB image array -> HxWx3 float32 background (image: cover-cropped)."""
    if isinstance(background, tuple):
        return np.broadcast_to(np.asarray(background, np.float32), (height, width, 3))
    if isinstance(background, str):
        from PIL import ImageColor

        try:
            colour = ImageColor.getrgb(background)[:3]
        except ValueError as exc:
            raise GreenlessError(f"unknown background colour {background!r}") from exc
        return np.broadcast_to(np.asarray(colour, np.float32), (height, width, 3))
    bg = np.asarray(background)[:, :, :3]
    bh, bw = bg.shape[:2]
    scale = max(height / bh, width / bw)
    nh, nw = max(height, round(bh * scale)), max(width, round(bw * scale))
    bg = cv2.resize(bg, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (nh - height) // 2, (nw - width) // 2
    return bg[top:top + height, left:left + width].astype(np.float32)


def _alpha_u8(alpha: np.ndarray) -> np.ndarray:
    return (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def cutout(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Estimated foreground colours plus alpha in [0, 1] -> HxWx4 uint8 RGBA."""
    return np.dstack([estimate_foreground(rgb, alpha), _alpha_u8(alpha)])


def render(rgb: np.ndarray, alpha: np.ndarray, kind: str = "rgba", background: str | tuple | np.ndarray = "white") -> np.ndarray:
    """The array for one output kind: rgba (HxWx4), alpha (HxW), foreground (HxWx3) or composite (HxWx3)."""
    if kind == "rgba":
        return cutout(rgb, alpha)
    if kind == "alpha":
        return _alpha_u8(alpha)
    if kind == "foreground":
        return estimate_foreground(rgb, alpha)
    if kind == "composite":
        return composite(rgb, alpha, background)
    raise GreenlessError(f"unknown output {kind!r}")


def composite(rgb: np.ndarray, alpha: np.ndarray, background: str | tuple | np.ndarray) -> np.ndarray:
    """The person over ``background`` (colour string or image array) -> HxWx3 uint8."""
    h, w = alpha.shape
    bg = _background_array(background, h, w)
    a = np.clip(alpha, 0.0, 1.0)[:, :, None]
    out = estimate_foreground(rgb, alpha).astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _blur_fusion(fg: np.ndarray, bg: np.ndarray, image: np.ndarray, alpha: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """One pass of blur-fusion foreground estimation (box-filtered weighted means, then a local correction)."""
    eps = 1e-5
    k = (radius, radius)
    a = alpha[:, :, None]
    blur_a = cv2.blur(alpha, k)[:, :, None]
    blur_f = cv2.blur(fg * a, k) / (blur_a + eps)
    blur_b = cv2.blur(bg * (1.0 - a), k) / ((1.0 - blur_a) + eps)
    fg = blur_f + a * (image - a * blur_f - (1.0 - a) * blur_b)
    return np.clip(fg, 0.0, 1.0), blur_b


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours without the old background bleeding through at soft edges -> HxWx3 uint8."""
    image = rgb.astype(np.float32) / 255.0
    a = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    fg, bg = _blur_fusion(image, image, image, a, 91)
    fg, _ = _blur_fusion(fg, bg, image, a, 7)
    return (fg * 255.0 + 0.5).astype(np.uint8)
