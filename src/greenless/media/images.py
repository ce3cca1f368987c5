"""Still images in and out: safe decoding with Pillow to 8-bit RGB, and atomic PNG/JPEG/WebP writers.

Every failure a user can cause (missing, empty, truncated or non-image file, decompression bomb) becomes
a ``GreenlessError`` that names the file and the reason, so entry points print one line, never a traceback.
Writers go through a temporary file in the destination folder and ``os.replace`` so no half-written
output is ever left behind.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np

from greenless.errors import GreenlessError
from greenless.media.files import default_mode

#: Default decoded-size limit (pixels); anything larger is treated as a decompression bomb.
DEFAULT_MAX_PIXELS = 100_000_000
#: File suffixes read when a folder is given (matched case-insensitively).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
#: Output formats by suffix, with the channel layouts each can store.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

# Pillow's own bomb check reads a module global; we swap it out for our configurable limit while opening.
_PIL_LIMIT_LOCK = threading.Lock()


class ImageTooLarge(GreenlessError):
    """An image over the pixel limit (a possible decompression bomb), refused from its header before decoding.

    A ``GreenlessError`` like any other; its own type and fields let an entry point word the refusal its way
    (the HTTP server answers 413 and names its own limit instead of a CLI flag).
    """

    def __init__(self, message: str, width: int, height: int, limit: int) -> None:
        super().__init__(message)
        self.width, self.height, self.limit = width, height, limit

    @property
    def pixels(self) -> int:
        """Width x height."""
        return self.width * self.height


def _describe(source: Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<image data>"


def open_image(source: str | os.PathLike[str] | bytes | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS,
               name: str | None = None) -> Any:
    """Open and fully decode an image (path, bytes or binary file), EXIF orientation applied; returns a PIL image.

    ``max_pixels`` (None = no limit) rejects decompression bombs before any pixel is decoded; truncated
    files are errors, never silently grey-filled, and so are animations (an animated GIF, WebP or PNG),
    never silently their first frame. ``name`` is what error messages call the source.
    """
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    label = _describe(source, name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise GreenlessError(f"{label}: file not found")
        if path.is_dir():
            raise GreenlessError(f"{label}: is a folder, not an image")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GreenlessError(f"{label}: cannot read ({exc.strerror or exc})") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read()
    if not data:
        raise GreenlessError(f"{label}: empty file (0 bytes)")

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not decode as grey
    try:
        with _PIL_LIMIT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # our own limit below replaces Pillow's fixed one
            try:
                img: Image.Image = Image.open(io.BytesIO(data))
                width, height = img.size
                if max_pixels is not None and width * height > max_pixels:
                    raise ImageTooLarge(
                        f"{label}: image is {width}x{height} = {width * height / 1e6:.1f} MP, over the "
                        f"{max_pixels / 1e6:g} MP limit (possible decompression bomb; raise it with --max-pixels)",
                        width, height, max_pixels)
                frames = getattr(img, "n_frames", 1) if getattr(img, "is_animated", False) else 1
                if frames > 1:  # Pillow would silently give the first frame
                    raise GreenlessError(f"{label}: animated image ({frames} frames), not a still photo; "
                                         f"`greenless video` mattes every frame")
                img.load()
            finally:
                Image.MAX_IMAGE_PIXELS = saved_limit
        img = ImageOps.exif_transpose(img)
    except GreenlessError:
        raise
    except UnidentifiedImageError:
        raise GreenlessError(f"{label}: not an image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise GreenlessError(f"{label}: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in reason:
            reason = f"truncated or corrupt file ({reason})"
        raise GreenlessError(f"{label}: cannot decode image: {reason}") from None
    if img.width < 1 or img.height < 1:
        raise GreenlessError(f"{label}: image has no pixels")
    return img


def load_rgb(source: str | os.PathLike[str] | bytes | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS,
             name: str | None = None) -> np.ndarray:
    """Decode an image file or bytes to HxWx3 uint8 RGB (EXIF-rotated, any mode/bit depth converted)."""
    return pil_to_rgb(open_image(source, max_pixels=max_pixels, name=name))


def read_alpha(path: Path) -> np.ndarray:
    """An alpha file as HxW float64 in [0, 1].

    Greyscale (8 or 16 bit) is the matte itself; an image with an alpha channel (an RGBA cut-out from
    another tool) contributes that channel; an RGB image is converted to luminance.
    """
    im = open_image(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.asarray(im).astype(np.float64) / 65535.0, 0.0, 1.0)
    if im.mode == "F":
        return np.clip(np.asarray(im).astype(np.float64), 0.0, 1.0)
    if "A" in im.getbands():
        return np.asarray(im.getchannel("A")).astype(np.float64) / 255.0
    return np.asarray(im.convert("L")).astype(np.float64) / 255.0


def _scale_16bit(arr: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 maps to 255, not clipped)."""
    return ((arr.astype(np.float32) * (255.0 / 65535.0)) + 0.5).astype(np.uint8)


