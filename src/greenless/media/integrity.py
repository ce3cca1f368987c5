"""Whole-file checks for the lies Pillow decodes without a word: a file that is cut short or corrupt is
refused, never written out as if it were whole.

Pillow already refuses most truncated files ("image file is truncated"). What it lets through, and what is
checked here before decoding:

- PNG: a chunk whose checksum is wrong (Pillow checks the header's, not the image data's), a file that
  stops before its ``IEND`` chunk, and image data that ends before the rows its header promises (the
  deflate stream is complete, so Pillow's decoder stops quietly and leaves the rest of the picture black).
  Every chunk's CRC is checked and the image data is inflated (in 1 MB pieces, nothing kept) and counted.
- JPEG: a header promising far more pixels than the data holds (9999x9999 over 16x16 pixels of data:
  libjpeg warns, fills grey and succeeds). A Huffman-coded frame spends at least one bit on every 8x8 block
  of every component, so fewer bytes after the first scan header than blocks / 8 cannot be a whole file.
"""

from __future__ import annotations

import struct
import zlib

from greenless.errors import GreenlessError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_PIECE = 1 << 20
# JPEG frame types coded with Huffman tables (baseline, extended, progressive); arithmetic coding can go below a bit.
_HUFFMAN_SOF = {0xC0, 0xC1, 0xC2}
_STANDALONE = {0x01, *range(0xD0, 0xDA)}  # markers without a length field (TEM, RSTn, SOI, EOI)


def check_complete(data: bytes, fmt: str | None, width: int, height: int, label: str) -> None:
    """``GreenlessError`` when ``data`` (a whole file Pillow opened as ``fmt``, ``width`` x ``height``) is cut
    short or corrupt in a way its decoder would not report; formats other than PNG and JPEG pass."""
    if fmt == "PNG":
        _check_png(data, label)
    elif fmt in ("JPEG", "MPO"):
        _check_jpeg(data, width, height, label)


def _png_row_bytes(width: int, channels: int, depth: int) -> int:
    """Bytes of one filtered row: the filter byte and the packed samples."""
    return 1 + (width * channels * depth + 7) // 8


def _png_raw_size(width: int, height: int, depth: int, colour: int, interlaced: bool) -> int:
    """Bytes the inflated image data of a PNG must hold."""
    channels = _PNG_CHANNELS.get(colour, 4)
    if not interlaced:
        return height * _png_row_bytes(width, channels, depth)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w > 0 and h > 0:
            total += h * _png_row_bytes(w, channels, depth)
    return total


def _check_png(data: bytes, label: str) -> None:
    view = memoryview(data)
    if bytes(view[:8]) != _PNG_SIGNATURE:
        return
    pos, inflater, inflated, header = 8, zlib.decompressobj(), 0, None
    while True:
        if pos + 12 > len(data):
            raise GreenlessError(f"{label}: cannot decode image: truncated or corrupt file (the PNG stops before "
                                 f"its end chunk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise GreenlessError(f"{label}: cannot decode image: truncated or corrupt file (the PNG's "
                                 f"{kind.decode('latin-1')} chunk is cut short)")
        body = view[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(body, zlib.crc32(kind)) != crc:
            raise GreenlessError(f"{label}: cannot decode image: corrupt file (bad checksum in the PNG's "
                                 f"{kind.decode('latin-1')} chunk)")
        if kind == b"IHDR" and length >= 13:
            header = struct.unpack_from(">IIBBBBB", data, pos + 8)
        elif kind == b"IDAT" and not inflater.eof:
            try:
                inflated += len(inflater.decompress(body, _INFLATE_PIECE))
                while inflater.unconsumed_tail and not inflater.eof:
                    inflated += len(inflater.decompress(inflater.unconsumed_tail, _INFLATE_PIECE))
            except zlib.error:
                raise GreenlessError(f"{label}: cannot decode image: corrupt file (broken PNG image data)") from None
        elif kind == b"IEND":
            break
        pos = end
    if header is None:
        return  # Pillow refuses a PNG without a header itself
    width, height, depth, colour, _, _, interlace = header
    if inflated < _png_raw_size(width, height, depth, colour, bool(interlace)):
        raise GreenlessError(f"{label}: cannot decode image: truncated or corrupt file (the PNG's image data "
                             f"ends before its {width}x{height} pixels do)")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_jpeg(data: bytes, width: int, height: int, label: str) -> None:
    pos, frame, scan_start = 2, None, None
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return  # not a marker where one must be: leave the judgement to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and frame is None:
            frame = (marker, pos + 4)
        if marker == 0xDA:
            scan_start = pos + 2 + length
            break
        pos += 2 + length
    if frame is None or scan_start is None or frame[0] not in _HUFFMAN_SOF:
        return
    start = frame[1]
    if start + 6 > len(data):
        return
    count = data[start + 5]
    comps = [data[start + 6 + 3 * i + 1] for i in range(count) if start + 8 + 3 * i < len(data)]
    if not comps:
        return
    h_max = max(c >> 4 for c in comps) or 1
    v_max = max(c & 15 for c in comps) or 1
    blocks = 0
    for c in comps:
        h, v = (c >> 4) or 1, (c & 15) or 1
        blocks += _ceil_div(_ceil_div(width * h, h_max), 8) * _ceil_div(_ceil_div(height * v, v_max), 8)
    if (len(data) - scan_start) * 8 < blocks:
        raise GreenlessError(f"{label}: cannot decode image: truncated or corrupt file (a {width}x{height} JPEG "
                             f"needs at least {blocks // 8} bytes of image data; this one has "
                             f"{len(data) - scan_start})")
