"""Image decoding and writing: every mode and format to 8-bit RGB, EXIF rotation, bad files as GreenlessError."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from greenless.errors import GreenlessError
from greenless.media.images import (as_rgb_array, encode_image, load_rgb, open_image, pil_to_rgb,
                                    save_image_atomic, write_bytes_atomic)


@pytest.fixture(scope="module")
def photo(data: Path) -> np.ndarray:
    """A small real photo (96x64 crop of a portrait), RGB uint8."""
    img = Image.open(data / "photos" / "portrait-640.jpg").convert("RGB")
    return np.asarray(img.resize((96, 64), Image.Resampling.BILINEAR))


@pytest.mark.parametrize("fmt,suffix,tol", [("JPEG", ".jpg", 12), ("PNG", ".png", 0), ("WEBP", ".webp", 0),
                                            ("BMP", ".bmp", 0), ("TIFF", ".tif", 0)])
def test_formats_decode_to_rgb(tmp_path: Path, photo: np.ndarray, fmt: str, suffix: str, tol: int) -> None:
    path = tmp_path / f"p{suffix}"
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(photo).save(path, fmt, **kwargs)
    rgb = load_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == photo.shape
    assert np.abs(rgb.astype(int) - photo).mean() <= tol


def test_greyscale_palette_and_bilevel(photo: np.ndarray) -> None:
    grey = Image.fromarray(photo).convert("L")
    rgb = pil_to_rgb(grey)
    assert rgb.shape == photo.shape
    assert (rgb[:, :, 0] == np.asarray(grey)).all() and (rgb[:, :, 0] == rgb[:, :, 2]).all()
    pal = Image.fromarray(photo).quantize(64)
    assert np.array_equal(pil_to_rgb(pal), np.asarray(pal.convert("RGB")))
    bilevel = grey.convert("1")
    assert set(np.unique(pil_to_rgb(bilevel))) <= {0, 255}


def test_alpha_is_dropped_but_colours_kept(photo: np.ndarray) -> None:
    alpha = np.zeros(photo.shape[:2], np.uint8)  # fully transparent: colours must survive anyway
    rgba = Image.fromarray(np.dstack([photo, alpha]))
    assert np.array_equal(pil_to_rgb(rgba), photo)
    la = Image.fromarray(np.dstack([photo[:, :, 0], alpha]))
    assert np.array_equal(pil_to_rgb(la)[:, :, 1], photo[:, :, 0])
    pal = Image.fromarray(photo).quantize(32)
    pal.info["transparency"] = 0
    assert np.array_equal(pil_to_rgb(pal), np.asarray(pal.convert("RGBA"))[:, :, :3])


def test_cmyk_jpeg_and_tiff(tmp_path: Path, photo: np.ndarray) -> None:
    cmyk = Image.fromarray(photo).convert("CMYK")
    for suffix in (".jpg", ".tif"):
        path = tmp_path / f"c{suffix}"
        cmyk.save(path, quality=95) if suffix == ".jpg" else cmyk.save(path)
        assert Image.open(path).mode == "CMYK"
        rgb = load_rgb(path)
        assert rgb.shape == photo.shape and np.abs(rgb.astype(int) - photo).mean() < 12


def test_16_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 48).astype(np.uint16).reshape(48, 64)
    for suffix in (".png", ".tif"):
        path = tmp_path / f"g16{suffix}"
        Image.fromarray(ramp).save(path)
        img = open_image(path)
        assert img.mode in ("I;16", "I;16B", "I;16L", "I")
        rgb = load_rgb(path)
        expected = np.round(ramp / 257.0).astype(np.uint8)
        assert np.abs(rgb[:, :, 0].astype(int) - expected).max() <= 1
        assert rgb.max() == 255 and rgb.min() == 0
    as_int32 = Image.fromarray(ramp.astype(np.int32))
    assert as_int32.mode == "I" and pil_to_rgb(as_int32).max() == 255
    as_float = Image.fromarray((ramp / 65535.0).astype(np.float32))
    assert as_float.mode == "F" and pil_to_rgb(as_float)[-1, -1, 0] == 255
    # Matter's own converter goes through pil_to_rgb for PIL inputs.
    assert np.array_equal(as_rgb_array(Image.fromarray(ramp)), pil_to_rgb(Image.fromarray(ramp)))


def test_exif_orientation_applied(tmp_path: Path, photo: np.ndarray) -> None:
    img = Image.fromarray(photo)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, quality=95, exif=exif)
    rgb = load_rgb(path)
    assert rgb.shape == (photo.shape[1], photo.shape[0], 3)
    expected = np.rot90(photo, k=-1)
    assert np.abs(rgb.astype(int) - expected).mean() < 12


@pytest.mark.parametrize("size", [(32, 32), (8000, 40), (40, 8000), (33, 47)])
def test_sizes(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "s.png"
    Image.new("RGB", size, (10, 200, 30)).save(path)
    rgb = load_rgb(path)
    assert rgb.shape == (size[1], size[0], 3) and tuple(rgb[0, 0]) == (10, 200, 30)


def test_bytes_and_file_objects(photo: np.ndarray) -> None:
    data = encode_image(photo, "PNG")
    assert np.array_equal(load_rgb(data), photo)
    assert np.array_equal(load_rgb(io.BytesIO(data)), photo)


def _expect_error(source, *words: str, **kwargs) -> str:
    with pytest.raises(GreenlessError) as info:
        load_rgb(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_missing_empty_text_and_folder(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.jpg", "nope.jpg", "not found")
    (tmp_path / "zero.jpg").write_bytes(b"")
    _expect_error(tmp_path / "zero.jpg", "zero.jpg", "empty")
    (tmp_path / "text.jpg").write_text("this is not a photo\n")
    _expect_error(tmp_path / "text.jpg", "text.jpg", "not an image")
    _expect_error(tmp_path, "folder")


@pytest.mark.parametrize("suffix,keep", [(".jpg", 0.5), (".jpg", 0.98), (".png", 0.6)])
def test_truncated_files_fail(tmp_path: Path, data: Path, suffix: str, keep: float) -> None:
    src = data / "photos" / "portrait-640.jpg"
    raw = src.read_bytes()
    if suffix == ".png":
        buf = io.BytesIO()
        Image.open(src).save(buf, "PNG")
        raw = buf.getvalue()
    path = tmp_path / f"t{suffix}"
    path.write_bytes(raw[: int(len(raw) * keep)])
    _expect_error(path, path.name, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression-bomb stand-in)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_pixel_limit(photo: np.ndarray) -> None:
    bomb = _png_claiming(20000, 20000)  # 400 MP: over our default and over Pillow's own hard limit
    _expect_error(bomb, "400.0 MP", "limit", "--max-pixels", name="bomb.png")
    _expect_error(bomb, "bomb.png", name="bomb.png")
    small = encode_image(photo, "PNG")
    _expect_error(small, "limit", max_pixels=1000)
    assert load_rgb(small, max_pixels=96 * 64).shape == photo.shape  # exactly at the limit is fine
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's global is restored


def test_atomic_writers(tmp_path: Path, photo: np.ndarray) -> None:
    out = save_image_atomic(tmp_path / "a" / "x.png", photo, "PNG")  # creates the folder
    assert np.array_equal(np.asarray(Image.open(out)), photo)
    alpha = photo[:, :, 0]
    save_image_atomic(tmp_path / "m.png", alpha)
    assert Image.open(tmp_path / "m.png").mode == "L"
    save_image_atomic(tmp_path / "c.jpg", photo)
    assert Image.open(tmp_path / "c.jpg").format == "JPEG"
    rgba = np.dstack([photo, alpha])
    save_image_atomic(tmp_path / "c.webp", rgba)
    assert Image.open(tmp_path / "c.webp").mode == "RGBA"
    with pytest.raises(GreenlessError, match="transparency"):
        save_image_atomic(tmp_path / "bad.jpg", rgba)
    with pytest.raises(GreenlessError, match="unsupported output type"):
        save_image_atomic(tmp_path / "bad.gif", photo)
    # An existing file is replaced whole; no temporary files are ever left behind.
    write_bytes_atomic(tmp_path / "m.png", b"new")
    assert (tmp_path / "m.png").read_bytes() == b"new"
    names = sorted(p.name for p in tmp_path.rglob("*"))
    assert not any(n.endswith(".tmp") for n in names) and "bad.jpg" not in names and "bad.gif" not in names
