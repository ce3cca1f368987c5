"""Compositing: blur-fusion foreground estimation against pymatting, colours, cover-resize, cut-outs, the public API."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import greenless
from greenless.errors import GreenlessError
from greenless.media.images import encode_image, load_rgb
from greenless.pipeline.compose import (composite, cover_resize, cutout, estimate_foreground, foreground,
                                        parse_color, render)


def _portrait(data: Path, stem: str, scale: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rgb = load_rgb(data / "portraits" / "image" / f"{stem}.jpg")
    alpha = load_rgb(data / "portraits" / "alpha" / f"{stem}.png")[:, :, 0]
    rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return rgb, alpha.astype(np.float32) / 255.0


@pytest.mark.parametrize("stem", ["p_09ba26b4", "p_71bcce3a"])
def test_foreground_estimate_close_to_pymatting(data: Path, stem: str) -> None:
    """Real portrait + GT alpha composed on background 1; recover F; re-composite on background 2.

    The known truth is pymatting's F of the original photo over background 2; ours must be close to
    what pymatting itself recovers, and far better than the raw pixels (which carry background 1's halo).
    """
    from pymatting import estimate_foreground_ml

    rgb, alpha = _portrait(data, stem)
    a = alpha[:, :, None]
    h, w = alpha.shape
    true_fg = np.clip(estimate_foreground_ml(rgb / 255.0, alpha.astype(np.float64)), 0, 1).astype(np.float32)
    bg1 = cover_resize(load_rgb(data / "backgrounds" / "sunset.jpg"), h, w).astype(np.float32) / 255.0
    bg2 = cover_resize(load_rgb(data / "backgrounds" / "beach.jpg"), h, w).astype(np.float32) / 255.0
    image = ((a * true_fg + (1 - a) * bg1) * 255.0 + 0.5).astype(np.uint8)
    truth = a * true_fg + (1 - a) * bg2
    soft = (alpha > 0.02) & (alpha < 0.98)

    def error(fg: np.ndarray) -> float:
        return float(np.abs(a * fg + (1 - a) * bg2 - truth)[soft].mean() * 255.0)

    ours = error(estimate_foreground(image, alpha).astype(np.float32) / 255.0)
    ml = error(np.clip(estimate_foreground_ml(image / 255.0, alpha.astype(np.float64)), 0, 1))
    raw = error(image.astype(np.float32) / 255.0)
    assert ours < 0.45 * raw, (ours, raw)
    assert ours < ml + 2.0, (ours, ml)


def test_foreground_keeps_solid_pixels(data: Path) -> None:
    rgb, alpha = _portrait(data, "p_bac3c1ff", 0.25)
    fg = estimate_foreground(rgb, alpha)
    assert fg.dtype == np.uint8 and fg.shape == rgb.shape
    solid = alpha >= 1.0
    assert solid.any() and np.array_equal(fg[solid], rgb[solid])
    binary = (alpha > 0.5).astype(np.float32)  # no soft pixels: nothing to estimate
    assert np.array_equal(estimate_foreground(rgb, binary), rgb)
    with pytest.raises(GreenlessError, match="differ in size"):
        estimate_foreground(rgb, alpha[:-1])


def test_parse_color() -> None:
    assert parse_color("white") == (255, 255, 255)
    assert parse_color("#00ff00") == (0, 255, 0)
    assert parse_color("#0f0") == (0, 255, 0)
    assert parse_color("0,255,0") == (0, 255, 0)
    assert parse_color(" 12, 34 ,56 ") == (12, 34, 56)
    assert parse_color("rgb(1,2,3)") == (1, 2, 3)
    assert parse_color("beach.jpg") is None and parse_color("nocolour") is None
    with pytest.raises(GreenlessError, match="0-255"):
        parse_color("300,0,0")


def test_cover_resize_centre_crops() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 90:110] = 255  # a bright stripe at the centre
    out = cover_resize(img, 60, 60)  # scale 0.6 -> 60x120, crop the middle 60 columns
    assert out.shape == (60, 60, 3)
    assert out[:, 30].min() > 200 and out[:, 0].max() == 0 and out[:, -1].max() == 0
    assert cover_resize(img, 300, 100).shape == (300, 100, 3)  # upscaling to cover


def test_cutout_composite_and_raw_path(data: Path) -> None:
    rgb, alpha = _portrait(data, "p_51c916fc", 0.25)
    rgba = cutout(rgb, alpha)
    assert rgba.shape == (*rgb.shape[:2], 4)
    assert np.array_equal(rgba[:, :, 3], (alpha * 255 + 0.5).astype(np.uint8))
    raw = cutout(rgb, alpha, fg_estimate=False)
    assert np.array_equal(raw[:, :, :3], rgb)
    assert np.array_equal(foreground(rgb, alpha, fg_estimate=False), rgb)
    green = composite(rgb, alpha, "#00ff00", fg_estimate=False)
    expected = rgb * alpha[:, :, None] + np.array([0, 255, 0]) * (1 - alpha[:, :, None])
    assert np.abs(green.astype(float) - expected).max() <= 1.0
    ones, zeros = np.ones_like(alpha), np.zeros_like(alpha)
    assert np.array_equal(composite(rgb, ones, "black"), rgb)
    bg_path = data / "backgrounds" / "beach.jpg"
    on_photo = composite(rgb, zeros, str(bg_path))
    assert np.array_equal(on_photo, cover_resize(load_rgb(bg_path), *alpha.shape))
    assert np.array_equal(composite(rgb, zeros, (1, 2, 3))[0, 0], [1, 2, 3])
    with pytest.raises(GreenlessError, match="background"):
        composite(rgb, alpha, "no-such-colour-or-file")
    assert render("alpha", rgb, alpha).dtype == np.uint8 and render("alpha", rgb, alpha).ndim == 2
    assert np.array_equal(render("alpha", rgb, alpha, gray_as_rgb=True)[:, :, 1], render("ALPHA", rgb, alpha))
    with pytest.raises(GreenlessError, match="output must be one of rgba, alpha, foreground, composite"):
        render("bogus", rgb, alpha)


def test_api_mirrors_input_types(data: Path) -> None:
    """PIL in -> PIL out, ndarray -> ndarray, bytes -> PNG bytes; sizes follow the input (dev weights are fine)."""
    pil = Image.open(data / "photos" / "portrait-640.jpg").resize((101, 67))
    arr = np.asarray(pil)
    cut = greenless.remove(pil)  # the cached default Matter
    small = greenless.load_matter(ref_size=64)  # the rest at a small network size, to stay quick on CPU
    assert isinstance(cut, Image.Image) and cut.mode == "RGBA" and cut.size == (101, 67)
    assert isinstance(greenless.cutout(arr, matter=small), np.ndarray) and greenless.cutout(arr, matter=small).shape == (67, 101, 4)
    alpha = greenless.matte(arr, matter=small)
    assert alpha.dtype == np.float32 and alpha.shape == (67, 101) and 0 <= alpha.min() <= alpha.max() <= 1
    assert greenless.matte(pil, matter=small).mode == "L"
    png = greenless.composite(encode_image(arr, "PNG"), background="#00ff00", matter=small)
    assert isinstance(png, bytes) and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).mode == "RGB"
    given = greenless.composite(arr, "white", alpha=np.zeros((67, 101), np.float32))
    assert (given == 255).all()
    fg = greenless.foreground(pil, alpha=alpha)
    assert isinstance(fg, Image.Image) and fg.mode == "RGB"
    assert greenless.load_matter() is greenless.load_matter()
    with pytest.raises(GreenlessError, match="not an image"):
        greenless.remove(b"plain text, not a picture", matter=small)
    with pytest.raises(GreenlessError, match="does not match"):
        greenless.cutout(arr, alpha=np.zeros((10, 10), np.float32))
