"""``greenless bench --device``: the networks on one torch device, per engine, batch 1 and batched.

Times each packaged model and the paper architecture (MobileNetV2, IBNorm; random weights, as speed does
not depend on them) in PyTorch eager fp32 and fp16, with CUDA graphs, with ``torch.compile``, and in
onnxruntime's CUDA and TensorRT providers where this onnxruntime has them. On CUDA every call is timed
with CUDA events after warm-up; on CPU (where the same code runs, for checks) with the wall clock. The
guided ``modnet`` is timed with its guide channel filled, and the guide itself (the segmentation model
plus its bounds, on the CPU) gets its own rows, since a video pays it per frame beside the network.

Everything runs in this one process, one case after another (the GPU is the bottleneck, not the CPU's
background load, so the CPU bench's worker processes and interleaving are not needed here).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError

#: (label, input h, input w): the network sees the input itself, each side rounded to its stride (``native_size``).
DEVICE_SIZES = (("512x512", 512, 512), ("512x288", 288, 512), ("1920x1080", 1080, 1920))
QUICK_SIZES = ("512x288",)
#: Models: the packaged sets in the wheel by name, and the paper architecture at random init.
PAPER_REFERENCE = "paper MobileNetV2"
DEVICE_MODELS = ("modnet", PAPER_REFERENCE)
#: Engine labels: runtime-mode-precision. torch-* run via TensorRunner, onnx-* via an onnxruntime provider.
CUDA_ENGINES = ("torch-eager-fp32", "torch-eager-fp16", "torch-cudagraph-fp16", "torch-compile-fp16",
                "onnx-cuda-fp32", "onnx-tensorrt-fp16")
CPU_ENGINES = ("torch-eager-fp32", "onnx-cpu-fp32")
ALL_ENGINES = CUDA_ENGINES + ("torch-compile-fp32", "torch-cudagraph-fp32", "onnx-cpu-fp32")
#: A torch.compile case starts only with this many seconds of the budget left (compiling takes tens of seconds).
COMPILE_RESERVE_S = 45.0
_ORT_PROVIDERS = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider", "cpu": "CPUExecutionProvider"}


def native_size(h: int, w: int, stride: int) -> tuple[int, int]:
    """The network size of an ``h`` x ``w`` frame run at its own size: each side rounded to the nearest multiple
    of the network's ``stride`` (``greenless.card.network_stride``), as ``Matter`` rounds (1080 -> 1088; 288 ->
    256 at the packaged modnet's 64)."""
    from greenless.pipeline.preprocess import inference_size

    return inference_size(h, w, min(h, w), "greenless", stride)


def model_stride(name: str) -> int:
    """The stride of a packaged model (its card), or 32 for the paper architecture."""
    if name == PAPER_REFERENCE:
        return 32
    from greenless.card import network_stride
    from greenless.registry import packaged

    return network_stride(packaged(name).card())


@dataclass
class Row:
    """One timed (or skipped) case: a model in an engine at an input size and batch."""

    model: str
    engine: str
    what: str  # network | guide
    input: str
    network: str
    batch: int
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    fps: float | None = None
    note: str = ""


@dataclass
class Plan:
    """What to time: models x engines x sizes x batches, ``warmup`` + ``repeat`` calls each, within ``budget_s``."""

    device: str = "cuda"
    models: tuple[str, ...] = DEVICE_MODELS
    engines: tuple[str, ...] = CUDA_ENGINES
    sizes: tuple[str, ...] = tuple(label for label, _, _ in DEVICE_SIZES)
    batches: tuple[int, ...] = (1, 16)
    warmup: int = 10
    repeat: int = 50
    guide: bool = True
    budget_s: float | None = None
    #: At most about this many seconds of timed calls per case (at least 5 calls), so 1080p batch 16 in fp32
    #: does not take what fifty 512x512 cases take.
    case_s: float = 2.0
    compile_backend: str = "inductor"
    #: Models timed under torch.compile (each shape compiles anew, tens of seconds on a GPU); None: all.
    compile_models: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)


