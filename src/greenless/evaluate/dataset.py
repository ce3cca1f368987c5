"""Evaluation folders: the labelled layouts and pairing rule of ``greenless.media.labelled`` (training reads
folders by the same rule), predictions by stem, and ground-truth alphas read as floats."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES as IMAGE_EXTS
from greenless.media.images import read_alpha
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
