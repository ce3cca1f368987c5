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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from greenless.errors import GreenlessError, first_line
from greenless.media.files import default_mode, os_error_reason
from greenless.media.limits import (  # noqa: F401
    DEFAULT_MAX_PIXELS,
    PEEK_BYTES,
    ImageTooLarge,
    byte_budget,
    check_pixels,
    read_head,
    read_rest,
)

#: File suffixes read when a folder is given (matched case-insensitively).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
#: Output formats by suffix, with the channel layouts each can store.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

# Pillow's own bomb check reads a module global; we swap it out for our configurable limit while opening.
_PIL_LIMIT_LOCK = threading.RLock()


@contextmanager
def _pillow() -> Iterator[None]:
    """Pillow with our rules: its fixed bomb limit off (``max_pixels`` decides), its warnings silent (corrupt
    EXIF, odd palettes: what is wrong becomes our one error line, and what is harmless is not the user's
    business), truncated data an error. Held by one thread at a time (both settings are process-wide)."""
    from PIL import Image, ImageFile

    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, not decode as grey
        saved_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit


def _describe(source: Any, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "<image data>"


def _header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the start of an image file, or None when Pillow cannot tell from these bytes."""
    from PIL import Image

    try:
        with _pillow(), Image.open(io.BytesIO(head)) as img:
            return img.size
    except Exception:  # noqa: BLE001 - any failure means "cannot tell yet"
        return None


def _known_beginning(head: bytes) -> bool:
    """True when some image format Pillow reads says these bytes can begin one of its files (a TIFF whose
    directory sits at its end, a JPEG with megabytes of metadata before its frame header)."""
    from PIL import Image

    Image.init()
    prefix = head[:16]
    for _factory, accept in list(Image.OPEN.values()):
        try:
            if accept is not None and accept(prefix):
                return True
        except Exception:  # noqa: BLE001 - a plugin that cannot judge this prefix does not claim it
            continue
    return False


def read_image_bytes(handle: IO[bytes], label: str, max_pixels: int | None) -> bytes:
    """All bytes of an image from ``handle`` (a file, a pipe, stdin), read within the pixel budget's bound.

    The first megabyte must be the beginning of an image format; when its header gives the size, that size
    must be within ``max_pixels`` and the rest of the file within what such an image takes
    (``media.limits.byte_budget``). Anything else is one ``GreenlessError`` before the rest is read.
    """
    head = read_head(handle)
    if len(head) < PEEK_BYTES:
        return head  # the whole file
    size = _header_size(head)
    if size is None:
        if not _known_beginning(head):
            raise GreenlessError(f"{label}: not an image (unknown or unsupported format)")
        limit = byte_budget(max_pixels)
        why = f"more than an image within the {max_pixels / 1e6:g} MP limit can take" if max_pixels else ""
    else:
        check_pixels(size[0], size[1], max_pixels, label)
        limit = byte_budget(size[0] * size[1])
        why = f"more than a {size[0]}x{size[1]} image can take"
    return read_rest(handle, head, limit, label, why)


def _read_path(path: Path, label: str, max_pixels: int | None) -> bytes:
    """The bytes of the file at ``path`` (bounded as ``read_image_bytes`` says); one line for each way it cannot be."""
    try:
        with open(path, "rb") as handle:
            return read_image_bytes(handle, label, max_pixels)
    except IsADirectoryError:
        raise GreenlessError(f"{label}: is a folder, not an image") from None
    except OSError as exc:
        raise GreenlessError(f"{label}: {os_error_reason(exc)}") from None


def open_image(source: str | os.PathLike[str] | bytes | IO[bytes], max_pixels: int | None = DEFAULT_MAX_PIXELS,
               name: str | None = None) -> Any:
    """Open and fully decode an image (path, bytes or binary file), EXIF orientation applied; returns a PIL image.

    ``max_pixels`` (None = no limit) rejects decompression bombs before any pixel is decoded, and bounds the
    bytes read from a path or stream (``read_image_bytes``: ``/dev/zero`` is refused, not read forever);
    truncated and corrupt files are errors, never silently grey-filled (``media.integrity`` catches the
    lies Pillow lets through), and so are animations (an animated GIF, WebP or PNG), never silently their
    first frame. ``name`` is what error messages call the source.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    from greenless.media.integrity import check_complete

    label = _describe(source, name)
    if isinstance(source, (str, os.PathLike)):
        data = _read_path(Path(source), label, max_pixels)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = read_image_bytes(source, label, max_pixels)
    if not data:
        raise GreenlessError(f"{label}: empty file (0 bytes)")

    try:
        with _pillow():
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size
            check_pixels(width, height, max_pixels, label)
            frames = getattr(img, "n_frames", 1) if getattr(img, "is_animated", False) else 1
            if frames > 1:  # Pillow would silently give the first frame
                raise GreenlessError(f"{label}: animated image ({frames} frames), not a still photo; "
                                     f"`greenless video` mattes every frame")
            check_complete(data, img.format, width, height, label)
            img.load()
            img = ImageOps.exif_transpose(img)
    except GreenlessError:
        raise
    except UnidentifiedImageError:
        check_complete(data, "PNG", 0, 0, label)  # a PNG whose header chunks are damaged: say so, not "not an image"
        raise GreenlessError(f"{label}: not an image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        raise GreenlessError(f"{label}: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, MemoryError) as exc:
        reason = first_line(exc)
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
    with _pillow():  # conversions warn too (palette transparency): silent, as decoding is
        return _to_rgb(img)


def _to_rgb(img: Any) -> np.ndarray:
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


def pil_to_rgba(img: Any) -> np.ndarray:
    """Any PIL image mode -> HxWx4 uint8 RGBA: the colours as ``pil_to_rgb`` gives them, the alpha channel
    the image has (opaque when it has none)."""
    rgb = pil_to_rgb(img)
    with _pillow():
        has_alpha = "A" in img.getbands() or "transparency" in img.info
        alpha = np.asarray(img.convert("RGBA"))[:, :, 3] if has_alpha else np.full(rgb.shape[:2], 255, np.uint8)
    return np.ascontiguousarray(np.dstack([rgb, alpha]))


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


def write_stdout(data: bytes) -> None:
    """Write encoded image bytes to standard output in one go (binary, flushed).

    A stdout that cannot take them (a full disk, ``> /dev/full``, a closed pipe) is one ``GreenlessError``
    instead of a traceback. Stdout is then pointed at /dev/null, so the bytes still buffered cannot make
    Python's own flush at exit print a second error.
    """
    if sys.stdout is None:  # the process started with stdout closed
        raise GreenlessError("cannot write the result to standard output: it is closed")
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