def parse_engine(label: str) -> tuple[str, str, str]:
    """``torch-cudagraph-fp16`` -> (torch, cudagraph, fp16); one error line for anything else."""
    if label not in ALL_ENGINES:
        raise GreenlessError(f"unknown engine {label!r}; choose from {', '.join(ALL_ENGINES)}")
    runtime, mode, precision = label.split("-")
    return runtime, mode, precision


def stats_ms(times: list[float], batch: int) -> dict[str, Any]:
    """Median, p10 and p90 of call times (ms) and the frames per second the median gives."""
    arr = np.asarray(times, dtype=np.float64)
    median = float(np.median(arr))
    return {"median_ms": median, "p10_ms": float(np.percentile(arr, 10)), "p90_ms": float(np.percentile(arr, 90)),
            "fps": batch * 1000.0 / median if median > 0 else None}


class Timer:
    """Times calls of a function on ``device``: CUDA events on CUDA (GPU time of each call), else the wall clock."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"
        self.device = device

    def time(self, fn: Callable[[], Any], warmup: int, repeat: int, case_s: float | None = None) -> list[float]:
        """``warmup`` untimed calls, then the milliseconds of each of ``repeat`` calls (fewer, but at least 5,
        when the warm-up says ``repeat`` would take longer than ``case_s`` seconds)."""
        torch = self.torch
        per_call = 0.0
        for _ in range(warmup):
            start = time.perf_counter()
            fn()
            if self.cuda:
                torch.cuda.synchronize(self.device)
            per_call = time.perf_counter() - start  # the last warm-up call's, after any compile or capture
        if case_s is not None and warmup > 1:
            repeat = max(min(repeat, 5), min(repeat, int(case_s / max(per_call, 1e-6))))
        if not self.cuda:
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1000.0)
            return times
        torch.cuda.synchronize(self.device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeat)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(self.device)
        return [start.elapsed_time(end) for start, end in events]


def load_network(name: str) -> tuple[Any, int]:
    """(PyTorch model in eval mode, input channels) of a packaged model or the paper architecture."""
    import torch

    from greenless.model import build_model

    if name == PAPER_REFERENCE:
        torch.manual_seed(0)
        return build_model({"encoder": "mobilenetv2"}).eval(), 3
    from greenless.card import in_channels
    from greenless.model.checkpoint import load_weights
    from greenless.registry import packaged

    model, card = load_weights(packaged(name).path("torch"))
    return model, in_channels(card)


def onnx_call(name: str, provider: str, precision: str, device: Any, x: np.ndarray) -> Callable[[], Any]:
    """A call of the packaged ``name``.onnx in one onnxruntime provider, input and output bound on the device
    (no host copies in the timed call, as the torch rows)."""
    import onnxruntime as ort

    from greenless.registry import packaged

    if name == PAPER_REFERENCE:
        raise GreenlessError("no ONNX file (random-init reference)")
    wanted = _ORT_PROVIDERS[provider]
    if wanted not in ort.get_available_providers():
        raise GreenlessError(f"this onnxruntime has no {wanted} (onnxruntime-gpu has it; see README, GPU)")
    path = packaged(name).path("onnx")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    options: dict[str, Any] = {}
    if provider == "tensorrt":
        import tempfile

        options = {"trt_fp16_enable": precision == "fp16", "trt_engine_cache_enable": True,
                   "trt_engine_cache_path": str(Path(tempfile.gettempdir()) / "greenless-trt-cache")}
    providers: list[Any] = [(wanted, options)] + (["CUDAExecutionProvider"] if provider == "tensorrt" else [])
    session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    kind = "cpu" if provider == "cpu" else "cuda"
    index = 0 if device.index is None else device.index
    binding = session.io_binding()
    binding.bind_ortvalue_input(session.get_inputs()[0].name, ort.OrtValue.ortvalue_from_numpy(x, kind, index))
    binding.bind_output(session.get_outputs()[0].name, kind, index)
    return lambda: session.run_with_iobinding(binding)


def machine(device: Any) -> dict[str, Any]:
    """``machine_info`` (CPU, OS, onnxruntime and its providers, torch) plus the device's name and CUDA's version."""
    import torch

    from greenless.evaluate.benchmark import machine_info

    info = machine_info()
    info["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU: {info['cpu']}"
    info["cuda"] = torch.version.cuda
    return info


def _time_guide(timer: Timer, plan: Plan, label: str, h: int, w: int) -> Row:
    """The guide's cost for one frame of ``h`` x ``w``: the stream recipe's guide step (the segmentation model at
    the network size, the hint channel) plus its bounds."""
    from greenless.evaluate.bench_worker import synthetic_frame
    from greenless.pipeline.recipe import recipe_for
    from greenless.registry import packaged

    recipe = recipe_for(packaged("modnet").card(), 4, "stream")
    size = native_size(h, w, recipe.stride)
    frame = synthetic_frame(h, w)
    times = []
    for i in range(plan.warmup + plan.repeat):
        start = time.perf_counter()
        recipe.bounds(recipe.hint_channel(frame, None, size)[1])
        if i >= plan.warmup:
            times.append((time.perf_counter() - start) * 1000.0)
    return Row("guide (selfie segmentation + bounds)", "onnxruntime cpu, 1 thread", "guide", label,
               f"{size[1]}x{size[0]}", 1, **stats_ms(times, 1))


def run_device_bench(plan: Plan, on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time every case of ``plan``; returns ``{"machine", "settings", "rows", "fastest"}``.

    A case that fails (out of memory, a provider missing, a compile error) or that the time budget leaves
    out becomes a row with a note instead of stopping the run.
    """
    import torch

    from greenless.engines.accel import TensorRunner, resolve_device

    report = on_progress or (lambda text: None)
    device = resolve_device(plan.device)
    engines = [parse_engine(e) for e in plan.engines]
    sizes = {label: (h, w) for label, h, w in DEVICE_SIZES}
    bad = [s for s in plan.sizes if s not in sizes]
    if bad:
        raise GreenlessError(f"--resolution: unknown {', '.join(bad)}; choose from {', '.join(sizes)}")
    if any(b < 1 for b in plan.batches) or plan.repeat < 1 or plan.warmup < 0:
        raise GreenlessError("batches and --repeat must be at least 1, --warmup at least 0")
    timer = Timer(device)
    start = time.monotonic()
    rows: list[Row] = []

    def over_budget(reserve: float = 0.0) -> bool:
        """True once the budget is spent, or when less than ``reserve`` seconds of it are left."""
        return plan.budget_s is not None and time.monotonic() - start > plan.budget_s - reserve

    # compile last: it is the slowest to prepare, so a tight budget cuts it first
    ordered = sorted(engines, key=lambda e: e[1] == "compile")
    for runtime, mode, precision in ordered:
        engine = f"{runtime}-{mode}-{precision}"
        for name in plan.models:
            network: Any = None
            stride = model_stride(name)
            for label in plan.sizes:
                h, w = sizes[label]
                nh, nw = native_size(h, w, stride)
                for batch in plan.batches:
                    row = Row(name, engine, "network", label, f"{nw}x{nh}", batch)
                    rows.append(row)
                    if over_budget(COMPILE_RESERVE_S if mode == "compile" else 0.0):
                        row.note = "skipped: time budget spent"
                        continue
                    if mode == "compile" and plan.compile_models is not None and name not in plan.compile_models:
                        row.note = f"skipped: compiled for {', '.join(plan.compile_models)} only (compile time)"
                        break
                    report(f"{name} {engine} {label} batch {batch}")
                    try:
                        if network is None:
                            network = load_network(name)
                        model, channels = network
                        rng = np.random.default_rng(0)
                        x = rng.uniform(-1, 1, (batch, channels, nh, nw)).astype(np.float32)
                        if runtime == "torch":
                            runner = TensorRunner(model, device, mode=mode, half=precision == "fp16",
                                                  compile_backend=plan.compile_backend)
                            xt = runner.prepare(torch.from_numpy(x))
                            call: Callable[[], Any] = functools.partial(runner, xt)
                        else:
                            call = onnx_call(name, mode, precision, device, x)
                        row.__dict__.update(stats_ms(timer.time(call, plan.warmup, plan.repeat, plan.case_s), batch))
                    except GreenlessError as exc:
                        row.note = f"skipped: {exc}"
                    except Exception as exc:  # out of memory, compile or capture failure: note it, go on
                        row.note = f"failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    if row.note.startswith("skipped"):
                        break  # the same reason (no provider, no file, wrong device) holds for every size and batch
                if row.note.startswith("skipped"):
                    break
    if plan.guide and "modnet" in plan.models:
        for label in plan.sizes:
            if over_budget():
                break
            report(f"guide {label}")
            rows.append(_time_guide(timer, plan, label, *sizes[label]))
    settings = {k: v for k, v in asdict(plan).items() if k != "notes"}
    return {"machine": machine(device), "settings": settings, "rows": [asdict(r) for r in rows],
            "fastest": fastest(rows), "notes": list(plan.notes)}


