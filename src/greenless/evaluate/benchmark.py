"""Speed benchmark behind ``greenless bench``: per model and engine, the bare network call and the full pipeline.

Each model lives in its own worker process (:mod:`greenless.evaluate.bench_worker`), so its peak memory
(RSS high-water mark) is its own; the calls of all models are interleaved round-robin, so a busy machine
slows them alike and the ratios hold. The reference segmentation model and an ONNX export of the
paper-faithful MobileNetV2 MODNet (random weights: speed does not depend on them) run beside ours.
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

from greenless.errors import GreenlessError, install_hint
from greenless.evaluate.bench_worker import RESOLUTIONS

QUICK_RESOLUTIONS = ("512x288", "512x512")
BATCH_RESOLUTION = "512x288"
BATCH_SIZES = (1, 4)
PAPER_NAME = "paper MobileNetV2"
SKIPPABLE = ("variants", "torch", "reference", "paper")
GAP_S = 0.02  # pause between two workers' turns, so one runtime's spinning threads do not slow the next
BLOCK = 5  # timed calls per model per turn: back-to-back calls, as in a video stream or a busy server


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


def stats(times: list[float]) -> dict[str, float]:
    """Median and p10/p90 of call times in milliseconds."""
    arr = np.asarray(times)
    return {"median_ms": float(np.median(arr)), "p10_ms": float(np.percentile(arr, 10)),
            "p90_ms": float(np.percentile(arr, 90)), "runs": len(times)}


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "greenless.evaluate.bench_worker", *args]


def _last_line(text: str, fallback: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else fallback


class Worker:
    """A running :mod:`~greenless.evaluate.bench_worker` process holding one model."""

    def __init__(self, spec: ModelSpec, ref_size: int, threads: int | None) -> None:
        self.spec = spec
        self.result = ModelResult(spec.name, spec.kind, spec.path, spec.precision)
        self._err = tempfile.TemporaryFile(mode="w+")
        args = ["--serve", json.dumps(asdict(spec)), "--ref-size", str(ref_size)]
        args += ["--threads", str(threads)] if threads else []
        self.proc = subprocess.Popen(_worker_cmd(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})
        hello = self._read()
        self.result.load_s, self.result.baseline_rss_mb = hello["load_s"], hello["baseline_rss_mb"]

    def ask(self, **cmd: Any) -> dict[str, Any]:
        """Send one command and return the worker's answer (GreenlessError when it failed or died)."""
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass  # the worker died; _read reports why
        return self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            code = self.proc.wait()
            self._err.seek(0)
            raise GreenlessError(_last_line(self._err.read(), f"worker exited with code {code}"))
        msg = json.loads(line)
        if "error" in msg:
            raise GreenlessError(msg["error"])
        return msg

    def close(self) -> None:
        """Record the peak RSS, then stop the process."""
        try:
            self.result.peak_rss_mb = self.ask(op="stats")["peak_rss_mb"]
        except GreenlessError:
            pass
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def measurements(resolutions: list[str]) -> list[tuple[str, str, int]]:
    """(what, input label, batch) in run order: network (batch 1, and 4 at 512x288), then end-to-end."""
    out = []
    for label, _, _ in RESOLUTIONS:
        if label in resolutions:
            out += [("network", label, b) for b in (BATCH_SIZES if label == BATCH_RESOLUTION else (1,))]
            out.append(("end-to-end", label, 1))
    return out


