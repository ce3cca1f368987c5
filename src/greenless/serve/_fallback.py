"""Small image loading and compositing used by the server until ``media.images`` and ``pipeline.compose`` exist.

Same signatures as those modules; the server imports these only when the real ones are missing.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

from greenless.errors import GreenlessError


def load_image_bytes(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, WebP, ...) to HxWx3 uint8 RGB, refusing more than ``max_pixels``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > max_pixels:
                raise GreenlessError(f"image has {width}x{height} = {width * height} pixels, more than the limit of {max_pixels}")
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except GreenlessError:
        raise
    except UnidentifiedImageError:
        raise GreenlessError("not an image format greenless can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise GreenlessError(f"corrupt or truncated image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _background_array(background: str | np.ndarray, height: int, width: int) -> np.ndarray:
    """A colour name/hex string or an RGB array -> HxWx3 float32 background at the image size."""
    if isinstance(background, str):
        from PIL import ImageColor

        try:
            colour = ImageColor.getrgb(background)[:3]
        except ValueError as exc:
            raise GreenlessError(f"unknown background colour {background!r}") from exc
        return np.broadcast_to(np.asarray(colour, np.float32), (height, width, 3))
    bg = np.asarray(background)
    if bg.shape[:2] != (height, width):
        bg = cv2.resize(bg, (width, height), interpolation=cv2.INTER_AREA)
    return bg[:, :, :3].astype(np.float32)


def cutout(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """RGB image plus alpha in [0, 1] -> HxWx4 uint8 RGBA."""
    a8 = (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.dstack([rgb, a8])


def composite(rgb: np.ndarray, alpha: np.ndarray, background: str | np.ndarray) -> np.ndarray:
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
