"""The path from the paper network to the real-time default, one lever at a time, timed side by side.

Every step is an ONNX model timed on a 288x512 frame (the issue's real-time size) with onnxruntime, all
sessions in one process taking turns of a few back-to-back calls (as ``greenless bench`` does), so a busy
machine slows every row alike and the ratios hold.
Architectural steps in between the two trained sets are timed with random weights (speed does not
depend on them); MAD on the shared portraits is given for the trained sets and their int8 exports.
Prints a Markdown table for the README. Needs the torch extra; run from the repository root:

    python benchmarks/realtime_path.py [--threads 2] [--repeat 30] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from greenless.cli.script import need_path, progress, run_script

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PAPER = {"encoder": "mobilenetv2"}
EFFNET = {"encoder": "efficientnet-lite0"}
BN = {**EFFNET, "norm": "bn"}
SEPARABLE = {**BN, "separable": True}
NARROW = {**SEPARABLE, "fusion_channels": 16}
HALF = {**NARROW, "semantic_scale": 0.5}
BLOCK = 5  # back-to-back timed calls per turn, as greenless bench does
BASELINE = 2  # the paper export with onnxruntime's full optimisation, as greenless bench times it


def export_random(config: dict, path: Path) -> Path:
    """ONNX export of an untrained network (for timing only)."""
    import torch

    from greenless.export import export_onnx
    from greenless.model import build_model

    torch.manual_seed(0)
    return export_onnx(build_model(config).eval(), path)


def int8_of(src: Path, dst: Path, ref_size: int, data: Path = SHARED) -> Path:
    """Static int8 (QDQ) of ``src``, calibrated on the shared photos, backgrounds and video frames prepared by the
    stream recipe of ``src`` (its card, its input channels) at ``ref_size``."""
    from greenless.card import card_path, read_card
    from greenless.engines.onnx import OnnxEngine
    from greenless.export import quantize_int8
    from greenless.export_check import calibration_images
    from greenless.pipeline.recipe import recipe_for

    engine = OnnxEngine(src, device="cpu")
    recipe = recipe_for(engine.card or read_card(card_path(src)), engine.in_channels, "stream", ref_size=ref_size)
    images = calibration_images([data / "photos", data / "backgrounds", data / "videos"], 24)
    return quantize_int8(src, dst, images, recipe)


def session(path: Path, threads: int, level: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                     "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                     "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def mad_on_portraits(weights: Path, ref_size: int | None = None, data: Path = SHARED) -> tuple[float, float, int]:
    """Mean MSE and MAD on the shared portraits at the weights' own reference size (or ``ref_size``)."""
    from greenless.evaluate.runner import evaluate
    from greenless.matter import Matter

    ref_size = Matter(weights).ref_size if ref_size is None else ref_size
    result = evaluate(data / "portraits", weights=weights, ref_size=ref_size)
    mean = result.ours.to_dict()["mean"]
    return mean["mse"], mean["mad"], ref_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.03, help="Pause between two calls (s).")
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data: portraits/, photos/, backgrounds/, videos/")
    args = parser.parse_args()
    for sub in ("portraits", "photos", "backgrounds", "videos"):
        need_path(args.data / sub, f"the {sub} of the shared data, --data", "dir")

    from greenless.matter import Matter
    from greenless.registry import packaged

    default = packaged("modnet").path("onnx")
    ref_size = Matter(default).ref_size
    with tempfile.TemporaryDirectory(prefix="greenless-path-") as tmp:
        t = Path(tmp)
        print("exporting the steps' networks and calibrating the int8 one ...", file=sys.stderr, flush=True)
        steps = [  # (label, onnx, graph optimisation level, threads, trained weights for MAD)
            ("paper MODNet (MobileNetV2, IBNorm), onnxruntime basic graph optimisation, 1 thread",
             export_random(PAPER, t / "paper.onnx"), "basic", 1, None),
            ("+ 2 threads", t / "paper.onnx", "basic", args.threads, None),
            ("+ full graph optimisation (fusions, NCHWc blocked layout)", t / "paper.onnx", "all", args.threads, None),
            ("EfficientNet-Lite0 encoder (modnet-paper's architecture)", export_random(EFFNET, t / "effnet.onnx"),
             "all", args.threads, None),
            ("+ BatchNorm instead of IBNorm (folds into the convolutions)", export_random(BN, t / "bn.onnx"),
             "all", args.threads, None),
            ("+ depthwise-separable branch convolutions", export_random(SEPARABLE, t / "sep.onnx"), "all",
             args.threads, None),
            ("+ 16-channel fusion at full resolution", export_random(NARROW, t / "narrow.onnx"), "all",
             args.threads, None),
            ("+ encoder and semantic branch at 1/2 resolution", export_random(HALF, t / "half.onnx"), "all",
             args.threads, None),
            ("+ previous-alpha input channel (packaged modnet, trained)", default, "all", args.threads, default),
            ("+ static int8 (QDQ, calibrated on real images)", int8_of(default, t / "modnet.int8.onnx", ref_size, args.data),
             "all", args.threads, t / "modnet.int8.onnx"),
        ]
        sessions = [session(path, threads, level) for _, path, level, threads, _ in steps]
        rng = np.random.default_rng(0)
        inputs = [rng.uniform(-1, 1, (1, sess.get_inputs()[0].shape[1], 288, 512)).astype(np.float32)
                  for sess in sessions]
        times: list[list[float]] = [[] for _ in steps]
        for i, sess in enumerate(sessions):  # warm-up
            for _ in range(args.warmup):
                sess.run(None, {sess.get_inputs()[0].name: inputs[i]})
        for r in progress(range(-(-args.repeat // BLOCK)), "timing rounds"):
            order = list(range(len(sessions)))
            order = order[r % len(order):] + order[:r % len(order)]
            for i in order:
                sess, feed = sessions[i], {sessions[i].get_inputs()[0].name: inputs[i]}
                time.sleep(args.gap)
                sess.run(None, feed)  # untimed: wakes the thread pool and caches after the others ran
                for _ in range(min(BLOCK, args.repeat - r * BLOCK)):
                    start = time.perf_counter()
                    sess.run(None, feed)
                    times[i].append((time.perf_counter() - start) * 1000.0)
        del sessions
        # The int8 file has no card beside it: score it at its source's reference size.
        quality = {str(w): mad_on_portraits(w, ref_size if w.name.endswith(".int8.onnx") else None, args.data)
                   for *_, w in progress([s for s in steps if s[-1] is not None], "scoring on the portraits")}
    base = float(np.median(times[BASELINE]))
    print(f"288x512 frame, {args.threads} threads from row 2 on, median of {args.repeat} runs in turns of 5; "
          f"speed relative to row {BASELINE + 1} (the paper network as `greenless bench` runs it).\n")
    print("| step | median ms | fps | speed vs paper export | MSE | MAD (portraits, ref size) |")
    print("|---|---|---|---|---|---|")
    for (label, *_, weights), t_ms in zip(steps, times):
        med = float(np.median(t_ms))
        mse, mad, ref = quality.get(str(weights), (None, None, None))
        q = (f"{mse:.4f} | {mad:.4f} ({ref})" if mad is not None else "– | – (not trained)")
        print(f"| {label} | {med:.1f} | {1000 / med:.1f} | {base / med:.2f}x | {q} |")


if __name__ == "__main__":
    run_script(main)