def export_paper(path: Path) -> Path:
    """Export the paper-faithful MobileNetV2 MODNet to ``path`` in a child process (keeps torch out of this one)."""
    proc = subprocess.run(_worker_cmd("--export-paper", str(path)), capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise GreenlessError(_last_line(proc.stderr, f"export exited with code {proc.returncode}"))
    return Path(json.loads(proc.stdout.strip().splitlines()[-1])["path"])


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def default_reference() -> Path | None:
    """``../shared/models/selfie_segmentation.onnx`` relative to the working folder, if it exists."""
    path = Path("..") / "shared" / "models" / "selfie_segmentation.onnx"
    return path if path.is_file() else None


def plan(reference: Path | None, skip: set[str], paper_onnx: Path | None) -> tuple[list[ModelSpec], list[ModelResult]]:
    """The models to time (default fp32, variants, torch, reference, paper) and the skipped ones with a note."""
    from greenless.registry import DEFAULT_MODEL as JOB_MODELS
    from greenless.registry import packaged

    DEFAULT_MODEL = JOB_MODELS["stream"]
    onnx_path = packaged(DEFAULT_MODEL).path("onnx")  # the real-time default first; the photo default follows
    specs = [ModelSpec(f"greenless {DEFAULT_MODEL}", "onnx", str(onnx_path), "fp32")]
    skipped: list[ModelResult] = []
    if "variants" not in skip:
        # Other weight sets beside the default (modnet-paper once rebuilt: it ships as a card only) and
        # precision variants saved as modnet.<precision>.onnx.
        for variant in sorted(onnx_path.parent.glob("modnet*.onnx")):
            if variant == onnx_path or "prev-alpha" in variant.stem:
                continue
            name, _, precision = variant.stem.partition(".")
            specs.append(ModelSpec(f"greenless {name}", "onnx", str(variant), precision or "fp32"))
    if "torch" not in skip:
        st = onnx_path.with_suffix(".safetensors")
        if not _torch_available():
            skipped.append(ModelResult(f"greenless {DEFAULT_MODEL}", "torch", str(st), note="skipped: PyTorch is not installed"))
        elif not st.is_file():
            skipped.append(ModelResult(f"greenless {DEFAULT_MODEL}", "torch", str(st), note="skipped: no packaged .safetensors"))
        else:
            specs.append(ModelSpec(f"greenless {DEFAULT_MODEL}", "torch", str(st), "fp32"))
    if "reference" not in skip:
        if reference is None:
            skipped.append(ModelResult("reference selfie segmentation", "reference", "", note="skipped: no reference model (--reference PATH)"))
        elif not reference.is_file():
            raise GreenlessError(f"{reference}: reference model not found")
        else:
            specs.append(ModelSpec("reference selfie segmentation", "reference", str(reference)))
    if "paper" not in skip:
        if paper_onnx is None:
            skipped.append(ModelResult(PAPER_NAME, "onnx", "", note=f"skipped: exporting it needs PyTorch ({install_hint('torch')})"))
        else:
            specs.append(ModelSpec(PAPER_NAME, "onnx", str(paper_onnx), "fp32"))
    return specs, skipped


def default_ref_size() -> int:
    """The stream job's reference size for its default model, as the registry says (288 for ``modnet``)."""
    from greenless.registry import DEFAULT_MODEL, packaged

    return packaged(DEFAULT_MODEL["stream"]).defaults("stream").ref_size


def busy_note(load: float | None = None, cores: int | None = None) -> str | None:
    """One line saying the machine is busy (its 1-minute load average above its logical cores), else None.

    Timings taken while other work holds the CPUs are that work's leftovers, not the machine's speed; the bench
    says so before it starts. ``load`` and ``cores`` default to ``os.getloadavg()`` and ``os.cpu_count()``
    (no load average, as on Windows: None).
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    cores = cores or os.cpu_count() or 1
    if load <= cores:
        return None
    return (f"the machine is busy (1-minute load {load:.1f} on {cores} cores): these figures are what is left "
            f"beside other work, not the machine's speed")


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


def _interleave(workers: list[Worker], plan_: list[tuple[str, str, int]], warmup: int, repeat: int,
                report: Callable[[str], None]) -> None:
    """Per measurement: warm every model up, then time them in turns (start rotating) of ``BLOCK`` back-to-back
    calls after one untimed call, until each has ``repeat`` timed calls; every model sees the same background
    load, and each is timed in the steady state a video or a server keeps it in."""
    for what, label, batch in plan_:
        active: list[tuple[Worker, str]] = []
        for w in workers:
            if w.result.note:
                continue
            try:
                answer = w.ask(op="prepare", what=what, label=label, batch=batch)
                if "skip" in answer:
                    continue
                if warmup:
                    w.ask(op="run", n=warmup)
                active.append((w, answer["network"]))
            except GreenlessError as exc:
                w.result.note = f"failed at {label} {what}: {exc}"
        times: dict[int, list[float]] = {id(w): [] for w, _ in active}
        rounds = -(-repeat // BLOCK)
        for r in range(rounds):
            report(f"{label} {what} batch {batch}: round {r + 1}/{rounds}")
            n = min(BLOCK, repeat - r * BLOCK)
            k = r % max(1, len(active))
            for w, _ in active[k:] + active[:k]:
                if w.result.note:
                    continue
                try:
                    w.ask(op="run", n=1)  # untimed: wakes the runtime's threads and caches after the others ran
                    times[id(w)] += w.ask(op="run", n=n)["ms"]
                except GreenlessError as exc:
                    w.result.note = f"failed at {label} {what}: {exc}"
                time.sleep(GAP_S)
        for w, network in active:
            if times[id(w)] and not w.result.note:
                timing = stats(times[id(w)])
                w.result.rows.append({"what": what, "input": label, "network": network, "batch": batch, **timing,
                                      "fps": batch * 1000.0 / timing["median_ms"] if timing["median_ms"] > 0 else None})


def run_benchmark(reference: Path | None = None, repeat: int = 20, warmup: int = 3, quick: bool = False,
                  skip: set[str] | None = None, threads: int | None = None, resolutions: list[str] | None = None,
                  on_progress: Callable[[str], None] | None = None) -> dict[str, Any]:
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
    report = on_progress or (lambda text: None)
    with tempfile.TemporaryDirectory(prefix="greenless-bench-") as tmp:
        paper_onnx, paper_note = None, ""
        if "paper" not in skip and _torch_available():
            report(f"exporting {PAPER_NAME}")
            try:
                paper_onnx = export_paper(Path(tmp) / "paper.onnx")
            except GreenlessError as exc:
                paper_note = f"skipped: export failed ({exc})"
        specs, skipped = plan(reference, skip, paper_onnx)
        if paper_note:
            skipped.append(ModelResult(PAPER_NAME, "onnx", "", note=paper_note))
        workers: list[Worker] = []
        failed: list[ModelResult] = []
        try:
            for spec in specs:
                report(f"loading {spec.name} ({spec.kind} {spec.precision})")
                try:
                    workers.append(Worker(spec, ref_size, threads))
                except GreenlessError as exc:
                    failed.append(ModelResult(spec.name, spec.kind, spec.path, spec.precision, note=f"failed: {exc}"))
            _interleave(workers, measurements(resolutions), warmup, repeat, report)
        finally:
            for w in workers:
                w.close()
        all_results = [w.result for w in workers] + failed + skipped
    add_ratios(all_results)
    for r in all_results:
        if r.name == PAPER_NAME:
            r.path = "(temporary export, random init)" if r.rows else r.path
    return {"machine": machine_info(),
            "settings": {"ref_size": ref_size, "warmup": warmup, "repeat": repeat, "quick": quick,
                         "resolutions": resolutions, "batch_sizes": list(BATCH_SIZES), "batch_input": BATCH_RESOLUTION,
                         "threads": threads},
            "models": [asdict(r) for r in all_results]}
