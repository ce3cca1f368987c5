"""Which files a run reads and the names of its results: one rule for ``greenless matte`` (one photo, many,
a watched folder) and ``greenless batch --ray``.

One input without ``-o``: the rgba cut-out goes next to the photo as ``PHOTO.png`` (``PHOTO.cutout.png``
when the photo is itself a .png, so it is never overwritten); other kinds are ``PHOTO.alpha.png``,
``PHOTO.foreground.png``, ``PHOTO.composite.png``. With ``-o``: one input writes that file (or into that
folder if it exists, ends with ``/`` or has no suffix); several inputs or a folder write ``OUT/STEM.png``
each. A folder given without ``-o`` writes into ``FOLDER/greenless/``; loose files without ``-o`` are named
as a lone input's would be. No input is ever overwritten by a default name.

A result is ``STEM.png``; when several inputs going to the same folder share a stem it is ``NAME.png``
(``a.jpg.png`` and ``a.webp.png``); and when that would be the name of an input in the same folder it is
``STEM.cutout.png``, so an input is never overwritten. Names compare case-folded, so case-insensitive file
systems are safe too. Works on plain names, so it serves local paths and object-store keys alike.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from greenless.errors import GreenlessError
from greenless.media.files import real_path
from greenless.media.images import IMAGE_SUFFIXES


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


_GLOB_CHARS = set("*?[")
#: A lone photo's result beside it, by output kind: PHOTO.png for the cut-out, PHOTO.KIND.png for the others.
OWN_SUFFIXES = {"rgba": ".png", "alpha": ".alpha.png", "foreground": ".foreground.png", "composite": ".composite.png"}
_DEFAULT_FOLDER = "greenless"


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str], bool]:
    """Files, folders (images inside, sorted, not recursive) and globs -> (files, problems, many).

    ``problems`` are one-line messages for inputs that named nothing; ``many`` is True when the run
    writes several results (several inputs, a folder or a glob), so ``-o`` is a folder.
    """
    files: list[Path] = []
    problems: list[str] = []
    many = len(inputs) > 1
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            many = True
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{item}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif not path.exists() and _GLOB_CHARS & set(item):
            many = True
            found = sorted(Path(p) for p in glob.glob(item, recursive=True)
                           if Path(p).is_file() and Path(p).suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(f"{item}: no images match this pattern")
            files.extend(found)
        else:
            files.append(path)  # missing files are reported when they are read, one line each
    unique: list[Path] = []
    seen: set[str] = set()
    for f in files:
        key = real_path(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems, many


def is_folder_target(out: str) -> bool:
    return out.endswith(("/", os.sep)) or Path(out).is_dir() or not Path(out).suffix


def _key(path: Path) -> str:
    """Identity of a path for clash checks; case-folded so case-insensitive file systems are safe too."""
    return real_path(path).casefold()


def single_output(src: Path, kind: str, out: str | None) -> Path:
    """Where the result for a lone input goes (see module docstring); an input is never its own output."""
    if out is not None and not is_folder_target(out):
        return Path(out)  # an explicit file name is the user's choice
    folder = Path(out) if out is not None else src.parent
    target = folder / (f"{src.stem}.png" if out is not None else src.stem + OWN_SUFFIXES[kind])
    if _key(target) == _key(src):
        target = folder / f"{src.stem}.cutout.png"
    return target


def batch_outputs(files: list[Path], inputs: list[str], out: str | None, kind: str) -> list[Path]:
    """Where each result of a multi-photo run goes (see module docstring).

    ``OUT/STEM.png`` (or ``FOLDER/greenless/STEM.png`` for a folder given without ``-o``); stems that
    clash keep their extension (``a.jpg.png``); an input is never overwritten. Loose files without
    ``-o`` are named as a lone input would be. The first rule is ``greenless.media.naming``'s (batch --ray
    uses it too); inputs from several folders that still meet on one name are numbered (``a-2.png``).
    """
    folders = [real_path(i) for i in inputs if Path(i).is_dir()]
    folder_for: dict[Path, Path | None] = {}
    for f in files:
        if out is not None:
            folder_for[f] = Path(out)
        elif real_path(f.parent) in folders:
            folder_for[f] = f.parent / _DEFAULT_FOLDER
        else:
            folder_for[f] = None  # next to the photo, named like a lone input's result
    going_to: dict[str, list[Path]] = {}  # inputs by the folder their result goes to
    for f in files:
        folder = folder_for[f]
        if folder is not None:
            going_to.setdefault(_key(folder), []).append(f)
    clashing = {key: clashing_stems(f.name for f in group) for key, group in going_to.items()}
    names_in: dict[str, set[str]] = {}  # input names by the folder they are in
    for f in files:
        names_in.setdefault(_key(f.parent), set()).add(f.name.casefold())
    inputs_resolved = {_key(f) for f in files}
    result = []
    for f in files:
        folder = folder_for[f]
        if folder is None:
            result.append(single_output(f, kind, None))
            continue
        here = frozenset(names_in.get(_key(folder), ()))
        result.append(folder / result_name(f.name, clashing[_key(folder)], here))
    taken: set[str] = set()
    for i, target in enumerate(result):
        if _key(target) in inputs_resolved:  # e.g. loose a.jpg and a.png: a.jpg's a.png is an input
            target = result[i] = target.with_name(f"{target.name[:-4]}.cutout.png")
        n = 1  # the same name from different folders, or an input's name: number the later ones
        while _key(result[i]) in taken or _key(result[i]) in inputs_resolved:
            n += 1
            result[i] = target.with_name(f"{target.name[:-4]}-{n}.png")
        taken.add(_key(result[i]))
    return result


def refuse_batch_overwrites(targets: list[Path], files: list[Path], background_file: Path | None) -> None:
    """One ``GreenlessError`` when an existing target is the same file on disk as an input or the
    background image (a hard link, or a symlink the names do not show), before anything is matted.

    ``batch_outputs`` already never picks an input's path; this catches what paths cannot tell.
    """
    on_disk: dict[tuple[int, int], str] = {}
    sources: list[tuple[Path, str]] = [(f, "the input") for f in files]
    if background_file is not None:
        sources.append((background_file, "the background image"))
    for path, what in sources:
        try:
            st = os.stat(path)
        except OSError:
            continue  # a missing input is reported when it is read
        on_disk[(st.st_dev, st.st_ino)] = f"{what} {path}"
    for target in targets:
        try:
            st = os.stat(target)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in on_disk:
            raise GreenlessError(f"{target}: output would overwrite {on_disk[(st.st_dev, st.st_ino)]}")
