"""Weight sets side by side as each job runs them: the stream default, the photo default, the photo network alone.

For every weights file given (``.onnx``, or ``.safetensors`` run by the torch engine) and every labelled portrait
(``../shared/data/portraits`` by default), the matte of three recipes (greenless.pipeline.recipe): ``stream``
(video and webcam: reference size 288, one guide view, no detail stage), ``photo`` (reference size 384, both
guide views, the detail stage) and ``photo, network alone`` (the same with ``--refine none``). Columns: mean
MSE, MAD and Band MAD (MAD within 1% of the short side of a true edge, greenless.evaluate.metrics.band_mad),
then MAD and Band MAD per image, so a mean carried by one picture shows. This is how issue 17's training runs
(loss presets, the self-trained set) were compared with the shipped weights.

    python benchmarks/jobs_compare.py src/greenless/weights/modnet.onnx runs/modnet-self/final.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.data.folders import find_labelled
from greenless.evaluate.metrics import band_mad
from greenless.matter import Matter
from greenless.media.images import load_rgb, read_alpha

SHARED = Path(__file__).resolve().parents[2] / "shared"
#: The three recipes compared: (row name, Matter arguments).
JOBS = (("stream", {"stream": True, "ref_size": 288}),
        ("photo", {"ref_size": 384}),
        ("photo, network alone", {"ref_size": 384, "refine": "none"}))


def score(weights: Path, kwargs: dict, images: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Per-image MSE, MAD and Band MAD of one recipe of ``weights``."""
    engine = "onnx" if weights.suffix == ".onnx" else "torch"
    matter = Matter(weights=weights, engine=engine, **kwargs)
    out = {}
    for stem, rgb, truth in images:
        pred = matter.matte(rgb)
        out[stem] = {"mse": float(np.mean((pred - truth) ** 2)), "mad": float(np.mean(np.abs(pred - truth))),
                     "band": band_mad(pred, truth)}
    return out


def markdown(results: dict[str, dict[str, dict[str, dict]]], stems: list[str]) -> str:
    head = ("| weights | job | MSE | MAD | Band MAD | MAD per image | Band MAD per image |\n"
            "|---|---|---|---|---|---|---|")
    rows = [head]
    for name, jobs in results.items():
        for job, per in jobs.items():
            mean = {k: float(np.mean([per[s][k] for s in stems])) for k in ("mse", "mad", "band")}
            rows.append(f"| {name} | {job} | {mean['mse']:.5f} | {mean['mad']:.5f} | {mean['band']:.4f} | "
                        + " / ".join(f"{per[s]['mad']:.4f}" for s in stems) + " | "
                        + " / ".join(f"{per[s]['band']:.4f}" for s in stems) + " |")
    return "\n".join(rows) + f"\n\nPer image, in this order: {', '.join(stems)}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, nargs="+", help=".onnx or .safetensors weight sets")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "portraits", help="a labelled folder")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-image figures here")
    args = parser.parse_args()
    sets = [need_path(w, "the weights", "file") for w in args.weights]
    samples = find_labelled(need_path(args.data, "the labelled portraits, --data", "dir"))
    images = [(s.stem, load_rgb(s.image), read_alpha(s.alpha)) for s in samples]
    results: dict[str, dict[str, dict]] = {}
    for weights, (job, kwargs) in progress([(w, j) for w in sets for j in JOBS], "scoring"):
        results.setdefault(str(weights), {})[job] = score(weights, kwargs, images)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results, [stem for stem, _, _ in images]))


if __name__ == "__main__":
    run_script(main)
