"""Weight sets side by side as each job runs them: the stream default, the photo default, the photo network alone.

For every weights file given (``.onnx``, or ``.safetensors`` run by the torch engine) and every labelled portrait
(``../shared/data/portraits`` by default), the matte of three recipes (greenless.evaluate.jobs, the ones a card's
``validation`` records): ``stream`` (video and webcam: reference size 288, one guide view, no detail stage),
``photo`` (reference size 384, both guide views, the detail stage) and ``photo, network alone`` (the same with
``--refine none``); the sizes are the shipped set's, given to every set (a training run's card has no photo size). Columns: mean
MSE, MAD and Band MAD (MAD within 1% of the short side of a true edge, greenless.evaluate.metrics.band_mad),
then MAD and Band MAD per image, so a mean carried by one picture shows. This is how issue 17's training runs
(loss presets, the self-trained set) were compared with the shipped weights.

    python benchmarks/jobs_compare.py src/greenless/weights/modnet.onnx runs/modnet-self/final.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


from greenless.cli.script import need_path, progress, run_script
from greenless.data.folders import find_labelled
from greenless.evaluate.jobs import score_jobs
from greenless.media.images import load_rgb, read_alpha

SHARED = Path(__file__).resolve().parents[2] / "shared"


def markdown(results: dict[str, dict[str, dict]], stems: list[str]) -> str:
    head = ("| weights | job | MSE | MAD | Band MAD | MAD per image | Band MAD per image |\n"
            "|---|---|---|---|---|---|---|")
    rows = [head]
    for name, jobs in results.items():
        for job, scores in jobs.items():
            mean, per = scores["mean"], scores["per_image"]
            rows.append(f"| {name} | {job} | {mean['mse']:.5f} | {mean['mad']:.5f} | {mean['band']:.4f} | "
                        + " / ".join(f"{per[s]['mad']:.4f}" for s in stems) + " | "
                        + " / ".join(f"{per[s]['band']:.4f}" for s in stems) + " |")
    return "\n".join(rows) + f"\n\nPer image, in this order: {', '.join(stems)}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, nargs="+", help=".onnx or .safetensors weight sets")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "portraits", help="a labelled folder")
    parser.add_argument("--stream-ref-size", type=int, default=288, help="the stream's reference size (shipped: 288)")
    parser.add_argument("--photo-ref-size", type=int, default=384, help="the photo's reference size (shipped: 384)")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-image figures here")
    args = parser.parse_args()
    sets = [need_path(w, "the weights", "file") for w in args.weights]
    samples = find_labelled(need_path(args.data, "the labelled portraits, --data", "dir"))
    images = [(s.stem, load_rgb(s.image), read_alpha(s.alpha)) for s in samples]
    results = {str(w): score_jobs(w, images, args.stream_ref_size, args.photo_ref_size,
                                  steps=lambda jobs, w=w: progress(jobs, f"scoring {w.name}")) for w in sets}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results, [stem for stem, _, _ in images]))


if __name__ == "__main__":
    run_script(main)
