"""Labelled folders: the one layout and pairing rule that training, ``greenless eval`` and the export check share.

A labelled folder holds images and their ground-truth alpha mattes in two sibling folders, in one of the
layouts users already have (:data:`LAYOUTS`, tried in order: PPM-100, P3M-500, AIM-500, Composition-1K's
``merged/``). Images pair with mattes by file stem; a stem on one side only, or two files of one stem
on a side (``a.png`` and ``a.jpg``), is an error naming the folder, never a silently dropped sample.
Hidden files (``.DS_Store``, ``._a.png``) are not samples. Below both ``data/`` and ``evaluate/``: it
knows files, not models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES

#: (layout name, image folder, ground-truth folder), tried in order.
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
    """One image (or foreground) and its ground-truth alpha, paired by file stem."""

    stem: str
    image: Path
    alpha: Path


@dataclass(frozen=True)
class LabelledSet:
    """A detected labelled folder: its layout name and the paired samples, sorted by stem."""

    root: Path
    layout: str
    samples: list[Sample]


def files_by_stem(folder: Path) -> dict[str, Path]:
    """The image files directly inside ``folder`` by stem (hidden files skipped); two of one stem are an error."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in files:
                raise GreenlessError(f"{folder}: two files share the stem {path.stem!r} ({files[path.stem].name}, {path.name})")
            files[path.stem] = path
    return files


def pair_by_stem(image_dir: Path, alpha_dir: Path) -> list[Sample]:
    """Every image of ``image_dir`` with the matte of the same stem in ``alpha_dir``, sorted by stem;
    unmatched files on either side, or no images at all, are an error."""
    images, alphas = files_by_stem(image_dir), files_by_stem(alpha_dir)
    if not images:
        raise GreenlessError(f"{image_dir}: no images found")
    no_gt = sorted(set(images) - set(alphas))
    if no_gt:
        raise GreenlessError(f"{alpha_dir}: no ground truth for {len(no_gt)} image(s), e.g. {images[no_gt[0]].name}")
    no_image = sorted(set(alphas) - set(images))
    if no_image:
        raise GreenlessError(f"{image_dir}: no image for {len(no_image)} ground-truth matte(s), e.g. {alphas[no_image[0]].name}")
    return [Sample(stem, images[stem], alphas[stem]) for stem in sorted(images)]


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


def load_labelled(root: str | Path) -> LabelledSet:
    """The layout of ``root`` and its samples, paired by stem (:func:`pair_by_stem`)."""
    layout, image_dir, alpha_dir = detect_layout(root)
    return LabelledSet(Path(root), layout, pair_by_stem(image_dir, alpha_dir))
