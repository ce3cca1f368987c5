"""Video readers and writers over PyAV: files FFmpeg decodes or folders of frames in, H.264/VP9/ProRes/PNG out.

Readers yield upright RGB (or RGBA) uint8 frames with their timestamps; writers pick the codec from the
output's extension, copy the input's audio (transcoding only when the container cannot hold it) and are
written to a temporary path that is renamed into place only once the container is properly finalised.
"""

from __future__ import annotations

import abc
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError, first_line, install_hint
from greenless.media.images import IMAGE_SUFFIXES
from greenless.media.limits import DEFAULT_MAX_PIXELS, check_pixels

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".gif")
IMAGE_EXTENSIONS = IMAGE_SUFFIXES  # the one list of still-image suffixes (media.images)
OUTPUT_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".mov", ".webm")
DEFAULT_SEQUENCE_FPS = Fraction(25)
# Demuxers that turn any text file into "video" (ANSI art); a text file is not a video input.
_SEQUENCE_NAME = re.compile(r"\d{6}\.png")
_NOT_VIDEO_FORMATS = {"tty", "bin", "xbin", "adf", "idf"}

# Audio codecs each output container can hold as-is; anything else is transcoded to the fallback codec.
_AUDIO_FIT = {
    ".webm": ({"opus", "vorbis"}, "libopus"),
    ".mp4": ({"aac", "mp3", "opus", "flac", "ac3", "eac3", "alac"}, "aac"),
    ".m4v": ({"aac", "mp3", "ac3", "eac3", "alac"}, "aac"),
    ".mov": ({"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be", "pcm_f32le"}, "aac"),
    ".mkv": (None, "aac"),  # Matroska holds any audio codec
}


def _av() -> Any:
    """Import PyAV lazily with a clear message when the ``video`` extra is missing."""
    try:
        import av
    except ImportError:
        raise GreenlessError(f"video support needs PyAV: {install_hint('video')}") from None
    return av


def quiet_opencv() -> None:
    """Silence OpenCV's own logs and the FFmpeg inside it ("moov atom not found", "[ WARN:0] ..."), before the
    first capture is opened: what goes wrong becomes our one error line. PyAV's FFmpeg logs are off by default."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when the FFmpeg backend starts
    if hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _reason(exc: BaseException) -> str:
    """First line of an exception's message, short enough for a one-line error."""
    text = first_line(exc)
    return text[:200]


@dataclass
class Frame:
    """One decoded frame: upright uint8 pixels (HxWx3 RGB or HxWx4 RGBA) and where it sits in time."""

    image: np.ndarray
    index: int
    pts: int | None
    time_base: Fraction | None

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, when the source has timestamps."""
        if self.pts is None or self.time_base is None:
            return None
        return float(self.pts * self.time_base)


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a frame upright: ``rotation`` is the counter-clockwise display rotation in degrees (PyAV's sign)."""
    quarter = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(image, k=quarter)) if quarter else image