def pil_to_rgb(img: Any) -> np.ndarray:
    """Any PIL image mode -> HxWx3 uint8 RGB: greyscale, palette, alpha (dropped, colours kept), CMYK, 16/32-bit, float."""
    mode = img.mode
    if mode == "RGB":
        arr = np.asarray(img)
    elif mode.startswith("I;16"):  # 16-bit greyscale (PNG, TIFF): scale, do not clip
        arr = _scale_16bit(np.asarray(img).astype(np.uint16))
    elif mode == "I":  # 32-bit int, usually holding 16-bit samples
        raw = np.asarray(img)
        arr = np.clip(raw, 0, 255).astype(np.uint8) if raw.max(initial=0) <= 255 else \
            _scale_16bit(np.clip(raw, 0, 65535))
    elif mode == "F":
        raw = np.nan_to_num(np.asarray(img, dtype=np.float32))
        if raw.max(initial=0.0) <= 1.0:
            raw = raw * 255.0
        arr = (np.clip(raw, 0.0, 255.0) + 0.5).astype(np.uint8)
    elif mode in ("RGBA", "RGBX", "RGBa"):
        arr = np.asarray(img)[:, :, :3] if mode != "RGBa" else np.asarray(img.convert("RGBA"))[:, :, :3]
    elif mode == "P":
        # Palette with transparency: go through RGBA so the palette colours (not a matte) are kept.
        arr = np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))[:, :, :3]
    elif mode in ("L", "LA", "La", "1"):
        grey = np.asarray(img.convert("L"))
        arr = np.repeat(grey[:, :, None], 3, axis=2)
    else:  # CMYK, YCbCr, LAB, HSV, PA ...
        try:
            arr = np.asarray(img.convert("RGBA") if mode == "PA" else img.convert("RGB"))[:, :, :3]
        except (ValueError, OSError) as exc:
            raise GreenlessError(f"unsupported image mode {mode} ({exc})") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr, dtype=np.uint8)


def as_rgb_array(image: Any) -> np.ndarray:
    """PIL image or ndarray (HxW, HxWx3, HxWx4; uint8, uint16 or float in [0,1]) -> HxWx3 uint8 RGB."""
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL.Image without importing PIL eagerly
        return pil_to_rgb(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise GreenlessError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[:, :, :3]
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def array_to_pil(array: np.ndarray) -> Any:
    """HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) uint8, or float in [0, 1], -> PIL image."""
    from PIL import Image

    arr = np.asarray(array)
    if arr.dtype.kind == "f":
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise GreenlessError(f"cannot write a {arr.dtype} array as an image; expected uint8 or float in [0, 1]")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(arr))  # uint8 HxW -> mode L
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(arr))
    raise GreenlessError(f"cannot write an array of shape {arr.shape} as an image")


def format_for(path: str | os.PathLike[str]) -> str:
    """Pillow format name for an output path's suffix (PNG, JPEG, WEBP); error for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise GreenlessError(f"{path}: unsupported output type {suffix or '(no suffix)'}; use .png, .jpg or .webp")
    return WRITE_FORMATS[suffix]


#: zlib level of every PNG greenless writes (photos, frames of a PNG sequence, server responses, Ray batch,
#: evaluation outputs): at 12 MP, 2.8x faster than level 6, about 25% more bytes.
PNG_LEVEL = 1


def encode_png(array: np.ndarray, compress_level: int = PNG_LEVEL) -> bytes:
    """PNG bytes of an HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA) uint8 array (or float in [0, 1]): the one PNG
    encoder of the package, so every entry point writes the same files."""
    buf = io.BytesIO()
    array_to_pil(array).save(buf, "PNG", compress_level=compress_level)
    return buf.getvalue()


def encode_image(array: np.ndarray, fmt: str = "PNG", quality: int = 92) -> bytes:
    """Encode an image array to PNG, JPEG or WebP bytes (JPEG cannot hold transparency: that is an error)."""
    fmt = fmt.upper()
    if fmt == "PNG":
        return encode_png(array)
    img = array_to_pil(array)
    buf = io.BytesIO()
    if fmt == "JPEG":
        if img.mode == "RGBA":
            raise GreenlessError("JPEG cannot store transparency; write .png or .webp for a cut-out")
        img.save(buf, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        img.save(buf, "WEBP", quality=quality, method=4, exact=True)
    else:
        raise GreenlessError(f"unsupported output format {fmt}")
    return buf.getvalue()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace`` (never half-written)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise GreenlessError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, default_mode())  # what a plain open() would give it; the umask is read, never changed
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise GreenlessError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    return path


def save_image_atomic(path: str | os.PathLike[str], array: np.ndarray, fmt: str | None = None, quality: int = 92) -> Path:
    """Encode ``array`` in the format its suffix names (or ``fmt``) and write it atomically."""
    return write_bytes_atomic(path, encode_image(array, fmt or format_for(path), quality=quality))


def save_png_atomic(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write ``array`` as a PNG at ``path`` atomically, whatever the suffix says."""
    return write_bytes_atomic(path, encode_image(array, "PNG"))


def write_stdout(data: bytes) -> None:
    """Write encoded image bytes to standard output in one go (binary, flushed).

    A stdout that cannot take them (a full disk, ``> /dev/full``, a closed pipe) is one ``GreenlessError``
    instead of a traceback. Stdout is then pointed at /dev/null, so the bytes still buffered cannot make
    Python's own flush at exit print a second error.
    """
    out = sys.stdout.buffer
    try:
        out.write(data)
        out.flush()
    except OSError as exc:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real file descriptor behind stdout: nothing is flushed at exit
            pass
        raise GreenlessError(f"cannot write the result to standard output: {exc.strerror or exc}") from None
