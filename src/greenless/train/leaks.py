"""The validation set is never training data: a config whose training folders include its validation folder
(or the reverse), or read any of its images under another name, is refused before training starts.

Figures measured on images the network was trained on say nothing about new pictures, and the cards
of shipped weights quote them, so the check looks at what training would really read: the folders
(resolved, so ``../x`` and a symlink to ``x`` are one folder) and the files' bytes (so a copy of a
validation image among the training data is found too).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from greenless.data.folders import find_backgrounds, find_foregrounds, find_labelled
from greenless.errors import GreenlessError
from greenless.train.config import TrainConfig


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_files(cfg: TrainConfig) -> dict[str, list[Path]]:
    """Every file training reads, by the config key that names it (images, foregrounds, mattes, backgrounds)."""
    d = cfg.data
    files: dict[str, list[Path]] = {"foregrounds": [], "labelled": [], "backgrounds": []}
    for folder in d.foregrounds:
        files["foregrounds"] += [p for pair in find_foregrounds(cfg.resolve(folder)) for p in (pair.image, pair.alpha)]
    for folder in d.labelled:
        files["labelled"] += [p for pair in find_labelled(cfg.resolve(folder)) for p in (pair.image, pair.alpha)]
    for source in d.backgrounds:
        files["backgrounds"] += find_backgrounds(cfg.resolve(source))
    return files


def check_validation_apart(cfg: TrainConfig) -> None:
    """One error line when ``[data] val`` overlaps the training data (see the module docstring)."""
    if not cfg.data.val:
        return
    val = cfg.resolve(cfg.data.val).resolve()
    d = cfg.data
    for key, sources in (("foregrounds", d.foregrounds), ("labelled", d.labelled), ("backgrounds", d.backgrounds)):
        for source in sources:
            src = cfg.resolve(source).resolve()
            if src == val or val in src.parents or src in val.parents:
                how = "is" if src == val else ("is inside" if src in val.parents else "contains")
                raise GreenlessError(f"[data] val {cfg.data.val!r} {how} the training data "
                                     f"([data] {key} {source!r}): validation must never be trained on")
    val_images = [pair.image for pair in find_labelled(val)]
    by_size: dict[int, list[Path]] = {}
    for path in val_images:
        by_size.setdefault(path.stat().st_size, []).append(path)
    digests: dict[Path, str] = {}
    for key, paths in training_files(cfg).items():
        for path in paths:
            same_size = by_size.get(path.stat().st_size)
            if not same_size:
                continue
            mine = _digest(path)
            for other in same_size:
                if digests.setdefault(other, _digest(other)) == mine:
                    raise GreenlessError(f"[data] val image {other.name} is also training data ([data] {key}: "
                                         f"{path}): validation must never be trained on")
