"""Speed benchmark behind ``greenless bench``: per model and engine, the bare network call and the full pipeline.

Every model is measured in its own child process (``python -m greenless.evaluate.benchmark``), so its
peak memory (RSS high-water mark) is its own and one model's thread pools cannot slow the next. The
reference segmentation model and an ONNX export of the paper-faithful MobileNetV2 MODNet (random weights:
speed does not depend on them) are measured in the same run, so ratios hold on a noisy machine.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError

# Input frames as (label W x H, height, width).
RESOLUTIONS = (("512x512", 512, 512), ("512x288", 288, 512), ("1280x720", 720, 1280), ("1920x1080", 1080, 1920))
QUICK_RESOLUTIONS = ("512x288", "512x512")
BATCH_RESOLUTION = "512x288"
BATCH_SIZES = (1, 4)
PAPER_NAME = "paper MobileNetV2 (ONNX)"
SKIPPABLE = ("variants", "torch", "reference", "paper")


@dataclass
class ModelSpec:
    """One model to time: ``kind`` is onnx (a MODNet .onnx), torch (a .safetensors) or reference."""

    name: str
    kind: str
    path: str
    precision: str = "fp32"


@dataclass
class ModelResult:
    """Timings of one model, or why it was skipped."""

    name: str
    kind: str
    path: str
    precision: str = "fp32"
    rows: list[dict[str, Any]] = field(default_factory=list)
    peak_rss_mb: float | None = None
    baseline_rss_mb: float | None = None
    load_s: float | None = None
    note: str = ""


def peak_rss_mb() -> float | None:
    """This process's RSS high-water mark in MiB (stdlib ``resource``; psutil on Windows if installed)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except ImportError:
        try:
            import psutil

            info = psutil.Process().memory_info()
            return getattr(info, "peak_wset", info.rss) / (1024 * 1024)
        except ImportError:
            return None


def time_call(fn: Callable[[], Any], warmup: int, repeat: int) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times; median and p10/p90 in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    arr = np.asarray(times)
    return {"median_ms": float(np.median(arr)), "p10_ms": float(np.percentile(arr, 10)),
            "p90_ms": float(np.percentile(arr, 90)), "runs": len(times)}


def _frame(height: int, width: int) -> np.ndarray:
    """A deterministic synthetic RGB frame (speed does not depend on content)."""
    rng = np.random.default_rng(height * 10007 + width)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _row(what: str, label: str, network: tuple[int, int], batch: int, timing: dict[str, float]) -> dict[str, Any]:
    return {"what": what, "input": label, "network": f"{network[1]}x{network[0]}", "batch": batch, **timing,
            "fps": batch * 1000.0 / timing["median_ms"] if timing["median_ms"] > 0 else float("inf")}


def measure(spec: ModelSpec, resolutions: list[str], warmup: int, repeat: int, ref_size: int,
            threads: int | None = None) -> ModelResult:
    """Time one model in this process: network call at the network size, end to end on the full frame, batch 4."""
    from greenless.pipeline.preprocess import inference_size

    result = ModelResult(spec.name, spec.kind, spec.path, spec.precision)
    result.baseline_rss_mb = peak_rss_mb()
    start = time.perf_counter()
    if spec.kind == "reference":
        from greenless.evaluate.reference import SIZE, ReferenceSegmenter

        seg = ReferenceSegmenter(spec.path, threads=threads)
        run_net = lambda x: seg.session.run(None, {seg.input_name: x})  # noqa: E731
        net_input = lambda h, w, b: np.zeros((b, SIZE, SIZE, 3), np.float32)  # noqa: E731
        net_size = lambda h, w: (SIZE, SIZE)  # noqa: E731
        end_to_end = lambda rgb: seg(rgb, mode="squash")  # noqa: E731
    else:
        from greenless.matter import Matter

        if spec.kind == "torch" and threads:
            import torch

            torch.set_num_threads(threads)
        matter = Matter(spec.path, engine=spec.kind, ref_size=ref_size, threads=threads,
                        device="cpu" if spec.kind == "torch" else None)
        channels = matter.engine.in_channels
        run_net = matter.engine.run
        rng = np.random.default_rng(0)
        net_input = lambda h, w, b: rng.uniform(-1, 1, (b, channels, h, w)).astype(np.float32)  # noqa: E731
        net_size = lambda h, w: inference_size(h, w, matter.ref_size)  # noqa: E731
        end_to_end = matter.matte
    result.load_s = time.perf_counter() - start

    for label, height, width in RESOLUTIONS:
        if label not in resolutions:
            continue
        nh, nw = net_size(height, width)
        batches = BATCH_SIZES if label == BATCH_RESOLUTION else (1,)
        for batch in batches:
            if batch > 1 and spec.kind == "reference":
                continue  # the reference graph has a fixed batch size of 1
            x = net_input(nh, nw, batch)
            result.rows.append(_row("network", label, (nh, nw), batch, time_call(lambda: run_net(x), warmup, repeat)))
        frame = _frame(height, width)
        result.rows.append(_row("end-to-end", label, (nh, nw), 1, time_call(lambda: end_to_end(frame), warmup, repeat)))
    result.peak_rss_mb = peak_rss_mb()
    return result


