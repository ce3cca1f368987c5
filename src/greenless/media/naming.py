"""Names of batch results: one rule for ``greenless matte`` on many files and ``greenless batch --ray``.

A result is ``STEM.png``; when several inputs going to the same folder share a stem it is ``NAME.png``
(``a.jpg.png`` and ``a.webp.png``); and when that would be the name of an input in the same folder it is
``STEM.cutout.png``, so an input is never overwritten. Names compare case-folded, so case-insensitive file
systems are safe too. Works on plain names, so it serves local paths and object-store keys alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath


def clashing_stems(names: Iterable[str]) -> frozenset[str]:
    """The (case-folded) stems that more than one of ``names`` has."""
    counts: dict[str, int] = {}
    for name in names:
        key = PurePosixPath(name).stem.casefold()
        counts[key] = counts.get(key, 0) + 1
    return frozenset(k for k, n in counts.items() if n > 1)


def result_name(path: str, clashing: frozenset[str], input_names: frozenset[str]) -> str:
    """The result's file name for input ``path``, given the stems that clash and the (case-folded) names of the
    inputs in the folder it is written to."""
    name = PurePosixPath(path).name
    stem = PurePosixPath(path).stem
    target = f"{name}.png" if stem.casefold() in clashing else f"{stem}.png"
    if target.casefold() in input_names:
        target = f"{stem}.cutout.png"
    return target
