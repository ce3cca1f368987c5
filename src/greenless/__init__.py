"""greenless: real-time, trimap-free portrait matting (MODNet) for photos, folders, videos and webcams.

The library is a few verbs around one ``Matter``::

    import greenless
    cut = greenless.remove(Image.open("me.jpg"))            # PIL in -> PIL RGBA out
    alpha = greenless.matte(numpy_rgb)                        # ndarray in -> float32 HxW matte
    png = greenless.composite(jpeg_bytes, background="#00ff00")  # bytes in -> PNG bytes out

Results mirror the input's type: a PIL image gives a PIL image, an ndarray an ndarray, bytes give PNG
bytes, a path gives a PIL image. The module-level verbs share one cached default ``Matter``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from greenless.errors import GreenlessError
from greenless.matter import Matter

__all__ = ["Matter", "GreenlessError", "load_matter", "matte", "cutout", "remove", "composite", "foreground"]
__version__ = "0.1.0"

_DEFAULT: dict[tuple[Any, ...], Matter] = {}
_DEFAULT_LOCK = threading.Lock()


def load_matter(weights: str | Path | None = None, engine: str = "onnx", ref_size: int | None = None,
                threads: int | None = None, device: str | None = None, model: str | None = None,
                guide: str | None = None, refine: str | None = None, detail: Any = None) -> Matter:
    """A ``Matter`` for these settings, built once per process and reused (the packaged model by default;
    ``model`` picks a packaged set by name (``greenless.registry.PACKAGED``); ``guide="none"`` turns the semantic
    guide off for weights that use one; ``refine="none"`` the photo detail stage, ``detail`` its
    ``DetailSettings``)."""
    key = (str(weights) if weights is not None else None, engine, ref_size, threads, device, model, guide, refine,
           detail)
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = Matter(weights, engine=engine, ref_size=ref_size, threads=threads, device=device,
                                   model=model, guide=guide, refine=refine, detail=detail)
        return _DEFAULT[key]


def _decode(image: Any, max_pixels: int | None) -> tuple[Any, str]:
    """(HxWx3 uint8 RGB, kind of the input: 'pil', 'array', 'bytes' or 'path')."""
    import numpy as np

    from greenless.media.images import as_rgb_array, load_rgb, pil_to_rgb

    if isinstance(image, (bytes, bytearray, memoryview)):
        return load_rgb(bytes(image), max_pixels=max_pixels), "bytes"
    if isinstance(image, (str, Path)):
        return load_rgb(image, max_pixels=max_pixels), "path"
    if hasattr(image, "mode") and hasattr(image, "convert"):
        return pil_to_rgb(image), "pil"
    if isinstance(image, np.ndarray):
        return as_rgb_array(image), "array"
    raise GreenlessError(f"expected a PIL image, a numpy array, image bytes or a path, got {type(image).__name__}")


def _encode(array: Any, kind: str) -> Any:
    """Return ``array`` in the caller's type: ndarray as-is, PIL image for PIL/path, PNG bytes for bytes."""
    from greenless.media.images import array_to_pil, encode_image

    if kind == "array":
        return array
    if kind == "bytes":
        return encode_image(array, "PNG")
    return array_to_pil(array)


def _alpha_for(rgb: Any, alpha: Any, matter: Matter | None) -> Any:
    import numpy as np

    if alpha is None:
        return (matter or load_matter()).matte(rgb)
    if hasattr(alpha, "mode") and hasattr(alpha, "convert"):
        alpha = np.asarray(alpha.convert("L"), dtype=np.float32) / 255.0
    arr = np.asarray(alpha)
    if arr.ndim == 3:
        arr = arr[:, :, -1] if arr.shape[2] in (2, 4) else arr[:, :, 0]
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    if arr.shape != rgb.shape[:2]:
        raise GreenlessError(f"matte {arr.shape[1]}x{arr.shape[0]} does not match image {rgb.shape[1]}x{rgb.shape[0]}")
    return np.clip(arr, 0.0, 1.0)


def matte(image: Any, *, matter: Matter | None = None, max_pixels: int | None = None) -> Any:
    """The alpha matte of ``image``: float32 HxW in [0, 1] for an ndarray, a PIL ``L`` image, or PNG bytes."""
    from greenless.media.images import DEFAULT_MAX_PIXELS

    rgb, kind = _decode(image, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    alpha = (matter or load_matter()).matte(rgb)
    return alpha if kind == "array" else _encode(alpha, kind)


def cutout(image: Any, alpha: Any = None, *, fg_estimate: bool = True, matter: Matter | None = None,
           max_pixels: int | None = None) -> Any:
    """The subject on transparency (RGBA); ``alpha`` is computed unless given; colours are de-haloed unless ``fg_estimate=False``."""
    from greenless.media.images import DEFAULT_MAX_PIXELS
    from greenless.pipeline.compose import render

    rgb, kind = _decode(image, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    return _encode(render("rgba", rgb, _alpha_for(rgb, alpha, matter), fg_estimate=fg_estimate), kind)


def remove(image: Any, **kwargs: Any) -> Any:
    """Remove the background (rembg-style name for ``cutout``): RGBA in the input's type."""
    return cutout(image, **kwargs)


def foreground(image: Any, alpha: Any = None, *, matter: Matter | None = None, max_pixels: int | None = None) -> Any:
    """Estimated foreground colours (RGB, no halo of the old background), to pair with the matte."""
    from greenless.media.images import DEFAULT_MAX_PIXELS
    from greenless.pipeline.compose import render

    rgb, kind = _decode(image, DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    return _encode(render("foreground", rgb, _alpha_for(rgb, alpha, matter)), kind)


def composite(image: Any, background: Any = "white", alpha: Any = None, *, fg_estimate: bool = True,
              matter: Matter | None = None, max_pixels: int | None = None) -> Any:
    """The subject over ``background``: a colour ("white", "#00ff00", "0,255,0", (r, g, b)) or an image (path, PIL, array).

    Background images are scaled to cover the photo and centre-cropped. Returns RGB in the input's type.
    """
    from greenless.media.images import DEFAULT_MAX_PIXELS
    from greenless.pipeline.compose import render

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    rgb, kind = _decode(image, limit)
    return _encode(render("composite", rgb, _alpha_for(rgb, alpha, matter), background, fg_estimate=fg_estimate,
                          max_pixels=limit), kind)
