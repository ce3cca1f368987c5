"""Evaluation folders: the labelled layouts and pairing rule of ``greenless.media.labelled`` (training reads
folders by the same rule), predictions by stem, and ground-truth alphas read as floats."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES as IMAGE_EXTS
from greenless.media.labelled import LAYOUTS, LabelledSet, Sample, detect_layout, load_labelled

__all__ = ["LAYOUTS", "EvalSet", "Sample", "detect_layout", "find_prediction", "load_eval_set", "read_alpha", "read_rgb"]

#: The one layout and pairing rule, shared with training and the export check (greenless.media.labelled).
EvalSet = LabelledSet
load_eval_set = load_labelled


def find_prediction(pred_dir: Path, stem: str) -> Path:
    """The prediction for ``stem`` in ``pred_dir`` (``stem.png`` preferred, any image extension accepted)."""
    png = pred_dir / f"{stem}.png"
    if png.is_file():
        return png
    for ext in IMAGE_EXTS:
        for candidate in (pred_dir / f"{stem}{ext}", pred_dir / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    raise GreenlessError(f"{png}: prediction missing for image {stem!r}")


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (errors name the file)."""
    from greenless.media.images import load_rgb

    return load_rgb(path)


def read_alpha(path: Path) -> np.ndarray:
    """An alpha file as HxW float64 in [0, 1].

    Greyscale (8 or 16 bit) is the matte itself; an image with an alpha channel (an RGBA cut-out from
    another tool) contributes that channel; an RGB image is converted to luminance.
    """
    from greenless.media.images import open_image

    im = open_image(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.asarray(im).astype(np.float64) / 65535.0, 0.0, 1.0)
    if im.mode == "F":
        return np.clip(np.asarray(im).astype(np.float64), 0.0, 1.0)
    if "A" in im.getbands():
        return np.asarray(im.getchannel("A")).astype(np.float64) / 255.0
    return np.asarray(im.convert("L")).astype(np.float64) / 255.0