def export_paper_model(path: Path) -> Path:
    """Export the paper-faithful MobileNetV2 MODNet (random init) to ONNX at ``path``."""
    import torch

    from greenless.export import export_onnx
    from greenless.model import build_model

    torch.manual_seed(0)
    return export_onnx(build_model({"encoder": "mobilenetv2"}), path)


def _child(args: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Run ``python -m greenless.evaluate.benchmark ARGS`` and parse the JSON it prints last."""
    proc = subprocess.run([sys.executable, "-m", "greenless.evaluate.benchmark", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise GreenlessError(lines[-1] if lines else f"benchmark child exited with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def default_reference() -> Path | None:
    """``../shared/models/selfie_segmentation.onnx`` relative to the working folder, if it exists."""
    path = Path("..") / "shared" / "models" / "selfie_segmentation.onnx"
    return path if path.is_file() else None


def plan(reference: Path | None, skip: set[str], paper_onnx: Path | None) -> tuple[list[ModelSpec], list[ModelResult]]:
    """The models to time (default fp32, variants, torch, reference, paper) and the skipped ones with a note."""
    from greenless.matter import DEFAULT_SAFETENSORS, default_weights

    onnx_path = default_weights("onnx")
    specs = [ModelSpec("greenless", "onnx", str(onnx_path), "fp32")]
    skipped: list[ModelResult] = []
    if "variants" not in skip:
        for variant in sorted(onnx_path.parent.glob("modnet?*.onnx")):
            precision = variant.stem.removeprefix("modnet").strip("._-") or variant.stem
            specs.append(ModelSpec("greenless", "onnx", str(variant), precision))
    if "torch" not in skip:
        st = onnx_path.parent / DEFAULT_SAFETENSORS
        if not _torch_available():
            skipped.append(ModelResult("greenless", "torch", str(st), note="skipped: PyTorch is not installed"))
        elif not st.is_file():
            skipped.append(ModelResult("greenless", "torch", str(st), note="skipped: no packaged .safetensors"))
        else:
            specs.append(ModelSpec("greenless", "torch", str(st), "fp32"))
    if "reference" not in skip:
        if reference is None:
            skipped.append(ModelResult("reference selfie segmentation", "reference", "", note="skipped: no reference model (--reference PATH)"))
        elif not reference.is_file():
            raise GreenlessError(f"{reference}: reference model not found")
        else:
            specs.append(ModelSpec("reference selfie segmentation", "reference", str(reference)))
    if "paper" not in skip:
        if paper_onnx is None:
            skipped.append(ModelResult(PAPER_NAME, "onnx", "", note="skipped: exporting it needs PyTorch (pip install 'greenless[torch]')"))
        else:
            specs.append(ModelSpec(PAPER_NAME, "onnx", str(paper_onnx), "fp32"))
    return specs, skipped


def default_ref_size() -> int:
    """The packaged weights' reference size (from their card), else MODNet's 512."""
    from greenless.matter import default_weights

    card = default_weights("onnx").with_suffix(".json")
    try:
        return int(json.loads(card.read_text()).get("ref_size") or 512)
    except (OSError, ValueError):
        return 512


def machine_info() -> dict[str, Any]:
    """Where the numbers came from: CPU, cores, OS, Python and runtime versions."""
    import onnxruntime as ort

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "logical_cores": os.cpu_count(), "os": platform.platform(),
                            "python": platform.python_version(), "onnxruntime": ort.__version__,
                            "onnxruntime_providers": ort.get_available_providers()}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def add_ratios(results: list[ModelResult]) -> None:
    """Per row, ``speed_vs_paper`` = paper median time / this median time (2.0 means twice as fast)."""
    paper = next((r for r in results if r.name == PAPER_NAME and r.rows), None)
    base = {(r["what"], r["input"], r["batch"]): r["median_ms"] for r in paper.rows} if paper else {}
    for result in results:
        for row in result.rows:
            ref = base.get((row["what"], row["input"], row["batch"]))
            row["speed_vs_paper"] = ref / row["median_ms"] if ref and row["median_ms"] > 0 else None


def run_benchmark(reference: Path | None = None, repeat: int = 20, warmup: int = 3, quick: bool = False,
                  skip: set[str] | None = None, threads: int | None = None, resolutions: list[str] | None = None,
                  on_model: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Time every model; returns ``{"machine", "settings", "models": [ModelResult as dict]}``."""
    skip = set(skip or ())
    unknown = skip - set(SKIPPABLE)
    if unknown:
        raise GreenlessError(f"--skip: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SKIPPABLE)}")
    if repeat < 1 or warmup < 0:
        raise GreenlessError("--repeat must be at least 1 and --warmup at least 0")
    known = [label for label, _, _ in RESOLUTIONS]
    if resolutions:
        bad = [r for r in resolutions if r not in known]
        if bad:
            raise GreenlessError(f"--resolution: unknown {', '.join(bad)}; choose from {', '.join(known)}")
        resolutions = [label for label in known if label in resolutions]
    else:
        resolutions = list(QUICK_RESOLUTIONS) if quick else known
    ref_size = default_ref_size()
    with tempfile.TemporaryDirectory(prefix="greenless-bench-") as tmp:
        paper_onnx = None
        paper_note = ""
        if "paper" not in skip and _torch_available():
            if on_model:
                on_model(f"exporting {PAPER_NAME}", 0)
            try:
                paper_onnx = Path(_child(["--export-paper", str(Path(tmp) / "paper.onnx")])["path"])
            except GreenlessError as exc:
                paper_note = f"skipped: export failed ({exc})"
        specs, results = plan(reference, skip, paper_onnx)
        if paper_note:
            results.append(ModelResult(PAPER_NAME, "onnx", "", note=paper_note))
        measured = []
        for i, spec in enumerate(specs):
            if on_model:
                on_model(f"{spec.name} {spec.kind} {spec.precision}", i + 1)
            args = ["--measure", json.dumps(asdict(spec)), "--resolutions", ",".join(resolutions), "--warmup",
                    str(warmup), "--repeat", str(repeat), "--ref-size", str(ref_size)]
            if threads:
                args += ["--threads", str(threads)]
            try:
                measured.append(ModelResult(**_child(args)))
            except GreenlessError as exc:
                measured.append(ModelResult(spec.name, spec.kind, spec.path, spec.precision, note=f"failed: {exc}"))
        all_results = measured + results
    add_ratios(all_results)
    for r in all_results:
        if r.name == PAPER_NAME:
            r.path = "(temporary export, random init)" if r.rows else r.path
    return {"machine": machine_info(),
            "settings": {"ref_size": ref_size, "warmup": warmup, "repeat": repeat, "quick": quick,
                         "resolutions": resolutions, "batch_sizes": list(BATCH_SIZES), "batch_input": BATCH_RESOLUTION,
                         "threads": threads},
            "models": [asdict(r) for r in all_results]}


def _main(argv: list[str]) -> None:
    """Child-process entry: ``--export-paper PATH`` or ``--measure SPEC_JSON ...``; prints one JSON line."""
    import argparse

    parser = argparse.ArgumentParser(prog="greenless.evaluate.benchmark")
    parser.add_argument("--export-paper")
    parser.add_argument("--measure")
    parser.add_argument("--resolutions", default=",".join(QUICK_RESOLUTIONS))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ref-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.export_paper:
            out: dict[str, Any] = {"path": str(export_paper_model(Path(args.export_paper)))}
        else:
            spec = ModelSpec(**json.loads(args.measure))
            out = asdict(measure(spec, args.resolutions.split(","), args.warmup, args.repeat, args.ref_size, args.threads))
    except GreenlessError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(out))


if __name__ == "__main__":
    _main(sys.argv[1:])
