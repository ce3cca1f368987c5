"""Many photos to result files: decode, matte, render and write, with decoding and writing overlapping the network;
and a watched folder, whose new or changed photos are matted as they arrive.

``greenless matte`` on several files and ``greenless matte DIR --watch`` are faces over these: they parse,
pick the files and their targets (``media.naming``), call, and report through ``on_result``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError
from greenless.media.images import IMAGE_SUFFIXES, load_rgb, save_image_atomic
from greenless.pipeline.compose import OutputKind, render

#: Called once per photo, in input order: (input, target, None when written or the error that stopped it).
OnResult = Callable[[Path, Path, "GreenlessError | None"], None]

#: Seconds between two looks at a watched folder (a photo is taken once it is unchanged for one interval).
WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class PhotoJob:
    """What to make of each photo: the output kind, its background (decoded once), colours and a size limit."""

    kind: OutputKind = OutputKind.rgba
    background: Any = "white"
    fg_estimate: bool = True
    max_pixels: int | None = None
    fmt: str = "PNG"

    def load(self, path: Path) -> np.ndarray:
        """The photo as RGB, refused above ``max_pixels``."""
        return load_rgb(path, max_pixels=self.max_pixels)

    def result(self, matter: Any, rgb: np.ndarray) -> np.ndarray:
        """The output picture for ``rgb``, matted by ``matter``."""
        return render(self.kind, rgb, matter.matte(rgb), self.background, fg_estimate=self.fg_estimate,
                      max_pixels=self.max_pixels)


def matte_files(matter: Any, files: list[Path], targets: list[Path], job: PhotoJob, on_result: OnResult) -> int:
    """Matte ``files`` into ``targets`` (written atomically); returns how many were written.

    Decoding the next photo and writing the previous result run in threads beside the network (Pillow, zlib and
    onnxruntime release the GIL); results are still reported in input order. A photo that fails is reported
    with its error and skipped.
    """
    written = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: tuple[Path, Path, Future] | None = None

        def finish() -> None:
            nonlocal written, pending
            if pending is None:
                return
            src, target, job_done = pending
            pending = None
            try:
                job_done.result()
                written += 1
                on_result(src, target, None)
            except GreenlessError as exc:
                on_result(src, target, exc)

        next_load = pool.submit(job.load, files[0]) if files else None
        for i, (src, target) in enumerate(zip(files, targets, strict=True)):
            loading, next_load = next_load, (pool.submit(job.load, files[i + 1]) if i + 1 < len(files) else None)
            try:
                result = job.result(matter, loading.result())  # type: ignore[union-attr]
            except GreenlessError as exc:
                finish()
                on_result(src, target, exc)
                continue
            finish()
            pending = (src, target, pool.submit(save_image_atomic, target, result, job.fmt))
        finish()
    return written


def watch_target(path: Path, out: Path, names: Iterable[str]) -> Path:
    """Where a watched photo's result goes: ``OUT/STEM.png``, or ``OUT/NAME.png`` while another photo in the
    folder has the same stem (``media.naming``'s rule for batches)."""
    from greenless.media.naming import clashing_stems, result_name

    return out / result_name(path.name, clashing_stems(names), frozenset())


def check_watch(folder: Path, out: Path) -> None:
    """One error line when ``folder`` cannot be watched into ``out`` (checked before a model loads)."""
    if not folder.is_dir():
        raise GreenlessError(f"{folder}: --watch takes one folder to watch")
    from greenless.media.files import real_path

    if real_path(out) == real_path(folder):
        raise GreenlessError(f"{out}: the results of a watched folder must go to another folder")
    if out.exists() and not out.is_dir():
        raise GreenlessError(f"{out}: the results of a watched folder go to a folder, and this is a file")


def watch_folder(matter: Any, folder: Path, out: Path, job: PhotoJob, on_result: OnResult,
                 stop: threading.Event | None = None, interval: float = WATCH_INTERVAL) -> None:
    """Matte the photos of ``folder`` into ``out`` as they arrive or change, until ``stop`` is set or Ctrl-C.

    Photos already there are matted too unless their result exists and is newer (a restarted watch redoes
    nothing). ``out`` must not be ``folder``: results there would be photos to matte.
    """
    from greenless.media.watch import FolderWatch

    check_watch(folder, out)
    out.mkdir(parents=True, exist_ok=True)

    def up_to_date(path: Path) -> bool:
        target = watch_target(path, out, (p.name for p in folder.iterdir()))
        try:
            return target.stat().st_mtime_ns >= path.stat().st_mtime_ns
        except OSError:
            return False

    watch = FolderWatch(folder, IMAGE_SUFFIXES, skip=up_to_date)
    stop = stop or threading.Event()
    while not stop.is_set():
        for path in watch.poll():
            names = [p.name for p in folder.iterdir()]
            matte_files(matter, [path], [watch_target(path, out, names)], job, on_result)
        stop.wait(interval)
