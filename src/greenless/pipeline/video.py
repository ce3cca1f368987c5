"""Streaming video matting: decode thread -> inference (batched) -> OFD -> compose + encode thread.

Bounded queues between the stages keep memory constant in the video's length while decoding,
inference and encoding overlap. OFD (one-frame delay) removes one-frame alpha flicker; with a
4-channel model the previous frame's alpha is fed back to the network instead.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError

from greenless.pipeline.compose import composite, cutout, estimate_foreground

OUTPUT_MODES = ("composite", "alpha", "rgba", "foreground")
TEMPORAL_MODES = ("prev-alpha", "ofd", "none")
DEFAULT_OFD_TOL = 0.1
DEFAULT_BACKGROUND = "green"
_END = object()


def ofd_step(prev: np.ndarray, cur: np.ndarray, nxt: np.ndarray, tol: float = DEFAULT_OFD_TOL) -> np.ndarray:
    """OFD on one frame: where prev and next agree within ``tol`` and cur differs from both by more, use their mean."""
    spike = (np.abs(prev - nxt) <= tol) & (np.abs(cur - prev) > tol) & (np.abs(cur - nxt) > tol)
    if not spike.any():
        return cur
    return np.where(spike, (prev + nxt) * 0.5, cur).astype(cur.dtype, copy=False)


class OneFrameDelay:
    """Streaming OFD: push alphas in order, get them back one frame later with single-frame spikes removed.

    Each alpha travels with an opaque ``item`` (the frame it belongs to). The first and last frames
    pass unchanged since they lack a neighbour; ``flush()`` returns what is still held at the end.
    """

    def __init__(self, tol: float = DEFAULT_OFD_TOL) -> None:
        self.tol = tol
        self._prev: np.ndarray | None = None  # alpha already emitted, as emitted originally (raw)
        self._held: tuple[np.ndarray, Any] | None = None

    def push(self, alpha: np.ndarray, item: Any) -> list[tuple[np.ndarray, Any]]:
        """Add frame t+1; returns frame t (filtered) once its successor is known."""
        out: list[tuple[np.ndarray, Any]] = []
        if self._held is not None:
            cur, cur_item = self._held
            if self._prev is None or self._prev.shape != cur.shape or alpha.shape != cur.shape:
                out.append((cur, cur_item))
            else:
                out.append((ofd_step(self._prev, cur, alpha, self.tol), cur_item))
            self._prev = cur
        self._held = (alpha, item)
        return out

    def flush(self) -> list[tuple[np.ndarray, Any]]:
        """The last held frame, unchanged."""
        held, self._held = self._held, None
        return [held] if held is not None else []


def apply_ofd(alphas: Iterable[np.ndarray], tol: float = DEFAULT_OFD_TOL) -> list[np.ndarray]:
    """OFD over a whole sequence (for evaluation and benchmarks); same result as the streaming filter."""
    ofd = OneFrameDelay(tol)
    out = [a for alpha in alphas for a, _ in ofd.push(alpha, None)]
    return out + [a for a, _ in ofd.flush()]


def parse_color(text: str) -> tuple[int, int, int] | None:
    """'green', '#00ff00' or '0,255,0' -> (r, g, b); None when ``text`` is not a colour."""
    from PIL import ImageColor

    parts = text.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
        values = tuple(int(p) for p in parts)
        if all(0 <= v <= 255 for v in values):
            return values  # type: ignore[return-value]
        return None
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        return None
    return rgb[:3]  # type: ignore[return-value]


class Background:
    """A background the size of the frames: a colour, an image (resized), a looping video, or 'blur' of the frame."""

    def __init__(self, spec: str | None, width: int, height: int) -> None:
        import cv2

        self.width, self.height = width, height
        self.spec = spec or DEFAULT_BACKGROUND
        self._still: np.ndarray | None = None
        self._video: Any = None
        self._frames: Any = None
        self.blur = self.spec.lower() == "blur"
        if self.blur:
            return
        color = parse_color(self.spec)
        if color is not None:
            self._still = np.empty((height, width, 3), np.uint8)
            self._still[:] = color
            return
        path = Path(self.spec)
        if not path.exists():
            raise GreenlessError(f"{self.spec}: background is neither a colour, 'blur', nor an existing image or video")
        from greenless.media.video import IMAGE_EXTENSIONS, open_video

        if path.suffix.lower() in IMAGE_EXTENSIONS:
            from PIL import Image, ImageOps

            try:
                with Image.open(path) as im:
                    image = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
            except Exception as exc:
                raise GreenlessError(f"{path}: cannot read background image ({str(exc).splitlines()[0]})") from exc
            self._still = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            return
        self._video = open_video(path)
        self._frames = iter(self._video)

    def for_frame(self, rgb: np.ndarray) -> np.ndarray:
        """Background for the frame ``rgb`` (the next frame of a video background, looping at its end)."""
        import cv2

        if self.blur:
            return cv2.GaussianBlur(rgb, (0, 0), sigmaX=max(rgb.shape[:2]) / 40.0)
        if self._still is not None:
            if self._still.shape[:2] != rgb.shape[:2]:
                self._still = cv2.resize(self._still, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
            return self._still
        try:
            frame = next(self._frames)
        except StopIteration:
            self._frames = iter(self._video)
            frame = next(self._frames)
        image = frame.image
        if image.shape[:2] != rgb.shape[:2]:
            image = cv2.resize(image, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)
        return image

    def close(self) -> None:
        """Release a video background."""
        if self._video is not None:
            self._video.close()


#: Video frames estimate foreground colours on at most this many pixels (the correction is smooth and
#: upsampled): at full size it took 54 ms of a 640x360 frame, more than the network, on 2 cores.
VIDEO_FG_MAX_PIXELS = 60_000


def render(mode: str, rgb: np.ndarray, alpha: np.ndarray, background: Background | None,
           gray_as_rgb: bool = True) -> np.ndarray:
    """The output picture for one frame: composite, alpha (grey), rgba cut-out or estimated foreground."""
    if mode == "composite":
        if background is None:
            raise GreenlessError("composite output needs a background")
        return composite(rgb, alpha, background.for_frame(rgb), fg_max_pixels=VIDEO_FG_MAX_PIXELS)
    if mode == "alpha":
        a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(a8[:, :, None], 3, axis=2) if gray_as_rgb else a8
    if mode == "rgba":
        return cutout(rgb, alpha, fg_max_pixels=VIDEO_FG_MAX_PIXELS)
    if mode == "foreground":
        return estimate_foreground(rgb, alpha, max_pixels=VIDEO_FG_MAX_PIXELS)
    raise GreenlessError(f"unknown --output {mode!r}; choose one of {', '.join(OUTPUT_MODES)}")


def resolve_temporal(temporal: str | None, in_channels: int, ofd: bool = True, weights: Any = None,
                     guided: bool = False) -> str:
    """Pick the temporal method: explicit choice, else the guide on every frame plus OFD for guided weights,
    prev-alpha for other 4-channel weights, OFD otherwise.

    Guided weights measured steadier with their guide on every frame than with their own previous matte as
    the hint (flicker 0.00060 with OFD against 0.00073; ``benchmarks/temporal_compare.py --guided``).
    """
    if temporal is None:
        temporal = "prev-alpha" if in_channels == 4 and not guided else "ofd"
    if temporal not in TEMPORAL_MODES:
        raise GreenlessError(f"unknown --temporal {temporal!r}; choose one of {', '.join(TEMPORAL_MODES)}")
    if temporal == "prev-alpha" and in_channels != 4:
        raise GreenlessError(f"--temporal prev-alpha needs 4-channel (previous-alpha) weights (--model modnet, the video "
                             f"default, or a 4-channel --weights file); {weights or 'the default weights'} take {in_channels} "
                             f"input channels")
    if temporal == "ofd" and not ofd:
        return "none"
    return temporal


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
    """Runs one video through ``matter`` into ``writer`` with three overlapping stages and bounded queues.

    The decode and encode stages are worker threads; inference runs in the calling thread so Ctrl-C
    lands there. On KeyboardInterrupt the frames already matted are encoded and the run stops
    (``stats.interrupted``); the caller then finalises or drops the output.
    """

    def __init__(self, matter: Any, mode: str = "composite", background: Background | None = None,
                 temporal: str = "ofd", batch: int = 4, ofd_tol: float = DEFAULT_OFD_TOL, queue_size: int | None = None,
                 on_frame: Callable[[int], None] | None = None) -> None:
        if mode not in OUTPUT_MODES:
            raise GreenlessError(f"unknown --output {mode!r}; choose one of {', '.join(OUTPUT_MODES)}")
        if batch < 1:
            raise GreenlessError("--batch must be at least 1")
        self.matter = matter
        self.mode = mode
        self.background = background
        self.temporal = temporal
        self.batch = 1 if temporal == "prev-alpha" else batch
        self.ofd_tol = ofd_tol
        self.queue_size = queue_size or max(4, 2 * self.batch)
        self.on_frame = on_frame

    def run(self, frames: Iterable[Any], writer: Any, gray_as_rgb: bool = True) -> VideoStats:
        """Matte every frame of ``frames`` (media.video.Frame objects) and write the rendered result."""
        stats = VideoStats(temporal=self.temporal)
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
                    image = render(self.mode, frame.image, alpha, self.background, gray_as_rgb)
                    pts = frame.pts if frame.pts is not None else frame.index
                    if last_pts[0] is not None and pts <= last_pts[0]:
                        pts = last_pts[0] + 1  # encoders need strictly increasing timestamps
                    last_pts[0] = pts
                    writer.write(image, pts)
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
        """Inference stage (calling thread): batches frames, applies the temporal method, feeds the encoder."""
        ofd = OneFrameDelay(self.ofd_tol) if self.temporal == "ofd" else None
        prev_alpha: np.ndarray | None = None
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
            images = [f.image for f in batch]
            if self.temporal == "prev-alpha":
                alphas = self.matter.matte_batch(images, [prev_alpha])
                prev_alpha = alphas[-1]
            else:
                alphas = self.matter.matte_batch(images)
            for frame, alpha in zip(batch, alphas):
                ready = ofd.push(alpha, frame) if ofd is not None else [(alpha, frame)]
                for a, f in ready:
                    if not _put(q_out, (f, a), stop):
                        return
        if ofd is not None:
            for a, f in ofd.flush():
                _put(q_out, (f, a), stop)
