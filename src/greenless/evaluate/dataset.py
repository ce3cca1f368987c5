"""Labelled folders: detect the layout (PPM-100, P3M-500, AIM-500; the one rule, training's ``find_labelled``
uses it too), pair images with ground truth, read alphas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES as IMAGE_EXTS

# (layout name, image folder, ground-truth folder), tried in order.
LAYOUTS = (
    ("PPM-100", "image", "alpha"),
    ("PPM-100", "image", "matte"),
    ("P3M-500-P", "blurred_image", "mask"),
    ("P3M-500-NP", "original_image", "mask"),
    ("AIM-500", "original", "mask"),
    ("PPM-100", "images", "alpha"),
    ("Composition-1K", "merged", "alpha"),
)


@dataclass(frozen=True)
class Sample:
    """One image and its ground-truth alpha, paired by file stem."""

    stem: str
    image: Path
    alpha: Path


@dataclass(frozen=True)
class EvalSet:
    """A detected evaluation folder: its layout name and the paired samples, sorted by stem."""

    root: Path
    layout: str
    samples: list[Sample]


def _by_stem(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith("."):
            if path.stem in files:
                raise GreenlessError(f"{folder}: two files share the stem {path.stem!r} ({files[path.stem].name}, {path.name})")
            files[path.stem] = path
    return files


def detect_layout(root: str | Path) -> tuple[str, Path, Path]:
    """The (layout, image folder, ground-truth folder) of ``root``; a clear error when none matches."""
    root = Path(root)
    if not root.is_dir():
        raise GreenlessError(f"{root}: not a folder")
    for name, image_dir, alpha_dir in LAYOUTS:
        if (root / image_dir).is_dir() and (root / alpha_dir).is_dir():
            return name, root / image_dir, root / alpha_dir
    expected = "; ".join(f"{i}/ + {a}/" for _, i, a in LAYOUTS)
    raise GreenlessError(f"{root}: no known dataset layout (expected {expected})")


def load_eval_set(root: str | Path) -> EvalSet:
    """Pair every image with its ground truth by stem; unmatched files on either side are an error."""
    layout, image_dir, alpha_dir = detect_layout(root)
    images, alphas = _by_stem(image_dir), _by_stem(alpha_dir)
    no_gt = sorted(set(images) - set(alphas))
    if no_gt:
        raise GreenlessError(f"{alpha_dir}: no ground truth for {len(no_gt)} image(s), e.g. {images[no_gt[0]].name}")
    no_image = sorted(set(alphas) - set(images))
    if no_image:
        raise GreenlessError(f"{image_dir}: no image for {len(no_image)} ground-truth matte(s), e.g. {alphas[no_image[0]].name}")
    if not images:
        raise GreenlessError(f"{image_dir}: no images")
    samples = [Sample(stem, images[stem], alphas[stem]) for stem in sorted(images)]
    return EvalSet(Path(root), layout, samples)


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
