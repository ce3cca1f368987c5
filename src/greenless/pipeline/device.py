"""Batched matting on a torch device: frames go up once, resizing, normalising, the network, the guide's bounds
and the return to full size run there; only the guide (a CPU model) stays on the CPU, in parallel threads.

``DeviceMatter`` wraps a ``Matter`` whose engine is the torch engine and answers ``matte_batch`` exactly as
the matter does (so ``Matter.stream()``, ``VideoPipeline`` and ``greenless webcam`` use it unchanged): it runs
the matter's recipe (``greenless.pipeline.recipe``: its network size, hint channel, guide bounds and
preprocessing rule), with these steps on the device:

- frames are stacked into one pinned (page-locked) host buffer and copied to the device asynchronously;
- the resizes are matrix products with weights taken from OpenCV itself (``cv2.resize`` of an identity
  matrix gives each output pixel's weights over the input pixels; separable, so one matrix per axis), so
  the device sees the same input, pixel for pixel, as the per-frame CPU path, and the matte comes back to
  full size with the same bilinear weights; under the official-demo rule the weights come from
  ``area_resize`` the same way;
- the guides of a batch are computed by a pool of threads, each with its own segmentation session
  (onnxruntime releases the GIL), while the device works;
- the network's own time is measured beside the whole call (CUDA events on CUDA), so a video can report
  its end-to-end rate beside the bare network's.

The same code runs on CPU torch (``device='cpu'``), which is how the tests check it against ``Matter``.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import cv2
import numpy as np

from greenless.errors import GreenlessError
from greenless.media.images import as_rgb_array
from greenless.pipeline.preprocess import area_resize, to_network_input
from greenless.pipeline.recipe import group_by_size

#: Resize weight matrices kept per (input length, output length, rule, direction); a video needs four.
_MAX_WEIGHTS = 32


def axis_weights(n: int, m: int, rule: str, interpolation: int) -> np.ndarray:
    """The m x n matrix taking a length-n signal to length m the way the CPU path resizes along one axis:
    ``cv2.resize`` with ``interpolation`` (rule ``greenless``) or ``area_resize`` (``modnet-demo``), read off
    by resizing an identity matrix (column j of the result is where input pixel j goes)."""
    eye = np.eye(n, dtype=np.float32)
    if rule == "modnet-demo":
        return area_resize(eye, m, n).astype(np.float32)
    return cv2.resize(eye, (n, m), interpolation=interpolation)


class DeviceMatter:
    """``Matter.matte_batch`` on the torch engine's device (see the module docstring).

    ``matter`` must use the torch engine. ``workers`` threads compute guides (default: up to 8, one per core).
    """

    def __init__(self, matter: Any, workers: int | None = None) -> None:
        import torch

        if getattr(matter.engine, "name", None) != "torch" or not hasattr(matter.engine, "runner"):
            raise GreenlessError("the batched device path needs the torch engine (--engine torch)")
        self.torch = torch
        self.matter = matter
        self.engine = matter.engine
        self.runner = matter.engine.runner
        self.device = self.runner.device
        self.weights = matter.weights
        self.recipe = matter.recipe
        self.guide = matter.guide
        self.ref_size = matter.ref_size
        self.preprocess = matter.preprocess
        self._pool = ThreadPoolExecutor(max_workers=workers or max(1, min(8, os.cpu_count() or 1)),
                                        thread_name_prefix="greenless-guide")
        self._local = threading.local()
        self._weights: dict[tuple, Any] = {}
        self._pinned: dict[tuple, Any] = {}
        self._events: list[tuple[Any, Any]] = []
        self._network_s = 0.0
        self.frames = 0

    # -- what the stream and the pipelines read -------------------------------------------------------------
    def matte(self, image: Any, prev_alpha: np.ndarray | None = None) -> np.ndarray:
        """Alpha matte of one image, as ``Matter.matte``."""
        return self.matte_batch([image], None if prev_alpha is None else [prev_alpha])[0]

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """A ``MatteStream`` over this device matter (temporal policy as ``Matter.stream``)."""
        from greenless.pipeline.stream import MatteStream

        return MatteStream(self, *args, **kwargs)

    def network_seconds(self) -> float:
        """Time spent inside the network so far (device time on CUDA, measured by events)."""
        if self._events:
            self._events[-1][1].synchronize()
            self._network_s += sum(start.elapsed_time(end) for start, end in self._events) / 1000.0
            self._events.clear()
        return self._network_s

    def network_fps(self) -> float:
        """Frames per second the network alone managed on the frames matted so far."""
        seconds = self.network_seconds()
        return self.frames / seconds if seconds > 0 else 0.0

    def close(self) -> None:
        """Stop the guide threads."""
        self._pool.shutdown(wait=True)

    # -- the batched path --------------------------------------------------------------------------------------
    def matte_batch(self, images: list[Any], prev_alphas: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Mattes for several images (float32 HxW in [0, 1] each), as ``Matter.matte_batch`` gives them."""
        rgbs = [as_rgb_array(im) for im in images]
        results: list[np.ndarray | None] = [None] * len(rgbs)
        for (h, w), idxs in group_by_size(rgbs).items():
            with self.torch.inference_mode():
                alphas = self._matte_group([rgbs[i] for i in idxs],
                                           [None if prev_alphas is None else prev_alphas[i] for i in idxs], h, w)
            for i, alpha in zip(idxs, alphas, strict=True):
                results[i] = alpha
        self.frames += len(rgbs)
        return results  # type: ignore[return-value]

    def _matte_group(self, rgbs: list[np.ndarray], prevs: list[np.ndarray | None], h: int, w: int) -> list[np.ndarray]:
        """Same-size frames in one network call."""
        torch = self.torch
        size = self.recipe.network_size(h, w)
        guided = self.recipe.channels == 4
        hints = [self._pool.submit(self._hint, rgb, prev, size) for rgb, prev in zip(rgbs, prevs, strict=True)] if guided else []
        x = self._network_input(rgbs, size)  # queued on the device while the guides run
        bounds: list[tuple[np.ndarray, np.ndarray] | None] = []
        if guided:
            done = [f.result() for f in hints]
            channel = np.concatenate([hint for hint, _ in done])
            bounds = [b for _, b in done]
            x = torch.cat([x, self._upload(channel)], dim=1)
        out = self._run_network(x).float().clamp_(0.0, 1.0)
        if any(b is not None for b in bounds):
            keep = np.stack([b[0] if b is not None else np.ones(size, np.float32) for b in bounds])[:, None]
            solid = np.stack([b[1] if b is not None else np.zeros(size, np.float32) for b in bounds])[:, None]
            out = torch.maximum(out * self._upload(keep), self._upload(solid))
        alpha = self._resize(out, (h, w), back=True).clamp_(0.0, 1.0)[:, 0]
        host = alpha.to("cpu", non_blocking=self.device.type == "cuda")
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # this thread's work only, not the renderer's
        return list(host.numpy())

    def _segmenter(self) -> Any:
        """This thread's own segmentation session (a shared one serialises its calls)."""
        seg = getattr(self._local, "segmenter", None)
        if seg is None:
            from greenless.pipeline.guide import SelfieSegmenter

            seg = self._local.segmenter = SelfieSegmenter()
        return seg

    def _hint(self, rgb: np.ndarray, prev: np.ndarray | None, size: tuple[int, int]
              ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """(4th input channel, the guide's bounds or None) for one frame, on a guide thread."""
        segmenter = self._segmenter() if self.recipe.guided else None
        hint, guide = self.recipe.hint_channel(rgb, prev, size, segmenter=segmenter)
        return hint, self.recipe.bounds(guide)

    def _upload(self, array: np.ndarray) -> Any:
        """A float32 host array on the device (asynchronously from pinned memory on CUDA)."""
        tensor = self.torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if self.device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def _frames_on_device(self, rgbs: list[np.ndarray]) -> Any:
        """The frames as one N x H x W x 3 uint8 tensor on the device, through a reused pinned buffer on CUDA."""
        torch = self.torch
        if self.device.type != "cuda":
            return torch.from_numpy(np.stack(rgbs))
        key = (len(rgbs), *rgbs[0].shape)
        buffer = self._pinned.get(key)
        if buffer is None:
            self._pinned.clear()  # one frame size at a time in a video: keep the latest only
            buffer = self._pinned[key] = torch.empty(key, dtype=torch.uint8, pin_memory=True)
        view = buffer.numpy()
        for i, rgb in enumerate(rgbs):  # one copy per frame, straight into page-locked memory
            view[i] = rgb  # safe to reuse: the previous batch was synchronised before matte_batch returned
        return buffer.to(self.device, non_blocking=True)

    def _network_input(self, rgbs: list[np.ndarray], size: tuple[int, int]) -> Any:
        """N x 3 x h x w float32 in [-1, 1] on the device, equal to ``to_network_input`` of each frame."""
        h, w = rgbs[0].shape[:2]
        nh, nw = size
        if self.preprocess == "greenless" and (nh > h or nw > w):
            # Enlarging: OpenCV's uint8 bilinear uses 11-bit fixed-point weights (inputs differ by one level from
            # a float product, which moved mattes by up to 0.3 on a small frame), and its area resize is not
            # separable when one side grows. Frames smaller than the network are cheap: the CPU resizes them
            # exactly as the per-frame path does.
            return self._upload(np.concatenate([to_network_input(rgb, size, self.preprocess) for rgb in rgbs]))
        x = self._frames_on_device(rgbs).permute(0, 3, 1, 2).float()
        if (nh, nw) != (h, w):
            x = self._resize(x, size, back=False, interpolation=cv2.INTER_AREA)
            if self.preprocess == "greenless":
                x = x.round_()  # OpenCV's area resize of uint8 rounds to uint8
        return x * (2.0 / 255.0) - 1.0

    def _resize(self, x: Any, size: tuple[int, int], back: bool, interpolation: int = cv2.INTER_LINEAR) -> Any:
        """``x`` (N x C x H x W) to ``size`` by one weight matrix per axis; ``back``: a matte to full size
        (bilinear, or area under the demo rule), as ``matte_to_size`` does."""
        h, w = x.shape[-2:]
        if (h, w) == tuple(size):
            return x
        rows = self._axis(h, size[0], interpolation)
        cols = self._axis(w, size[1], interpolation)
        return rows @ x @ cols.T

    def _axis(self, n: int, m: int, interpolation: int) -> Any:
        key = (n, m, self.preprocess, interpolation)
        weights = self._weights.get(key)
        if weights is None:
            if len(self._weights) >= _MAX_WEIGHTS:
                self._weights.clear()
            weights = self._weights[key] = self.torch.from_numpy(
                axis_weights(n, m, self.preprocess, interpolation)).to(self.device)
        return weights

    def _run_network(self, x: Any) -> Any:
        """The network on ``x``, its time recorded (CUDA events, read later; the wall clock on CPU)."""
        if self.device.type == "cuda":
            start, end = self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)
            start.record()
            out = self.runner(x)
            end.record()
            self._events.append((start, end))
            return out
        start_s = time.perf_counter()
        out = self.runner(x)
        self._network_s += time.perf_counter() - start_s
        return out


