"""Find matting samples on disk in the layouts users already have, with clear errors for broken sets.

Layouts: labelled folders by the one rule ``greenless eval`` and the export check read too
(``greenless.media.labelled``: PPM-100 style ``image/`` + ``alpha/`` paired by stem, P3M's and AIM-500's
names too), and foreground lists (Composition-1K / PaddleSeg style: ``fg/`` + ``alpha/``, paired by the
same rule, plus a folder or list file of backgrounds).
"""

from __future__ import annotations

from pathlib import Path

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES as IMAGE_EXTS
from greenless.media.labelled import Sample, load_labelled, pair_by_stem
from greenless.media.video import VIDEO_EXTENSIONS

IMAGE_SUFFIXES = frozenset(IMAGE_EXTS)  # the package's one still-image list (media.images)
VIDEO_SUFFIXES = frozenset(VIDEO_EXTENSIONS)  # and its one video list (media.video)

#: One labelled sample: an image (or a foreground) and its alpha matte (``.image``, ``.alpha``, ``.stem``).
Pair = Sample


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (hidden files skipped), sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))


def find_labelled(root: Path) -> list[Pair]:
    """Image/alpha pairs of a PPM-100, P3M-500 or AIM-500 style folder, by the rule ``greenless eval`` uses
    (``greenless.media.labelled``)."""
    return load_labelled(root).samples


def find_foregrounds(root: Path) -> list[Pair]:
    """Foreground/alpha pairs of a Composition-1K style folder (``fg/`` + ``alpha/``, paired by stem)."""
    if not (root / "fg").is_dir() or not (root / "alpha").is_dir():
        raise GreenlessError(f"{root}: expected fg/ and alpha/ folders")
    return pair_by_stem(root / "fg", root / "alpha")


def find_backgrounds(source: Path) -> list[Path]:
    """Background images from a folder or a text file listing one path per line (relative to the file)."""
    if source.is_dir():
        found = list_images(source)
    elif source.is_file():
        lines = [line.strip() for line in source.read_text().splitlines() if line.strip()]
        found = [(source.parent / line) if not Path(line).is_absolute() else Path(line) for line in lines]
        absent = [str(p) for p in found if not p.is_file()]
        if absent:
            raise GreenlessError(f"{source}: listed backgrounds not found: {', '.join(absent[:3])}")
    else:
        raise GreenlessError(f"{source}: no such background folder or list")
    if not found:
        raise GreenlessError(f"{source}: no background images")
    return found


def find_unlabelled(source: Path) -> list[Path]:
    """Images or videos for self-supervised adaptation: a folder of them or one video file."""
    if source.is_file():
        if source.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            return [source]
        raise GreenlessError(f"{source}: not an image or video file")
    if not source.is_dir():
        raise GreenlessError(f"{source}: no such file or folder")
    found = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES)
    if not found:
        raise GreenlessError(f"{source}: no images or videos found")
    return found
