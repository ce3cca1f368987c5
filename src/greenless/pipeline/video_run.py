"""One video to one or several outputs in one pass: the targets (what to write where), their writers opened and
closed together, and what an interrupted run leaves behind.

``greenless video -o comp.mp4 --alpha-out alpha.mov --fg-out fg.mov`` decodes and mattes each frame once and
renders it once per output (``VideoPipeline.run_outputs``). The face parses and reports; this module does the run.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greenless.errors import GreenlessError
from greenless.media.video import check_output, is_video_output, open_writer
from greenless.pipeline.compose import OutputKind
from greenless.pipeline.video import Background, VideoPipeline, VideoStats


@dataclass(frozen=True)
class VideoTarget:
    """One output of a run: what to write and where (.mp4/.webm/.mov/.mkv, or a name without suffix: PNG frames)."""

    kind: OutputKind
    path: Path

    def check(self) -> None:
        """One error line, before any work, when no writer takes the path (out.txt) or its file type cannot hold the
        kind (rgba in .mp4)."""
        check_output(self.path, alpha=self.kind is OutputKind.rgba)


def check_targets(targets: list[VideoTarget]) -> None:
    """At least one target, no two on one path, each writable as its kind; one error line otherwise."""
    if not targets:
        raise GreenlessError("nothing to write: give -o PATH, or --alpha-out, --fg-out or --rgba-out")
    seen: dict[Path, VideoTarget] = {}
    for target in targets:
        key = target.path.resolve()
        if key in seen:
            raise GreenlessError(f"{target.path}: named for both {seen[key].kind} and {target.kind}; give each its own path")
        seen[key] = target
        target.check()


def frame_total(reader: Any, max_frames: int | None) -> int | None:
    """How many frames a run will write when known: the reader's count, capped by ``max_frames``."""
    total = reader.frame_count or None
    return min(total or max_frames, max_frames) if max_frames is not None else total


class VideoWriters:
    """The writers of one run's targets, opened together (the input's audio goes into each video file) and then
    closed, dropped, or, after an interruption, finished together."""

    def __init__(self, targets: list[VideoTarget], reader: Any, audio_source: Path | None) -> None:
        self.targets = targets
        self.existed = [t.path.exists() for t in targets]  # an interrupted run must never replace these
        self.writers: list[Any] = []
        try:
            for target in targets:
                as_video = is_video_output(target.path)
                writer = open_writer(target.path, reader.width, reader.height, reader.fps,
                                     alpha=target.kind is OutputKind.rgba, time_base=reader.time_base,
                                     audio_source=audio_source if as_video and reader.audio_streams else None)
                if reader.audio_streams and not as_video:
                    writer.notes.append(f"{target.path}: a PNG sequence holds no audio; the input's audio was not kept")
                self.writers.append(writer)
        except BaseException:
            self.abort()
            raise

    def outputs(self) -> list[tuple[OutputKind, Any, bool]]:
        """(kind, writer, grey matte as RGB) per target, for ``VideoPipeline.run_outputs``."""
        return [(t.kind, w, is_video_output(t.path)) for t, w in zip(self.targets, self.writers, strict=True)]

    @property
    def notes(self) -> list[str]:
        return [note for writer in self.writers for note in writer.notes]

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def abort(self) -> None:
        """Drop every output's unfinished ``.part`` file or folder; what was there before stays as it was."""
        for writer in self.writers:
            writer.abort()

    def finish_interrupted(self, frames: int, total: int | None) -> list[str]:
        """After Ctrl-C, SIGTERM or SIGHUP: an output that existed before the run (or got no frame) is dropped and
        the old file stays byte for byte; a new one keeps the frames written so far, finalised so it plays.
        Returns what became of each, for the one line the user sees."""
        said = []
        of = f" of {total}" if total else ""
        for target, writer, existed in zip(self.targets, self.writers, self.existed, strict=True):
            if existed or frames == 0:
                writer.abort()
                said.append(f"{target.path} left unchanged" if existed else f"{target.path} not created")
            else:
                writer.close()
                said.append(f"{target.path} is partial: the first {frames}{of} frames")
        return said


def run_video(setup: Any, reader: Any, targets: list[VideoTarget], background: str, *, audio_source: Path | None,
              max_frames: int | None = None, max_pixels: int | None = None,
              on_frame: Callable[[int], None] | None = None) -> tuple[VideoStats, list[str]]:
    """Matte ``reader``'s frames once with ``setup`` (``pipeline.stream.open_stream``'s) and write every target.

    Returns the run's figures and the lines to tell the user: the writers' notes, or, when the run was
    interrupted (``stats.interrupted``), what became of each output. Any failure drops every partial output.
    """
    wants_background = any(t.kind is OutputKind.composite for t in targets)
    bg = Background(background, reader.width, reader.height, max_pixels) if wants_background else None
    try:
        writers = VideoWriters(targets, reader, audio_source)
        try:  # from here on any failure drops the partial outputs (the writers' .part files or folders)
            frames = itertools.islice(iter(reader), max_frames) if max_frames is not None else iter(reader)
            pipeline = VideoPipeline(setup.matter, mode=targets[0].kind, background=bg, batch=setup.batch,
                                     on_frame=on_frame, stream=setup.stream, renderer=setup.render)
            stats = pipeline.run_outputs(frames, writers.outputs())
            if stats.interrupted:
                return stats, writers.finish_interrupted(stats.frames, frame_total(reader, max_frames))
            writers.close()
        except BaseException:
            writers.abort()
            raise
    finally:
        if bg is not None:
            bg.close()
    return stats, writers.notes
