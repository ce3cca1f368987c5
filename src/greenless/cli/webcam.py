"""``greenless webcam``: live matting from a camera (or a file standing in for one) with background replacement."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from greenless.cli import EngineName, app, engine_option, guide_option, model_option, ref_size_option, refuse_overwrite
from greenless.cli.flags import background_option, out_option
from greenless.media.camera import gui_available, open_virtual_camera  # noqa: F401 - importable from here too


class FpsMeter:
    """Frames per second over a sliding second, reported on stderr about once a second."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.last_report = 0.0
        self.frames = 0

    def tick(self) -> float:
        now = time.perf_counter()
        self.frames += 1
        self.times = [t for t in self.times if now - t < 1.0] + [now]
        fps = (len(self.times) - 1) / (self.times[-1] - self.times[0]) if len(self.times) > 1 else 0.0
        if now - self.last_report >= 1.0:
            self.last_report = now
            end = "\r" if sys.stderr.isatty() else "\n"
            print(f"greenless webcam: {fps:5.1f} fps, {self.frames} frames", end=end, file=sys.stderr, flush=True)
        return fps


@app.command()
def webcam(
    device: int = typer.Option(0, "--camera", help="Camera index (0 is the default camera)."),
    source: Path | None = typer.Option(None, "--source", help="Read a video file instead of a camera."),
    background: str = background_option("blur", "blur (of the frame), a colour, an image or a video (loops)."),
    virtual_camera: bool = typer.Option(False, "--virtual-camera", help="Publish to a virtual camera (pyvirtualcam)."),
    window: bool | None = typer.Option(None, "--window/--no-window",
                                       help="Show a preview window (default: when OpenCV has GUI support)."),
    output: Path | None = out_option("Also record the result (.mp4/.webm/.mov/.mkv, or a folder of PNGs)."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after this many frames."),
    no_ofd: bool = typer.Option(False, "--no-ofd", help="Turn off one-frame-delay flicker removal."),
    temporal: str | None = typer.Option(None, "--temporal",
                                        help="prev-alpha | ofd | none, as for greenless video (default: the weights' own)."),
    ref_size: int | None = ref_size_option("Short side the network sees, rounded to its stride (smaller is faster; default: the weights' own)."),
    engine: EngineName = engine_option("onnx or torch (on a machine with CUDA: frames resized and matted on the GPU)."),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Weights file; default: packaged."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
) -> None:
    """Live background replacement: camera -> matte -> blur/colour/image background -> window, virtual camera, file."""
    from greenless.matter import Matter
    from greenless.media.camera import Camera
    from greenless.pipeline.live import run_live
    from greenless.pipeline.streaming import open_stream
    from greenless.pipeline.video import Background

    window = check_sinks(window, output, virtual_camera, source, background, max_frames)
    camera = Camera(source, device)
    closers: list[Any] = []
    recording = None
    try:
        # The stream job's defaults (model, reference size, guide, temporal policy) come from the registry; the
        # stream factory picks the path (the torch engine on CUDA: resizing, network, bounds and composite on the
        # GPU), its renderer, and one frame per call for a live source.
        matter = Matter(weights, engine=engine, ref_size=ref_size, guide=guide, model=model, stream=True)
        closers.append(open_stream(matter, live=True, temporal=temporal, ofd=not no_ofd))
        bg = Background(background, camera.width, camera.height)
        sinks, recording = _open_sinks(camera, output, virtual_camera, window, closers)
        run_live(closers[0], camera.frames(), bg, sinks, max_frames, FpsMeter().tick)
        print(file=sys.stderr)
        if recording is not None:
            recording.close()
            typer.echo(f"wrote {output} ({recording.frames_written} frames)", err=True)
        recording = None
    finally:
        camera.close()
        if recording is not None:
            recording.abort()
        for closer in closers:
            closer.close()


def check_sinks(window: bool | None, output: Path | None, virtual_camera: bool, source: Path | None,
                background: str, max_frames: int | None) -> bool:
    """Whether to show a window (by default only when there is no other sink); one error line when nothing would
    show the result, the window cannot open, or ``-o`` cannot be written or is the source or the background."""
    from greenless.errors import GreenlessError
    from greenless.media.video import check_output

    if max_frames is not None and max_frames < 1:  # 0 or -1 read the whole source, then said no frames were written
        raise GreenlessError(f"--max-frames must be at least 1, not {max_frames}")
    if window is None:
        window = output is None and not virtual_camera
    if window and not gui_available():
        raise GreenlessError("--window needs OpenCV with GUI support (this install has opencv-python-headless); "
                             "use --no-window with -o FILE or --virtual-camera, or pip install opencv-python")
    if not window and output is None and not virtual_camera:
        raise GreenlessError("nothing to show: give --window, -o FILE or --virtual-camera")
    if output is not None:
        check_output(output)  # an unknown suffix (out.txt) is refused as greenless matte and video refuse it
        background_file = Path(background) if Path(background).is_file() else None
        refuse_overwrite(output, {"the input": source, "the background": background_file})
    return window


def _open_sinks(camera: Any, output: Path | None, virtual_camera: bool, window: bool,
                closers: list[Any]) -> tuple[list[Any], Any]:
    """(sinks for ``run_live``, the recording's writer or None); what must be closed at the end joins ``closers``."""
    from fractions import Fraction

    from greenless.media.camera import PreviewWindow
    from greenless.media.video import open_writer

    sinks: list[Any] = []
    if virtual_camera:
        cam = open_virtual_camera(camera.width, camera.height, camera.fps)
        closers.append(cam)
        sinks.append(lambda rgb, fps: cam.send(rgb))
    if window:
        preview = PreviewWindow()
        closers.append(preview)
        sinks.append(preview.send)
    recording = None
    if output is not None:
        recording = open_writer(output, camera.width, camera.height, Fraction(camera.fps).limit_denominator(1001))
        sinks.insert(0, lambda rgb, fps: recording.write(rgb))
    return sinks, recording
