"""Child process of ``greenless bench``: holds one model and times single calls on request.

Protocol: JSON lines. The worker answers ``{"ready": ...}`` once loaded, then to each command on stdin
(``prepare``, ``run``, ``stats``, ``quit``) with one line on stdout (``{"error": ...}`` on failure).
One process per model keeps each model's peak RSS its own; the parent interleaves the calls of all
workers, so every model sees the same background load. ``--export-paper PATH`` instead exports the
paper-faithful MobileNetV2 MODNet (random init) to ONNX and prints ``{"path": ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Input frames as (label W x H, height, width).
RESOLUTIONS = (("512x512", 512, 512), ("512x288", 288, 512), ("1280x720", 720, 1280), ("1920x1080", 1080, 1920))
SIZES = {label: (h, w) for label, h, w in RESOLUTIONS}


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


def synthetic_frame(height: int, width: int) -> np.ndarray:
    """A deterministic synthetic RGB frame (the bare network's speed does not depend on content)."""
    rng = np.random.default_rng(height * 10007 + width)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


EXAMPLE_PHOTO = Path(__file__).resolve().parents[3] / "examples" / "astronaut.jpg"


def bench_frame(height: int, width: int) -> np.ndarray:
    """The frame end-to-end timings use: the clone's example portrait cover-fitted to height x width.

    A guided pipeline's cost depends on what it sees (the guide's person, its bounds), so it is timed on a
    real portrait, not noise; outside a clone (no ``examples/``) the synthetic frame stands in.
    """
    if not EXAMPLE_PHOTO.is_file():
        return synthetic_frame(height, width)
    from PIL import Image

    from greenless.pipeline.compose import cover_resize

    return cover_resize(np.asarray(Image.open(EXAMPLE_PHOTO).convert("RGB")), height, width)


class TimedModel:
    """One loaded model: ``prepare`` a measurement, then ``run`` it and get the call times in ms."""

    def __init__(self, kind: str, path: str, ref_size: int, threads: int | None = None) -> None:
        self.kind = kind
        self.call: Callable[[], Any] | None = None
        if kind == "reference":
            from greenless.evaluate.reference import SIZE, ReferenceSegmenter

            seg = ReferenceSegmenter(path, threads=threads)
            self._net = lambda x: seg.session.run(None, {seg.input_name: x})
            self._net_input = lambda h, w, b: np.zeros((b, SIZE, SIZE, 3), np.float32)
            self._net_size = lambda h, w: (SIZE, SIZE)
            self._end_to_end = lambda rgb: seg(rgb, mode="squash")
            return
        from greenless.matter import Matter

        if kind == "torch" and threads:
            import torch

            torch.set_num_threads(threads)
        # The stream job (video, webcam): one guide view per frame, as real time runs it.
        matter = Matter(path, engine=kind, ref_size=ref_size, threads=threads, device="cpu" if kind == "torch" else None,
                        stream=True)
        channels = matter.engine.in_channels
        rng = np.random.default_rng(0)
        self._net = matter.engine.run
        self._net_input = lambda h, w, b: rng.uniform(-1, 1, (b, channels, h, w)).astype(np.float32)
        self._net_size = matter.recipe.network_size  # the recipe's size (its preprocessing rule included)
        self._end_to_end = matter.matte

    def prepare(self, what: str, label: str, batch: int) -> dict[str, Any]:
        """Set up one measurement; returns the network size (W x H) or why it does not apply."""
        height, width = SIZES[label]
        nh, nw = self._net_size(height, width)
        if batch > 1 and (self.kind == "reference" or what != "network"):
            return {"skip": "fixed batch size 1"}
        if what == "network":
            x = self._net_input(nh, nw, batch)
            self.call = lambda: self._net(x)
        else:
            frame = bench_frame(height, width)
            self.call = lambda: self._end_to_end(frame)
        return {"network": f"{nw}x{nh}"}

    def run(self, n: int) -> list[float]:
        """Call the prepared measurement ``n`` times; wall time of each call in milliseconds."""
        if self.call is None:
            raise RuntimeError("run before prepare")
        times = []
        for _ in range(n):
            start = time.perf_counter()
            self.call()
            times.append((time.perf_counter() - start) * 1000.0)
        return times


def serve(spec: dict[str, Any], ref_size: int, threads: int | None) -> None:
    """Load the model, then answer commands from stdin until ``quit`` or end of input."""
    proto = sys.stdout
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the protocol

    def send(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    baseline = peak_rss_mb()
    start = time.perf_counter()
    try:
        model = TimedModel(spec["kind"], spec["path"], ref_size, threads)
    except Exception as exc:  # report any load failure as one line; the parent shows it as a note
        send({"error": f"cannot load {spec['path']}: {(str(exc).splitlines() or [type(exc).__name__])[0]}"})
        return
    send({"ready": True, "load_s": time.perf_counter() - start, "baseline_rss_mb": baseline})
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "prepare":
                send(model.prepare(cmd["what"], cmd["label"], int(cmd["batch"])))
            elif cmd["op"] == "run":
                send({"ms": model.run(int(cmd["n"]))})
            elif cmd["op"] == "stats":
                send({"peak_rss_mb": peak_rss_mb()})
            else:
                break
        except Exception as exc:  # e.g. out of memory at 1080p: the parent drops this model with a note
            send({"error": (str(exc).splitlines() or [type(exc).__name__])[0]})


def export_paper_model(path: Path) -> Path:
    """Export the paper-faithful MobileNetV2 MODNet (random init) to ONNX at ``path``."""
    import torch

    from greenless.export import export_onnx
    from greenless.model import build_model

    torch.manual_seed(0)
    return export_onnx(build_model({"encoder": "mobilenetv2"}), path)


def main(argv: list[str]) -> None:
    """``--serve SPEC_JSON --ref-size N [--threads T]`` or ``--export-paper PATH``."""
    import argparse

    parser = argparse.ArgumentParser(prog="greenless.evaluate.bench_worker")
    parser.add_argument("--serve")
    parser.add_argument("--export-paper")
    parser.add_argument("--ref-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.export_paper:
        print(json.dumps({"path": str(export_paper_model(Path(args.export_paper)))}))
    else:
        serve(json.loads(args.serve), args.ref_size, args.threads)


if __name__ == "__main__":
    main(sys.argv[1:])
