"""``greenless webcam``: live matting from a camera (or a file standing in for one) with background replacement."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from greenless.cli import EngineName, app, engine_option, guide_option, model_option, ref_size_option, refuse_overwrite
from greenless.cli.flags import background_option, out_option

if TYPE_CHECKING:
    import numpy as np

WINDOW = "greenless"
#: Largest ``--camera`` index: OpenCV reads an index as camera number + 100 x backend (CAP_V4L2 = 200, ...,
#: CAP_OBSENSOR = 2600), so every meaningful one is below this.
MAX_CAMERA_INDEX = 9999


def gui_available() -> bool:
    """True when this OpenCV build can open windows (opencv-python-headless cannot)."""
    import cv2

    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        cv2.destroyWindow(WINDOW)
        return True
    except cv2.error:
        return False


def open_virtual_camera(width: int, height: int, fps: float) -> Any:
    """A pyvirtualcam camera, or one GreenlessError line saying what is missing."""
    from greenless.errors import GreenlessError, install_hint

    try:
        import pyvirtualcam
    except ImportError:
        raise GreenlessError(f"--virtual-camera needs pyvirtualcam: {install_hint('webcam')}") from None
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps)
    except Exception as exc:
        raise GreenlessError(f"no virtual camera device available ({str(exc).splitlines()[0][:150]}); on Linux load "
                             f"v4l2loopback, on Windows or macOS install OBS (its virtual camera)") from exc


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
    ref_size: int | None = ref_size_option("Short side the network sees (smaller is faster; default: the weights' own)."),
    engine: EngineName = engine_option("onnx or torch (on a machine with CUDA: frames resized and matted on the GPU)."),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Weights file; default: packaged."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
) -> None:
    """Live background replacement: camera -> matte -> blur/colour/image background -> window, virtual camera, file."""
    from fractions import Fraction

    import cv2

    from greenless.errors import GreenlessError
    from greenless.matter import Matter
    from greenless.media.limits import DEFAULT_MAX_PIXELS, check_pixels
    from greenless.media.video import check_output, open_writer, quiet_opencv
    from greenless.pipeline.streaming import open_stream
    from greenless.pipeline.video import Background

    # OpenCV crashes (SIGSEGV) on a negative camera index and overflows on a huge one; --max-frames 0 or -1 read
    # the whole source and then said "no frames were written"
    if source is None and not 0 <= device <= MAX_CAMERA_INDEX:
        raise GreenlessError(f"--camera must be a camera index from 0 to {MAX_CAMERA_INDEX}, not {device}")
    if max_frames is not None and max_frames < 1:
        raise GreenlessError(f"--max-frames must be at least 1, not {max_frames}")
    if window is None:
        window = output is None and not virtual_camera  # a window by default only when there is no other sink
    if window and not gui_available():
        raise GreenlessError("--window needs OpenCV with GUI support (this install has opencv-python-headless); "
                             "use --no-window with -o FILE or --virtual-camera, or pip install opencv-python")
    if not window and output is None and not virtual_camera:
        raise GreenlessError("nothing to show: give --window, -o FILE or --virtual-camera")
    if source is not None and not source.is_file():
        from greenless.media.files import missing_reason

        raise GreenlessError(f"{source}: {missing_reason(source) if not source.exists() else 'not a file'}")
    if output is not None:
        check_output(output)  # an unknown suffix (out.txt) is refused as greenless matte and video refuse it
        background_file = Path(background) if Path(background).is_file() else None
        refuse_overwrite(output, {"the input": source, "the background": background_file})

    quiet_opencv()  # our own one-line errors suffice
    capture = cv2.VideoCapture(str(source) if source is not None else device)
    if not capture.isOpened():
        raise GreenlessError(f"{source}: cannot read video" if source is not None
                             else f"cannot open camera {device} (is it connected and free?)")
    sinks: list[Any] = []
    writer = None
    try:
        # the pixel budget, from the stream's header, before a frame is decoded (as greenless video does)
        check_pixels(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                     DEFAULT_MAX_PIXELS, str(source) if source is not None else f"camera {device}",
                     what="video frame", hint="greenless webcam takes no larger frames")
        ok, first = capture.read()
        if not ok:
            raise GreenlessError(f"{source or f'camera {device}'}: no frames could be read")
        height, width = first.shape[:2]
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        fps = fps if 1.0 <= fps <= 240.0 else 30.0
        # The stream job's defaults (model, reference size, guide, temporal policy) come from the registry;
        # the stream holds the frame-to-frame state, exactly as for greenless video.
        matter = Matter(weights, engine=engine, ref_size=ref_size, guide=guide, model=model, stream=True)
        # the stream factory picks the path (the torch engine on CUDA: resizing, network, bounds and composite on
        # the GPU), its renderer, and one frame per call for a live source
        setup = open_stream(matter, live=True, temporal=temporal, ofd=not no_ofd)
        stream, draw = setup.stream, setup.render
        sinks.append(setup)  # closed with the sinks at the end (the device path's guide threads)
        bg = Background(background, width, height)
        camera = open_virtual_camera(width, height, fps) if virtual_camera else None
        if camera is not None:
            sinks.append(camera)
        if output is not None:
            writer = open_writer(output, width, height, Fraction(fps).limit_denominator(1001))
        meter = FpsMeter()
        count = 0
        bgr: np.ndarray | None = first

        def emit(rgb: Any, alpha: Any) -> bool:
            """Compose one frame and send it to every sink; False when the user closed the window."""
            out = draw("composite", rgb, alpha, bg)
            fps_now = meter.tick()
            if writer is not None:
                writer.write(out)
            if camera is not None:
                camera.send(out)
            if window:
                shown = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
                cv2.putText(shown, f"{fps_now:.1f} fps", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
                cv2.imshow(WINDOW, shown)
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    return False
            return True

        try:
            while bgr is not None and (max_frames is None or count < max_frames):
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                count += 1
                if not all(emit(f, a) for a, f in stream.push([rgb])):
                    break
                ok, bgr = capture.read()
                if not ok:
                    bgr = None
            for a, f in stream.flush():
                emit(f, a)
        except KeyboardInterrupt:
            pass  # stop the live loop; the recording is finalised below
        print(file=sys.stderr)
        if writer is not None:
            writer.close()
            typer.echo(f"wrote {output} ({writer.frames_written} frames)", err=True)
        writer = None
    finally:
        capture.release()
        if writer is not None:
            writer.abort()
        for sink in sinks:
            sink.close()
        if window:
            cv2.destroyAllWindows()