class VideoReader:
    """Decodes the first video stream of a file, frame by frame, with constant memory.

    Rotation metadata (the display matrix phones write) is applied, so frames come out upright and
    ``width``/``height`` are the upright size; outputs therefore carry no rotation tag. ``rgba=True``
    keeps an alpha channel (VP9 alpha is decoded with libvpx, which FFmpeg's own VP9 decoder drops).
    A frame size over ``max_pixels`` (the pixel budget, ``media.limits``) is refused from the stream's
    header, before any frame is decoded (a GIF's logical screen of 16000x16000 is 1 GB a frame).
    """

    def __init__(self, path: str | Path, rgba: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        av = _av()
        self.path = Path(path)
        self.rgba = rgba
        self.max_pixels = max_pixels
        if not self.path.exists():
            from greenless.media.files import missing_reason

            raise GreenlessError(f"{self.path}: {missing_reason(self.path)}")
        try:
            self.container = av.open(str(self.path), "r")
        except Exception as exc:
            raise GreenlessError(f"{self.path}: cannot read video ({_reason(exc)})") from exc
        if self.container.format.name in _NOT_VIDEO_FORMATS or not self.container.streams.video:
            self.container.close()
            raise GreenlessError(f"{self.path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        ctx = self.stream.codec_context
        if not ctx.width or not ctx.height:
            self.container.close()
            raise GreenlessError(f"{self.path}: video stream has no frame size (corrupt file?)")
        try:
            check_pixels(ctx.width, ctx.height, max_pixels, str(self.path), what="video frame")
        except GreenlessError:
            self.container.close()
            raise
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        self.fps: Fraction = Fraction(rate) if rate else Fraction(25)
        self.rotation = self._read_rotation()
        w, h = ctx.width, ctx.height
        self.width, self.height = (h, w) if self.rotation % 180 else (w, h)
        self.frame_count, self.frame_count_exact = self._count()
        self.audio_streams = list(self.container.streams.audio)
        self._probe_end()
        meta = {k.lower(): v for k, v in (self.stream.metadata or {}).items()}
        self._libvpx_alpha = rgba and ctx.name == "vp9" and meta.get("alpha_mode") == "1"

    def _read_rotation(self) -> int:
        """Counter-clockwise display rotation of the stream in degrees (0 when untagged)."""
        try:
            for frame in self.container.decode(self.stream):
                rotation = int(getattr(frame, "rotation", 0) or 0)
                break
            else:
                rotation = 0
        except Exception:
            rotation = 0
        return rotation

    def _probe_end(self) -> None:
        """Refuse a file cut short before any frame is matted, not after all of them.

        Seeks to the last second or so and demuxes it (no decoding; a tenth of a second on a long file):
        when the packets stop clearly before the duration the header promises (a copy or download cut
        off), the video is truncated. A file that cannot be probed this way is left to the decoder and
        the frame count check at the end.
        """
        duration = self.duration
        if not duration or duration <= 0:
            return
        tb = self.time_base
        start = float(self.stream.start_time * tb) if self.stream.start_time is not None else 0.0
        slack = max(3.0 / float(self.fps), (0.02 if self.frame_count_exact else 0.1) * duration)
        end = None
        try:
            self.container.seek(int((start + max(0.0, duration - max(1.0, 2 * slack))) / tb), stream=self.stream,
                                backward=True)
            for packet in self.container.demux(self.stream):
                if packet.size and packet.pts is not None:
                    ptb = packet.time_base or tb
                    end = max(end or 0.0, float((packet.pts + (packet.duration or 0)) * ptb))
        except Exception:
            return  # cannot tell from here; the decoder reports damage where it meets it
        if end is None or end < start + duration - slack:
            where = f"its data stops at {end - start:.1f} s" if end is not None else "its data stops early"
            self.container.close()
            raise GreenlessError(f"{self.path}: video is truncated: {where}, but its header promises "
                                 f"{duration:.1f} s; nothing was matted")

    def _reopen(self) -> None:
        av = _av()
        self.container.close()
        self.container = av.open(str(self.path), "r")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.audio_streams = list(self.container.streams.audio)

    def _count(self) -> tuple[int, bool]:
        """Frame count from the container, else estimated from duration x fps (Matroska stores none)."""
        if self.stream.frames:
            return int(self.stream.frames), True
        duration = self.duration
        if duration:
            return max(1, int(round(duration * float(self.fps)))), False
        return 0, False

    @property
    def duration(self) -> float | None:
        """Duration of the video stream in seconds, when known."""
        if self.stream.duration is not None:
            return float(self.stream.duration * self.time_base)
        tag = {k.lower(): v for k, v in (self.stream.metadata or {}).items()}.get("duration")
        if tag:  # Matroska keeps per-stream durations as an HH:MM:SS.nnn tag
            try:
                h, m, sec = tag.split(":")
                return int(h) * 3600 + int(m) * 60 + float(sec)
            except ValueError:
                pass
        if self.container.duration is not None:
            return self.container.duration / 1_000_000
        return None

    def __iter__(self) -> Iterator[Frame]:
        """Decoded frames in presentation order; a decoding failure is one GreenlessError naming the file."""
        self._reopen()
        fmt = "rgba" if self.rgba else "rgb24"
        index = 0
        last_time: float | None = None
        try:
            if self._libvpx_alpha:
                av = _av()
                decoder = av.CodecContext.create("libvpx-vp9", "r")
                # demux ends with an empty packet, which flushes the decoder
                frames = (f for packet in self.container.demux(self.stream) for f in decoder.decode(packet))
            else:
                frames = self.container.decode(self.stream)
            for vf in frames:
                # a stream may change size mid-way (a new H.264 sequence header): the budget holds per frame
                check_pixels(vf.width, vf.height, self.max_pixels, str(self.path), what="video frame")
                image = _rotate(vf.to_ndarray(format=fmt), self.rotation)
                frame = Frame(image, index, vf.pts, vf.time_base or self.time_base)
                last_time = frame.time if frame.time is not None else last_time
                yield frame
                index += 1
        except GreenlessError:
            raise
        except Exception as exc:
            raise GreenlessError(f"{self.path}: video is corrupt or truncated after {index} frames ({_reason(exc)})") from exc
        if index == 0:
            raise GreenlessError(f"{self.path}: no decodable video frames (corrupt or truncated file)")
        self._check_complete(index, last_time)

    def _check_complete(self, decoded: int, last_time: float | None = None) -> None:
        """A file whose index promises clearly more frames than decoded, or whose frames stop clearly before
        the duration its header promises, was cut short.

        Only a container's own frame count is compared with the frames decoded. A count estimated from
        duration x frame rate (Matroska and WebM store none) is not: a variable-frame-rate file (10 frames
        over 1.5 s, declared at 10 fps) honestly holds fewer frames than that, so there the last frame's
        time is compared with the duration instead, with ``_probe_end``'s slack.
        """
        expected = self.frame_count
        if not expected:
            return
        if not self.frame_count_exact and last_time is not None and self.duration:
            start = float(self.stream.start_time * self.time_base) if self.stream.start_time is not None else 0.0
            reached = last_time - start + 1.0 / float(self.fps)
            slack = max(3.0 / float(self.fps), 0.1 * self.duration)
            if reached < self.duration - slack:
                raise GreenlessError(f"{self.path}: video is truncated (its frames stop at {reached:.1f} s, but "
                                     f"its header promises {self.duration:.1f} s)")
            return
        slack = max(2, int(0.02 * expected)) if self.frame_count_exact else max(3, int(0.1 * expected))
        if decoded < expected - slack:
            raise GreenlessError(f"{self.path}: video is truncated (decoded {decoded} of "
                                 f"{'' if self.frame_count_exact else 'about '}{expected} frames)")

    def close(self) -> None:
        """Release the file."""
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _natural_key(path: Path) -> list[Any]:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", path.name)]


class ImageSequenceReader:
    """A folder of image files read as a video, in natural name order, at ``fps`` (default 25).

    Each file is read as a photo is (``media.images.open_image``): within the pixel budget, refused from
    its header before it is decoded; truncated or corrupt frames are errors.
    """

    def __init__(self, folder: str | Path, fps: Fraction | float | None = None, rgba: bool = False,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.path = Path(folder)
        self.rgba = rgba
        self.max_pixels = max_pixels
        self.files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
        if not self.files:
            raise GreenlessError(f"{self.path}: folder holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        self.fps = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_SEQUENCE_FPS
        self.time_base = 1 / self.fps
        first = self._load(self.files[0])
        self.height, self.width = first.shape[:2]
        self.frame_count, self.frame_count_exact = len(self.files), True
        self.rotation = 0
        self.audio_streams: list[Any] = []
        self.duration = len(self.files) / float(self.fps)

    def _load(self, path: Path) -> np.ndarray:
        from greenless.media.images import open_image, pil_to_rgb, pil_to_rgba

        image = open_image(path, max_pixels=self.max_pixels)
        return pil_to_rgba(image) if self.rgba else pil_to_rgb(image)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            image = self._load(path)
            if image.shape[:2] != (self.height, self.width):
                raise GreenlessError(f"{path}: frame size {image.shape[1]}x{image.shape[0]} differs from the first "
                                     f"frame's {self.width}x{self.height}")
            yield Frame(image, index, index, self.time_base)

    def close(self) -> None:
        """Nothing to release; present for symmetry with VideoReader."""

    def __enter__(self) -> ImageSequenceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | Path, rgba: bool = False, fps: float | None = None,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> VideoReader | ImageSequenceReader:
    """A reader for a video file or a folder of frames; frames over ``max_pixels`` are refused before decoding."""
    path = Path(path)
    if path.is_dir():
        return ImageSequenceReader(path, fps=fps, rgba=rgba, max_pixels=max_pixels)
    return VideoReader(path, rgba=rgba, max_pixels=max_pixels)


def is_video_output(path: str | Path) -> bool:
    """True when OUTPUT names a video file; otherwise it is a folder for a PNG sequence."""
    return Path(path).suffix.lower() in OUTPUT_EXTENSIONS


@dataclass
class EncoderChoice:
    """Codec, pixel format and options for one output extension and channel layout."""

    codec: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)


def choose_encoder(path: str | Path, alpha: bool) -> EncoderChoice:
    """Codec for OUTPUT's extension; ``alpha`` asks for a transparent video. Unsupported pairs raise one line."""
    ext = Path(path).suffix.lower()
    if ext not in OUTPUT_EXTENSIONS:
        raise GreenlessError(f"{path}: unsupported video extension {ext!r}; use one of {', '.join(OUTPUT_EXTENSIONS)} "
                             f"or a name without extension for a PNG sequence")
    if alpha:
        if ext == ".mov":
            return EncoderChoice("prores_ks", "yuva444p10le", {"profile": "4444", "qscale": "9"})
        if ext == ".webm":
            return EncoderChoice("libvpx-vp9", "yuva420p", {"crf": "30", "b": "0", "row-mt": "1", "cpu-used": "5",
                                                            "deadline": "good"})
        raise GreenlessError(f"{path}: {ext} cannot hold transparency; use .mov (ProRes 4444), .webm (VP9 alpha) "
                             f"or a folder (PNG sequence) for --write rgba")
    if ext == ".webm":
        return EncoderChoice("libvpx-vp9", "yuv420p", {"crf": "32", "b": "0", "row-mt": "1", "cpu-used": "5",
                                                       "deadline": "good"})
    return EncoderChoice("libx264", "yuv420p", {"crf": "18", "preset": "veryfast"})


def _default_mode(directory: bool) -> int:
    """Permissions a normally created file/folder gets (temp files start private; outputs should not)."""
    from greenless.media.files import default_mode

    return default_mode(directory)


def _check_writable_folder(folder: Path, target: Path) -> None:
    """A video's folder must exist (it is not made for it) and be writable (``media.files``' rule)."""
    from greenless.media.files import check_writable_folder

    if not folder.is_dir():
        raise GreenlessError(f"{target}: cannot write output (folder {folder} does not exist)")
    check_writable_folder(folder, target)


class _AtomicOutput(abc.ABC):
    """An output written under a temporary name (``tmp``) beside ``path`` and moved into place only when whole,
    so an interrupted or failed run leaves what was at ``path`` untouched."""

    path: Path
    tmp: Path
    _closed: bool

    def _publish(self, directory: bool) -> Path:
        """Give the finished output the usual mode under the umask and move it to ``path``; returns ``path``."""
        os.chmod(self.tmp, _default_mode(directory=directory))
        os.replace(self.tmp, self.path)
        self._finalized = True
        return self.path

    def abort(self) -> None:
        """Drop the partial output (no-op once finalised)."""
        if getattr(self, "_finalized", False):
            return
        self._closed = True
        self._discard()

    @abc.abstractmethod
    def _discard(self) -> None:
        """Remove whatever the partial output left."""


class VideoWriter(_AtomicOutput):
    """Encodes frames into a video file chosen by extension, with the source's audio, atomically.

    Frames go to a hidden temporary file beside OUTPUT; ``close()`` flushes the encoder, writes the rest
    of the audio, finalises the container and renames it into place; ``abort()`` deletes it.
    Odd frame sizes are padded by one edge pixel (4:2:0 needs even sizes).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, alpha: bool = False,
                 time_base: Fraction | None = None, audio_source: str | Path | None = None) -> None:
        av = _av()
        self.path = Path(path)
        self.choice = choose_encoder(self.path, alpha)
        self.alpha = alpha
        self.notes: list[str] = []
        _check_writable_folder(self.path.parent if str(self.path.parent) else Path("."), self.path)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix + ".part",
                                   dir=self.path.parent if str(self.path.parent) else ".")
        os.close(fd)
        self.tmp = Path(tmp)
        self.frames_written = 0
        self._closed = False
        self._lock = threading.Lock()
        try:
            self.container = av.open(str(self.tmp), "w", format=self._format_name())
            self.width, self.height = width + (width % 2), height + (height % 2)
            fps = Fraction(fps).limit_denominator(100000)
            self.stream = self.container.add_stream(self.choice.codec, rate=fps)
            self.stream.width, self.stream.height = self.width, self.height
            self.stream.pix_fmt = self.choice.pix_fmt
            self.stream.options = dict(self.choice.options)
            self.time_base = time_base or (1 / fps)
            self.stream.codec_context.time_base = self.time_base
            self.stream.time_base = self.time_base
            self._audio = _AudioCopier(self, Path(audio_source)) if audio_source else None
        except GreenlessError:
            self.abort()
            raise
        except Exception as exc:
            self.abort()
            raise GreenlessError(f"{self.path}: cannot open video encoder {self.choice.codec} ({_reason(exc)})") from exc

    def _format_name(self) -> str | None:
        return {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".m4v": "mp4"}.get(
            self.path.suffix.lower())

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode one HxWx3 RGB (or HxWx4 RGBA for alpha outputs) uint8 frame at ``pts`` (in ``time_base``)."""
        av = _av()
        if image.shape[0] != self.height or image.shape[1] != self.width:
            image = np.pad(image, ((0, self.height - image.shape[0]), (0, self.width - image.shape[1]), (0, 0)),
                           mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgba" if image.shape[2] == 4 else "rgb24")
        frame.pts = self.frames_written if pts is None else pts
        frame.time_base = self.time_base
        with self._lock:
            if self._audio is not None:
                self._audio.mux_until(float(frame.pts * self.time_base))
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.frames_written += 1

    def close(self) -> Path:
        """Flush, finalise and move the file into place; returns OUTPUT. Raises GreenlessError if nothing was written."""
        with self._lock:
            if self._closed:
                return self.path
            try:
                for packet in self.stream.encode():
                    self.container.mux(packet)
                if self._audio is not None:
                    self._audio.mux_until(None)
                    self._audio.close()
                self.container.close()
            except Exception as exc:
                self._closed = True
                self._remove_tmp()
                raise GreenlessError(f"{self.path}: cannot finish writing the video ({_reason(exc)})") from exc
            self._closed = True
            if self.frames_written == 0:
                self._remove_tmp()
                raise GreenlessError(f"{self.path}: no frames were written")
            return self._publish(directory=False)

    def _discard(self) -> None:
        """Close what is open and remove the partial file: nothing is left at OUTPUT or beside it."""
        try:
            audio = getattr(self, "_audio", None)
            if audio is not None:
                audio.close()
            if hasattr(self, "container"):
                self.container.close()
        except Exception:
            pass
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if hasattr(self, "tmp"):
            self.tmp.unlink(missing_ok=True)


class _AudioCopier:
    """Copies every audio stream of the source into the writer's container, interleaved by time.

    Packets are remuxed unchanged when the container accepts the codec; otherwise they are decoded and
    re-encoded (Opus for WebM, AAC elsewhere) and a note says so. Demuxing follows the video's clock so
    memory stays constant.
    """

    def __init__(self, writer: VideoWriter, source: Path) -> None:
        av = _av()
        self.writer = writer
        self.input = av.open(str(source), "r")
        self.streams = list(self.input.streams.audio)
        self.map: dict[int, tuple[Any, bool]] = {}
        fits, fallback = _AUDIO_FIT.get(writer.path.suffix.lower(), (None, "aac"))
        for stream in self.streams:
            name = stream.codec_context.name
            if fits is None or name in fits:
                out = writer.container.add_stream_from_template(stream)
                self.map[stream.index] = (out, False)
            else:
                rate = 48000 if fallback == "libopus" else (stream.codec_context.sample_rate or 48000)
                out = writer.container.add_stream(fallback, rate=rate)
                layout = stream.codec_context.layout.name if stream.codec_context.layout else "stereo"
                out.codec_context.layout = layout if stream.codec_context.channels <= 2 else "stereo"
                self.map[stream.index] = (out, True)
                writer.notes.append(f"audio stream {stream.index} ({name}) does not fit {writer.path.suffix}; "
                                    f"transcoded to {fallback.removeprefix('lib')}")
        self._packets = self.input.demux(self.streams) if self.streams else iter(())
        self._pending: Any = None
        self._done = not self.streams

    def mux_until(self, seconds: float | None) -> None:
        """Mux audio packets that start before ``seconds`` (all remaining ones when None)."""
        while not self._done:
            packet = self._pending
            if packet is None:
                try:
                    packet = next(self._packets)
                except StopIteration:
                    self._done = True
                    break
            if packet.dts is None and packet.size == 0:  # demuxer flush packet
                self._pending = None
                continue
            start = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
            if seconds is not None and start > seconds:
                self._pending = packet
                return
            self._pending = None
            self._mux(packet)
        if seconds is None:
            self._flush_encoders()

    def _mux(self, packet: Any) -> None:
        out, transcode = self.map[packet.stream.index]
        if not transcode:
            packet.stream = out
            self.writer.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None
            for encoded in out.encode(frame):
                self.writer.container.mux(encoded)

    def _flush_encoders(self) -> None:
        """Drain the audio encoders of transcoded streams (once, at the end)."""
        for out, transcode in self.map.values():
            if transcode:
                for encoded in out.encode(None):
                    self.writer.container.mux(encoded)
        self._done = True

    def close(self) -> None:
        self.input.close()


class SequenceWriter(_AtomicOutput):
    """Writes numbered PNGs (000000.png, ...) into a folder, built beside OUTPUT and renamed into place.

    RGBA frames give RGBA PNGs, HxW or HxWx1 frames grey PNGs, RGB frames RGB PNGs. Audio is not kept.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise GreenlessError(f"{self.path}: exists and is not a folder (a name without a video extension "
                                 f"receives a PNG sequence)")
        if self.path.is_dir():
            foreign = [p.name for p in self.path.iterdir() if not _SEQUENCE_NAME.fullmatch(p.name)]
            if foreign:
                raise GreenlessError(f"{self.path}: folder exists and holds other files ({foreign[0]}, ...); "
                                     f"give a new or empty folder for the PNG sequence")
        parent = self.path.parent if str(self.path.parent) else Path(".")
        _check_writable_folder(parent, self.path)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part", dir=parent))
        self.frames_written = 0
        self.notes: list[str] = []
        self._closed = False

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Save the next frame as a PNG (the package's one encoder, ``media.images.encode_png``)."""
        from greenless.media.images import encode_png

        target = self.tmp / f"{self.frames_written:06d}.png"
        data = encode_png(image if image.ndim == 3 and image.shape[2] in (3, 4) else image.reshape(image.shape[:2]))
        try:
            target.write_bytes(data)
        except OSError as exc:
            raise GreenlessError(f"{target}: cannot write PNG ({exc.strerror or exc})") from None
        self.frames_written += 1

    def close(self) -> Path:
        """Move the finished folder to OUTPUT (replacing an earlier sequence there); returns OUTPUT."""
        if self._closed:
            return self.path
        self._closed = True
        if self.frames_written == 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise GreenlessError(f"{self.path}: no frames were written")
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            os.replace(self.path, old)
        done = self._publish(directory=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return done

    def _discard(self) -> None:
        """Remove the partial folder."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_output(path: str | Path, alpha: bool = False) -> None:
    """One ``GreenlessError``, before any work, for an OUTPUT no writer takes (``greenless matte`` refuses an
    unknown output suffix the same way): a video extension must have an encoder for ``alpha``; any other
    suffix (``out.txt``, ``out.gif``) is refused unless OUTPUT is an existing folder, since a name without
    extension is what receives a PNG sequence; and OUTPUT's folder must exist and take files."""
    path = Path(path)
    if is_video_output(path):
        choose_encoder(path, alpha)
    elif path.suffix and not path.is_dir():
        raise GreenlessError(f"{path}: cannot write {path.suffix.lower()} video; use one of "
                             f"{', '.join(OUTPUT_EXTENSIONS)} or a name without extension for a PNG sequence")
    _check_writable_folder(path.parent if str(path.parent) else Path("."), path)  # before any frame is matted


def open_writer(path: str | Path, width: int, height: int, fps: Fraction, alpha: bool = False,
                time_base: Fraction | None = None, audio_source: str | Path | None = None) -> VideoWriter | SequenceWriter:
    """Video writer for OUTPUT's extension, or a PNG-sequence writer for a name without one (``check_output``)."""
    check_output(path, alpha)
    if is_video_output(path):
        return VideoWriter(path, width, height, fps, alpha=alpha, time_base=time_base, audio_source=audio_source)
    return SequenceWriter(path)
