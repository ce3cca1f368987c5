"""The pixel budget, the one rule every reader applies before it decodes: photos, stdin, video frames, folders
of frames and backgrounds alike.

A picture whose header promises more than ``max_pixels`` pixels is refused from that header, before any
pixel is decoded (a decompression bomb, a lying header, a GIF with a huge logical screen). The bytes read to
learn it are bounded too, by the budget's byte equivalent: what the largest honest file of a picture that
size can take. So an endless or lying stream (``/dev/zero``, a pipe that never ends, a 10 GB file of text)
is one error line after its first megabyte, never a process that fills memory.
"""

from __future__ import annotations

from typing import IO

from greenless.errors import GreenlessError

#: Default decoded-size limit (pixels); anything larger is treated as a decompression bomb.
DEFAULT_MAX_PIXELS = 100_000_000
#: The most bytes one pixel takes in an honest still-image file: 16-bit RGBA stored uncompressed (TIFF, BMP,
#: PNG's stored blocks) is 8.
MAX_BYTES_PER_PIXEL = 8
#: What an honest file holds on top of its pixels: headers, EXIF with its thumbnail, ICC profiles, XMP.
METADATA_BYTES = 16 << 20
#: Read first; a stream that is no image format's beginning is refused after this much.
PEEK_BYTES = 1 << 20
_CHUNK = 4 << 20


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


def check_pixels(width: int, height: int, max_pixels: int | None, label: str, what: str = "image",
                 hint: str = "raise it with --max-pixels") -> None:
    """Raise ``ImageTooLarge`` when a ``width`` x ``height`` picture is over ``max_pixels`` (None: no limit).

    ``what`` names the picture ("image", "video frame"); ``hint`` says how to raise the limit where it can be.
    """
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLarge(f"{label}: {what} is {width}x{height} = {width * height / 1e6:.1f} MP, over the "
                            f"{max_pixels / 1e6:g} MP limit (possible decompression bomb; {hint})",
                            width, height, max_pixels)


def byte_budget(pixels: int | None) -> int | None:
    """The most bytes an honest still-image file of ``pixels`` pixels takes (None: no bound)."""
    return None if pixels is None else pixels * MAX_BYTES_PER_PIXEL + METADATA_BYTES


def read_head(handle: IO[bytes], size: int = PEEK_BYTES) -> bytes:
    """Up to ``size`` bytes from ``handle``, reading again after short reads (pipes) until EOF."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        part = handle.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_rest(handle: IO[bytes], head: bytes, limit: int | None, label: str, why: str) -> bytes:
    """``head`` plus the rest of ``handle``; ``GreenlessError`` as soon as the total passes ``limit`` bytes.

    ``why`` ends the refusal: what the limit is the byte equivalent of.
    """
    parts = [head]
    total = len(head)
    while True:
        want = _CHUNK if limit is None else min(_CHUNK, limit + 1 - total)
        part = handle.read(max(want, 1))
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if limit is not None and total > limit:
            raise GreenlessError(f"{label}: more than {limit / 1e6:.0f} MB of data, {why}; refused before decoding "
                                 f"(an endless or corrupt stream?)")
