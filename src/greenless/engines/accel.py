"""How a PyTorch MODNet runs on a device: eager, ``torch.compile`` or CUDA graphs; fp16 and channels-last on CUDA.

Tensors in, tensors out (no numpy): the torch engine wraps this for ``Matter``, and the batched device path
(:class:`greenless.pipeline.device.DeviceMatter`, through the torch engine's ``runner``) and ``greenless bench
--device`` (:mod:`greenless.evaluate.device_bench`) call it directly so frames stay on the device. Why three modes: at batch 1 a MODNet forward is about a hundred small kernels, so on a GPU the
launch overhead, not the arithmetic, bounds it (78 fps fp32 at 512x512 on an H200 in eager mode). A CUDA
graph replays the whole forward as one launch; ``torch.compile`` fuses kernels (and on CUDA, with
``reduce-overhead``, records graphs too). CUDA graphs need CUDA; compile and eager run anywhere, so the
code around them is tested on CPU.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from greenless.errors import GreenlessError

TORCH_MODES = ("eager", "compile", "cudagraph")
#: The mode the torch engine uses on CUDA when none is asked for. Eager until ``scripts/gpu_bench.py`` has
#: measured the modes on a GPU (its report names the fastest per size; set this to it). See README, "GPU".
CUDA_DEFAULT_MODE = "eager"
#: Input shapes one runner keeps a CUDA graph for (a video has one; a server sees a few): each graph holds
#: its own input, output and activation memory, so the oldest is dropped beyond this.
MAX_GRAPHS = 8


def resolve_device(device: str | None) -> Any:
    """``torch.device`` for ``device`` (None: CUDA when available, else CPU); one error line for a device
    this machine lacks or a name torch does not know."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise GreenlessError(f"--device {device!r}: not a device name (cpu, cuda, cuda:1)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GreenlessError(f"--device {device}: no CUDA device here (this PyTorch {torch.__version__} "
                                 f"{'has no CUDA support' if torch.version.cuda is None else 'sees no GPU'}); "
                                 f"use --device cpu, or install the [gpu] extra on a machine with an NVIDIA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GreenlessError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type != "cpu":
        raise GreenlessError(f"--device {device}: greenless runs on cpu or cuda")
    return dev


def check_mode(mode: str, device: Any) -> str:
    """``mode`` if it is one of TORCH_MODES and can run on ``device``, else one error line."""
    if mode not in TORCH_MODES:
        raise GreenlessError(f"unknown torch mode {mode!r}; choose from {', '.join(TORCH_MODES)}")
    if mode == "cudagraph" and device.type != "cuda":
        raise GreenlessError(f"torch mode cudagraph needs a CUDA device, not {device}; use eager or compile")
    return mode


class _Graph:
    """One CUDA graph of ``fn`` for one input shape: copy the input in, replay, read the output."""

    def __init__(self, fn: Any, example: Any) -> None:
        import torch

        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires (cuDNN picks algorithms)
            for _ in range(3):
                fn(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, x: Any) -> Any:
        self.static_in.copy_(x)
        self.graph.replay()
        return self.static_out.clone()  # the next replay overwrites static_out; callers may hold on to theirs


class TensorRunner:
    """A MODNet on ``device`` in ``mode``: ``runner(x)`` takes N x C x H x W on the device, returns N x 1 x H x W.

    ``half`` (default: on CUDA) runs in fp16 and returns fp16; ``channels_last`` (default: on CUDA) is the
    layout cuDNN's fastest convolutions want. ``compile_backend`` is torch.compile's backend (``inductor``;
    ``eager`` or ``aot_eager`` only trace, for quick checks of the compiled path on CPU).
    """

    def __init__(self, model: Any, device: Any, mode: str = "eager", half: bool | None = None,
                 channels_last: bool | None = None, compile_backend: str = "inductor") -> None:
        import torch

        self.torch = torch
        self.device = device
        self.mode = check_mode(mode, device)
        on_cuda = device.type == "cuda"
        self.half = on_cuda if half is None else half
        self.dtype = torch.float16 if self.half else torch.float32
        self.channels_last = on_cuda if channels_last is None else channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        if on_cuda:
            # cuDNN times its convolution algorithms once per input shape and keeps the fastest: a video or a
            # bench holds one shape, so this pays after the first call.
            torch.backends.cudnn.benchmark = True
        model = model.eval().to(device=device, dtype=self.dtype, memory_format=self.memory_format)
        self.model = model
        self._fn = model
        if mode == "compile":
            options: dict[str, Any] = {"dynamic": False, "backend": compile_backend}
            if on_cuda and compile_backend == "inductor":
                options["mode"] = "reduce-overhead"  # inductor's kernels, replayed as CUDA graphs
            self._fn = torch.compile(model, **options)
        self._graphs: OrderedDict[tuple, _Graph] = OrderedDict()

    def prepare(self, x: Any) -> Any:
        """``x`` (any float tensor) in the runner's dtype, layout and device."""
        return x.to(device=self.device, dtype=self.dtype, memory_format=self.memory_format, non_blocking=True)

    def __call__(self, x: Any) -> Any:
        """The matte of a batch ``x`` (N x C x H x W, H and W multiples of 32)."""
        with self.torch.inference_mode():
            x = self.prepare(x)
            if self.mode == "eager":
                return self._fn(x)
            if self.mode == "compile":
                if self.device.type != "cuda":
                    return self._fn(x)
                # reduce-overhead replays CUDA graphs whose outputs the next call overwrites: say a new step
                # begins, and hand back a copy the caller may keep (as the cudagraph mode does)
                self.torch.compiler.cudagraph_mark_step_begin()
                return self._fn(x).clone()
            key = (tuple(x.shape), x.dtype)
            graph = self._graphs.get(key)
            if graph is None:
                graph = self._graphs[key] = _Graph(self._fn, x)
                while len(self._graphs) > MAX_GRAPHS:
                    self._graphs.popitem(last=False)
            else:
                self._graphs.move_to_end(key)
            return graph(x)

    def synchronize(self) -> None:
        """Wait for the device's queued work (no-op on CPU); for timing and before reading results."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
