"""Streaming video matting: decode thread -> inference (batched, through ``Matter.stream()``) -> compose + encode thread.

Bounded queues between the stages keep memory constant in the video's length while decoding,
inference and encoding overlap. The temporal policy (previous-alpha feedback, OFD) is the stream's
(``greenless.pipeline.stream``); its names stay importable from here.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError
from greenless.pipeline.compose import OutputKind, cover_resize, parse_background, render
from greenless.pipeline.stream import (  # noqa: F401
    DEFAULT_OFD_TOL,
    TEMPORAL_MODES,
    MatteStream,
    OneFrameDelay,
    TemporalPolicy,
    apply_ofd,
    ofd_step,
    resolve_temporal,
)

DEFAULT_BACKGROUND = "green"
_END = object()


class Background:
    """A background the size of the frames: a colour, an image or a looping video (each scaled to cover the frame
    and centre-cropped, as photos do: ``compose.cover_resize``), or 'blur' of the frame.

    An image or video background is read within the pixel budget ``max_pixels``, as inputs are.
    """

    def __init__(self, spec: str | None, width: int, height: int, max_pixels: int | None = None) -> None:
        self.width, self.height = width, height
        self.spec = spec or DEFAULT_BACKGROUND
        self._still: np.ndarray | None = None
        self._video: Any = None
        self._frames: Any = None
        parsed = parse_background(self.spec, video=True, max_pixels=max_pixels)  # the one rule, as for photos
        self.blur = isinstance(parsed, str)
        if isinstance(parsed, tuple):
            self._still = np.empty((height, width, 3), np.uint8)
            self._still[:] = parsed
        elif isinstance(parsed, np.ndarray):
            self._still = cover_resize(parsed, height, width)
        elif isinstance(parsed, Path):
            from greenless.media.limits import DEFAULT_MAX_PIXELS
            from greenless.media.video import open_video

            self._video = open_video(parsed, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
            self._frames = iter(self._video)

    def for_frame(self, rgb: np.ndarray) -> np.ndarray:
        """Background for the frame ``rgb`` (the next frame of a video background, looping at its end)."""
        import cv2

        if self.blur:
            return cv2.GaussianBlur(rgb, (0, 0), sigmaX=max(rgb.shape[:2]) / 40.0)
        if self._still is not None:
            if self._still.shape[:2] != rgb.shape[:2]:
                self._still = cover_resize(self._still, rgb.shape[0], rgb.shape[1])
            return self._still
        try:
            frame = next(self._frames)
        except StopIteration:
            self._frames = iter(self._video)
            frame = next(self._frames)
        image = frame.image
        if image.shape[:2] != rgb.shape[:2]:
            image = cover_resize(image, rgb.shape[0], rgb.shape[1])
        return image

    def close(self) -> None:
        """Release a video background."""
        if self._video is not None:
            self._video.close()


#: Video frames estimate foreground colours on at most this many pixels (the correction is smooth and
#: upsampled): at full size it took 54 ms of a 640x360 frame, more than the network, on 2 cores.
VIDEO_FG_MAX_PIXELS = 60_000


#: The one renderer (``compose.render``) as streams use it: foreground colours on at most VIDEO_FG_MAX_PIXELS.
frame_render = functools.partial(render, fg_max_pixels=VIDEO_FG_MAX_PIXELS)


@dataclass
class VideoStats:
    """What a run did: frames written, wall time, whether it was interrupted, notes for the user."""

    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    temporal: str = "ofd"
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put with a stop check, so a dead consumer never blocks the producer forever."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class VideoPipeline:
    """Runs one video through ``matter`` into one writer, or several, with three overlapping stages and bounded queues.

    The decode and encode stages are worker threads; inference runs in the calling thread so Ctrl-C
    lands there. On KeyboardInterrupt the frames already matted are encoded and the run stops
    (``stats.interrupted``); the caller then finalises or drops the output.
    """

    def __init__(self, matter: Any, mode: str = "composite", background: Background | None = None,
                 temporal: str | None = None, batch: int = 4, ofd_tol: float = DEFAULT_OFD_TOL,
                 queue_size: int | None = None, on_frame: Callable[[int], None] | None = None, ofd: bool = True,
                 stream: MatteStream | None = None, renderer: Callable[..., np.ndarray] | None = None) -> None:
        mode = OutputKind.parse(mode)
        if batch < 1:
            raise GreenlessError("--batch must be at least 1")
        self.matter = matter
        self.mode = mode
        self.background = background
        #: Frame-to-frame state and policy: ``stream`` when given, else ``matter.stream(temporal, ofd, ofd_tol)``.
        self.stream = stream if stream is not None else MatteStream(matter, temporal, ofd, ofd_tol)
        self.temporal = self.stream.label
        self.batch = min(batch, self.stream.max_batch or batch)
        self.queue_size = queue_size or max(4, 2 * self.batch)
        self.on_frame = on_frame
        #: Makes each output picture, with ``compose.render``'s arguments (``frame_render`` unless given: the device
        #: path passes ``pipeline.device.DeviceRenderer``, which composites on the GPU).
        self.render = renderer or frame_render

    def run(self, frames: Iterable[Any], writer: Any, gray_as_rgb: bool = True) -> VideoStats:
        """Matte every frame of ``frames`` (media.video.Frame objects) and write the rendered result."""
        return self.run_outputs(frames, [(self.mode, writer, gray_as_rgb)])

    def run_outputs(self, frames: Iterable[Any], outputs: Sequence[tuple[str, Any, bool]]) -> VideoStats:
        """Matte every frame once and write it to each of ``outputs``: (output kind, writer, grey matte as RGB)
        each, so a composite, its matte and its foreground come from one pass over the video."""
        kinds = [(OutputKind.parse(kind), writer, gray) for kind, writer, gray in outputs]
        stats = VideoStats(temporal=self.temporal)
        self.stream.reset()
        stop = threading.Event()
        errors: list[BaseException] = []
        q_in: queue.Queue = queue.Queue(self.queue_size)
        q_out: queue.Queue = queue.Queue(self.queue_size)
        last_pts = [None]

        def decode() -> None:
            try:
                for frame in frames:
                    if not _put(q_in, frame, stop):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
            finally:
                _put(q_in, _END, stop)

        def encode() -> None:
            try:
                while True:
                    item = q_out.get()
                    if item is _END:
                        return
                    frame, alpha = item
                    pts = frame.pts if frame.pts is not None else frame.index
                    if last_pts[0] is not None and pts <= last_pts[0]:
                        pts = last_pts[0] + 1  # encoders need strictly increasing timestamps
                    last_pts[0] = pts
                    for kind, writer, gray_as_rgb in kinds:
                        writer.write(self.render(kind, frame.image, alpha, self.background, gray_as_rgb=gray_as_rgb),
                                     pts)
                    stats.frames += 1
                    if self.on_frame is not None:
                        self.on_frame(1)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                stop.set()
                while True:  # keep draining so the inference stage never blocks on a dead encoder
                    try:
                        if q_out.get(timeout=0.1) is _END:
                            return
                    except queue.Empty:
                        if not threading.main_thread().is_alive():
                            return

        decoder = threading.Thread(target=decode, name="greenless-decode", daemon=True)
        encoder = threading.Thread(target=encode, name="greenless-encode", daemon=True)
        start = time.perf_counter()
        decoder.start()
        encoder.start()
        try:
            self._infer(q_in, q_out, stop, errors)
        except KeyboardInterrupt:
            stats.interrupted = True
        finally:
            stop.set()
            q_out.put(_END)  # the encoder drains until this marker, so this never blocks for long
            encoder.join()
            self._drain(q_in)
            decoder.join(timeout=5)
            stats.seconds = time.perf_counter() - start
        if errors and not stats.interrupted:
            exc = errors[0]
            if isinstance(exc, GreenlessError):
                raise exc
            raise GreenlessError(f"video processing failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        return stats

    @staticmethod
    def _drain(q: queue.Queue) -> None:
        while True:
            try:
                q.get_nowait()
            except queue.Empty:
                return

    def _infer(self, q_in: queue.Queue, q_out: queue.Queue, stop: threading.Event, errors: list[BaseException]) -> None:
        """Inference stage (calling thread): batches frames into the stream (which applies the temporal policy)
        and feeds the encoder the frames it hands back."""
        finished = False
        while not finished:
            batch: list[Any] = []
            while len(batch) < self.batch:
                try:
                    item = q_in.get(timeout=0.1)
                except queue.Empty:
                    if errors:
                        return
                    continue
                if item is _END:
                    finished = True
                    break
                batch.append(item)
            if errors:
                return
            if not batch:
                break
            for a, f in self.stream.push([f.image for f in batch], batch):
                if not _put(q_out, (f, a), stop):
                    return
        for a, f in self.stream.flush():
            _put(q_out, (f, a), stop)