class DeviceRenderer:
    """``compose.render`` on a torch device, for the outputs that estimate foreground colours
    (composite, rgba, foreground); the alpha output (a clip and a cast) stays on the CPU.

    The CPU path's foreground estimate (``compose.estimate_foreground``: blur-fusion on the soft edge's
    bounding box, at most ``max_pixels`` of it, the correction brought back up) done with the same steps, each
    box blur and resize a matrix product with weights read off OpenCV (``cv2.blur`` and ``cv2.resize`` of an
    identity matrix, so borders and rounding follow it); then ``alpha * F + (1 - alpha) * B``. At 1080p the
    CPU's estimate and blend take tens of milliseconds a frame, which would hold a GPU-fed video to a few
    dozen frames per second; on the device they cost the copies.
    """

    def __init__(self, device: Any, max_pixels: int | None = None) -> None:
        import torch

        from greenless.pipeline.video import VIDEO_FG_MAX_PIXELS

        self.torch = torch
        self.device = device
        self.max_pixels = max_pixels or VIDEO_FG_MAX_PIXELS
        self._matrices: dict[tuple, Any] = {}
        self._background: tuple[Any, Any] | None = None  # (host array, its device copy): stills are uploaded once
        # its own CUDA stream: the encode thread's composites overlap the network's next batch on the default one
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __call__(self, mode: str, rgb: np.ndarray, alpha: np.ndarray, background: Any,
                 gray_as_rgb: bool = False) -> np.ndarray:
        """The output picture for one frame, as ``compose.render`` makes it (same arguments)."""
        from greenless.pipeline.compose import render

        if mode not in ("composite", "rgba", "foreground") or (mode == "composite" and background is None):
            return render(mode, rgb, alpha, background, fg_max_pixels=self.max_pixels,
                          gray_as_rgb=gray_as_rgb)  # alpha output, or render's own error
        torch = self.torch
        with torch.inference_mode(), (torch.cuda.stream(self._stream) if self._stream is not None else nullcontext()):
            image = self._up(rgb).permute(2, 0, 1).float()  # 3 x H x W in 0..255
            a = self._up(alpha).float()
            fg = self._foreground(image, a)
            if mode == "foreground":
                return self._down(fg)
            if mode == "rgba":
                from greenless.pipeline.compose import _alpha_u8

                return np.dstack([self._down(fg), _alpha_u8(alpha)])
            bg = self._background_on_device(background.for_frame(rgb)).permute(2, 0, 1).float()
            return self._down((fg * a + bg * (1.0 - a)).round_())

    def _up(self, array: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device, non_blocking=True)

    def _down(self, chw: Any) -> np.ndarray:
        """3 x H x W in 0..255 (already rounded) -> H x W x 3 uint8 on the host."""
        return np.ascontiguousarray(chw.clamp_(0, 255).to(self.torch.uint8).permute(1, 2, 0).cpu().numpy())

    def _background_on_device(self, bg: np.ndarray) -> Any:
        if self._background is not None and self._background[0] is bg:
            return self._background[1]
        on_device = self._up(bg)
        self._background = (bg, on_device)
        return on_device

    def _matrix(self, kind: str, n: int, m: int) -> Any:
        """Cached weights: ``blur`` (n x n box of side m, OpenCV's reflected border), ``area`` or ``linear``
        (m x n resize)."""
        key = (kind, n, m)
        weights = self._matrices.get(key)
        if weights is None:
            if len(self._matrices) >= 4 * _MAX_WEIGHTS:
                self._matrices.clear()
            if kind == "blur":
                host = cv2.blur(np.eye(n, dtype=np.float32), (1, m))
            else:
                host = axis_weights(n, m, "greenless", cv2.INTER_AREA if kind == "area" else cv2.INTER_LINEAR)
            weights = self._matrices[key] = self.torch.from_numpy(np.ascontiguousarray(host)).to(self.device)
        return weights

    def _resize(self, x: Any, h: int, w: int, kind: str) -> Any:
        return self._matrix(kind, x.shape[-2], h) @ x @ self._matrix(kind, x.shape[-1], w).T

    def _blur(self, x: Any, size: int) -> Any:
        return self._matrix("blur", x.shape[-2], size) @ x @ self._matrix("blur", x.shape[-1], size).T

    def _blur_fusion(self, image: Any, alpha: Any, radii: tuple[int, ...]) -> Any:
        """``compose._blur_fusion`` on 3 x h x w images in [0, 1] and an h x w alpha."""
        from greenless.pipeline.compose import _EPS

        a = alpha[None]
        fg = bg = image
        for radius in radii:
            blurred_a = self._blur(alpha, radius)[None]
            mean_fg = self._blur(fg * a, radius) / (blurred_a + _EPS)
            mean_bg = self._blur(bg * (1.0 - a), radius) / ((1.0 - blurred_a) + _EPS)
            residual = image - a * mean_fg - (1.0 - a) * mean_bg
            fg, bg = (mean_fg + a * residual).clamp_(0.0, 1.0), mean_bg
        return fg

    def _foreground(self, image: Any, alpha: Any) -> Any:
        """``compose.estimate_foreground`` (video settings) on a 3 x H x W image in 0..255: 0..255, rounded."""
        from greenless.pipeline.compose import _SOFT, BLUR_RADII

        soft = (alpha > _SOFT) & (alpha < 1.0 - _SOFT)
        rows = soft.any(dim=1).nonzero()
        if rows.numel() == 0:
            return image
        cols = soft.any(dim=0).nonzero()
        margin = BLUR_RADII[0]
        height, width = alpha.shape
        top, bottom = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, height)
        left, right = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, width)
        crop, a = image[:, top:bottom, left:right], alpha[top:bottom, left:right]
        out = image.clone()
        scale = min(1.0, (self.max_pixels / a.numel()) ** 0.5)
        ch, cw = a.shape
        if scale < 1.0:
            sh, sw = max(1, round(ch * scale)), max(1, round(cw * scale))
            small = self._resize(crop, sh, sw, "area").round_() / 255.0  # OpenCV resizes uint8 to uint8
            small_a = self._resize(a, sh, sw, "area")
            radii = tuple(max(3, int(r * scale) | 1) for r in BLUR_RADII)
            correction = (self._blur_fusion(small, small_a, radii) - small) * 255.0
            out[:, top:bottom, left:right] = (crop + self._resize(correction, ch, cw, "linear")).round_().clamp_(0, 255)
        else:
            fg = self._blur_fusion(crop / 255.0, a, BLUR_RADII)
            out[:, top:bottom, left:right] = (fg * 255.0 + 0.5).floor_()
        return out