def fastest(rows: list[Row]) -> list[dict[str, Any]]:
    """Per model, input and batch: the engine with the highest fps (what the GPU default should be)."""
    best: dict[tuple[str, str, int], Row] = {}
    for row in rows:
        if row.what != "network" or not row.fps:
            continue
        key = (row.model, row.input, row.batch)
        if key not in best or row.fps > (best[key].fps or 0):
            best[key] = row
    return [{"model": m, "input": i, "batch": b, "engine": r.engine, "fps": r.fps} for (m, i, b), r in best.items()]


HEADERS = ("model", "engine", "measure", "input → network (WxH)", "batch", "median ms", "p10–p90 ms", "fps")


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """The report's rows as table cells (a skipped or failed case shows its note in place of times)."""
    out = []
    for r in report["rows"]:
        if r["median_ms"] is None:
            out.append([r["model"], r["engine"], r["what"], f"{r['input']} → {r['network']}", str(r["batch"]),
                        r["note"] or "–", "", ""])
            continue
        out.append([r["model"], r["engine"], r["what"], f"{r['input']} → {r['network']}", str(r["batch"]),
                    f"{r['median_ms']:.2f}", f"{r['p10_ms']:.2f}–{r['p90_ms']:.2f}", f"{r['fps']:.1f}"])
    return out


def render_markdown(report: dict[str, Any]) -> str:
    """The report as GitHub Markdown: a line naming the device and settings, the timings, the fastest engines."""
    m, s = report["machine"], report["settings"]
    timing = "CUDA events" if s["device"].startswith("cuda") else "wall clock"
    lines = [f"Device: **{m['device']}**; torch {m.get('torch')} (CUDA {m.get('cuda')}), onnxruntime {m['onnxruntime']}; "
             f"{s['warmup']} warm-up + {s['repeat']} timed calls per case ({timing}).", "",
             "| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_rows(report)]
    if report["fastest"]:
        lines += ["", "Fastest engine per model, input and batch:", "",
                  "| model | input | batch | engine | fps |", "|---|---|---|---|---|"]
        lines += [f"| {f['model']} | {f['input']} | {f['batch']} | {f['engine']} | {f['fps']:.1f} |"
                  for f in report["fastest"]]
    lines += [f"\nNote: {n}" for n in report.get("notes", [])]
    return "\n".join(lines) + "\n"
