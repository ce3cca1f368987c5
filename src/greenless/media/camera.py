"""Live sources and sinks through OpenCV: a camera (or a video file standing in for one) as RGB frames, a preview
window, and a virtual camera (pyvirtualcam) that video-call apps can pick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError, first_line
from greenless.media.limits import DEFAULT_MAX_PIXELS

WINDOW = "greenless"
#: Largest camera index: OpenCV reads an index as camera number + 100 x backend (CAP_V4L2 = 200, ...,
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


def plausible_fps(fps: float) -> float:
    """``fps`` when it is a frame rate a camera or a clip really has (1-240), else 30: cameras report 0 or
    nonsense, files can too, and 30 is what they mostly give."""
    return fps if 1.0 <= fps <= 240.0 else 30.0


class Camera:
    """Frames of camera ``index``, or of the video file ``source``, as RGB arrays; the first is read on opening, so
    a camera that gives nothing is one error line before any model loads. A file is decoded by the same reader as
    ``greenless video`` (``media.video.VideoReader``), so a damaged or truncated one is an error where the damage
    starts, not a quiet early end."""

    def __init__(self, source: Path | None = None, index: int = 0, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        import cv2

        from greenless.media.files import missing_reason
        from greenless.media.limits import check_pixels
        from greenless.media.video import VideoReader, quiet_opencv

        self.capture: Any = None
        self.reader: VideoReader | None = None
        if source is not None:
            if not Path(source).is_file():
                raise GreenlessError(f"{source}: {missing_reason(source) if not Path(source).exists() else 'not a file'}")
            self.name = str(source)
            self.reader = VideoReader(source, max_pixels=max_pixels)
            self._decoded = iter(self.reader)
            try:
                self._first = next(self._decoded).image
            except BaseException:
                self.close()
                raise
            self.height, self.width = self._first.shape[:2]
            self.fps = plausible_fps(float(self.reader.fps))
            return
        # OpenCV crashes (SIGSEGV) on a negative camera index and overflows on a huge one
        if not 0 <= index <= MAX_CAMERA_INDEX:
            raise GreenlessError(f"--camera must be a camera index from 0 to {MAX_CAMERA_INDEX}, not {index}")
        quiet_opencv()  # our own one-line errors suffice
        self.name = f"camera {index}"
        self.capture = cv2.VideoCapture(index)
        if not self.capture.isOpened():
            raise GreenlessError(f"cannot open camera {index} (is it connected and free?)")
        try:
            # the pixel budget, from the camera's reported size, before a frame is decoded (as greenless video does)
            check_pixels(int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), max_pixels, self.name,
                         what="video frame", hint="greenless webcam takes no larger frames")
            ok, first = self.capture.read()
            if not ok:
                raise GreenlessError(f"{self.name}: no frames could be read")
        except BaseException:
            self.close()
            raise
        self._first = cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
        self.height, self.width = self._first.shape[:2]
        self.fps = plausible_fps(float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0))

    def frames(self) -> Iterator[np.ndarray]:
        """RGB frames until the source ends (a damaged file: GreenlessError where the damage starts)."""
        import cv2

        yield self._first
        if self.reader is not None:
            for frame in self._decoded:
                yield frame.image
            return
        while True:
            ok, bgr = self.capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.capture is not None:
            self.capture.release()


class PreviewWindow:
    """An OpenCV window showing frames with their rate; ``send`` says False once the user pressed q or Esc."""

    def send(self, rgb: np.ndarray, fps: float = 0.0) -> bool:
        import cv2

        shown = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        cv2.putText(shown, f"{fps:.1f} fps", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
        cv2.imshow(WINDOW, shown)
        return cv2.waitKey(1) & 0xFF not in (27, ord("q"))

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


def open_virtual_camera(width: int, height: int, fps: float) -> Any:
    """A pyvirtualcam camera, or one GreenlessError line saying what is missing."""
    from greenless.errors import install_hint

    try:
        import pyvirtualcam
    except ImportError:
        raise GreenlessError(f"--virtual-camera needs pyvirtualcam: {install_hint('webcam')}") from None
    try:
        return pyvirtualcam.Camera(width=width, height=height, fps=fps)
    except Exception as exc:
        raise GreenlessError(f"no virtual camera device available ({first_line(exc)}); on Linux load "
                             f"v4l2loopback, on Windows or macOS install OBS (its virtual camera)") from exc
