"""Guided against unguided, for every packaged model, beside the reference model: one table for the README.

For each labelled portrait (``../shared/data/portraits`` by default; any PPM-100 style folder) and each
packaged model whose weights are here (``modnet-paper`` only once rebuilt), the network's matte (``--refine none``:
this table is about the guide; the photo detail stage after it is scored by ``greenless eval``) with ``--guide none`` and, for 4-channel models, with ``--guide selfie``, with the
defaults of each job (photo: its photo reference size and both guide views; stream: its stream reference
size, one view; ``--ref-sizes`` adds photo rows at other sizes); the reference segmentation model is scored
squashed to 256x256 (as the README's first table) and letterboxed (as the guide uses it). Columns: mean
MSE and MAD over the images, and the background floor: the mean alpha, and the share of pixels above
1/255, on background far from the person (ground truth 0 and more than 5% of the image diagonal away
from any pixel with alpha > 0), where a clean matte is exactly 0.

    python benchmarks/guide_compare.py                  # markdown table on stdout
    python benchmarks/guide_compare.py --ref-sizes 288 512 --json runs/guide_compare.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.data.folders import find_labelled
from greenless.errors import GreenlessError
from greenless.matter import Matter
from greenless.media.images import load_rgb, write_bytes_atomic
from greenless.pipeline.guide import SelfieSegmenter
from greenless.registry import MODELS, packaged

SHARED = Path(__file__).resolve().parents[2] / "shared"


def far_background(truth: np.ndarray) -> np.ndarray:
    """Pixels with ground truth 0 that lie more than 5% of the diagonal away from any alpha > 0."""
    h, w = truth.shape
    dist = cv2.distanceTransform((truth <= 0).astype(np.uint8), cv2.DIST_L2, 5)
    return dist > 0.05 * np.hypot(h, w)


def scores(pred: np.ndarray, truth: np.ndarray, far: np.ndarray) -> dict[str, float]:
    """MSE, MAD and the background floor of one matte."""
    return {"mse": float(np.mean((pred - truth) ** 2)), "mad": float(np.mean(np.abs(pred - truth))),
            "floor": float(pred[far].mean()) if far.any() else 0.0,
            "floor_share": float((pred[far] > 1 / 255).mean()) if far.any() else 0.0}


def weights_present(model: str) -> bool:
    """True when the packaged ``model``'s ONNX weights are here (a set that ships as a card is not, until rebuilt)."""
    try:
        packaged(model).path("onnx")
    except GreenlessError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=SHARED / "data" / "portraits")
    parser.add_argument("--ref-sizes", type=int, nargs="*", default=[], help="Reference sizes to add to each model's own.")
    parser.add_argument("--json", type=Path, help="Also write every per-image score here.")
    args = parser.parse_args()
    pairs = find_labelled(need_path(args.data, "the labelled folder", "dir"))
    images = [(p.image.stem, load_rgb(p.image), load_rgb(p.alpha)[..., 0].astype(np.float32) / 255.0) for p in pairs]
    rows: dict[str, dict[str, dict[str, float]]] = {}
    segmenter = SelfieSegmenter()
    for mode in ("squash", "pad"):
        rows[f"reference ({'squashed' if mode == 'squash' else 'letterboxed'})"] = {
            stem: scores(segmenter(rgb, mode=mode), truth, far_background(truth)) for stem, rgb, truth in images}
    for model in progress([m for m in MODELS if weights_present(m)], "models"):
        for job in ("photo", "stream"):  # each job's defaults from the registry (reference size, guide views)
            base = Matter(model=model, stream=job == "stream")
            extra = [r for r in args.ref_sizes if r != base.ref_size] if job == "photo" else []
            for ref in [base.ref_size, *extra]:
                guides = ["none", "selfie"] if base.engine.in_channels == 4 else ["none"]
                for guide in guides:
                    matter = Matter(model=model, ref_size=ref, guide=guide, stream=job == "stream", refine="none")
                    rows[f"{model} {job} ref {ref}, guide {guide}"] = {
                        stem: scores(matter.matte(rgb), truth, far_background(truth)) for stem, rgb, truth in images}
    print("| model | MSE | MAD | far-background mean alpha | far-background pixels > 1/255 |")
    print("|---|---|---|---|---|")
    for name, per in rows.items():
        mean = {k: float(np.mean([s[k] for s in per.values()])) for k in ("mse", "mad", "floor", "floor_share")}
        print(f"| {name} | {mean['mse']:.4f} | {mean['mad']:.4f} | {mean['floor']:.4f} | {mean['floor_share']:.1%} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(args.json, json.dumps(rows, indent=2).encode())


if __name__ == "__main__":
    run_script(main)
