"""Network sizes on the network's own grid (multiples of 64 for the packaged modnet) against multiples of 32.

The packaged modnet's encoder sees the image at half size, so its deepest feature is 1/64 of the input
(greenless.card.network_stride). At a size that is a multiple of 32 but not of 64 (the real-time 288x512
frame) the encoder's last row or column covers padding and the semantic features, stretched back over the
image, sit off the person. This prints, for the stream recipe (one guide view, no detail stage) at each
reference size from 224 to 416 and for both rounding grids, the network size of a 1080x1920 portrait, the
mean MAD on the labelled portraits and the MAD per image; then the end-to-end time of a 288x512 frame (the
example portrait cover-fitted, as ``greenless bench`` times it) on both grids, side by side in turns.

    python benchmarks/stride_compare.py [--data ../shared/data/portraits] [--repeat 60]
    python benchmarks/stride_compare.py --data runs/data-extra --ref-sizes 288 --repeat 0   # another labelled set
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.data.folders import find_labelled
from greenless.evaluate.bench_worker import bench_frame
from greenless.matter import Matter
from greenless.media.images import load_rgb, read_alpha

SHARED = Path(__file__).resolve().parents[2] / "shared"
STRIDES = (32, 64)
REF_SIZES = tuple(range(224, 417, 32))
TURN = 5  # back-to-back timed calls per turn, as greenless bench does


def quality(matter: Matter, images: list[tuple[np.ndarray, np.ndarray]], ref_sizes: list[int]) -> str:
    """Markdown rows: stride, reference size, network size of a 1080x1920 frame, mean and per-image MAD (per
    image only for up to 8 images)."""
    base = matter.recipe
    rows = ["| stride | ref size | network size (1080x1920) | MAD | MAD per image |", "|---|---|---|---|---|"]
    for stride, ref in progress([(s, r) for s in STRIDES for r in ref_sizes], "sizes"):
        matter.recipe = dataclasses.replace(base, stride=stride, ref_size=ref)
        mads = [float(np.mean(np.abs(matter.matte(rgb) - truth))) for rgb, truth in images]
        h, w = matter.recipe.network_size(1080, 1920)
        each = " / ".join(f"{m:.4f}" for m in mads) if len(mads) <= 8 else f"({len(mads)} images)"
        rows.append(f"| {stride} | {ref} | {w}x{h} | {np.mean(mads):.4f} | {each} |")
    matter.recipe = base
    return "\n".join(rows)


def speed(matter: Matter, repeat: int) -> str:
    """Markdown rows: median and 90th-percentile end-to-end ms of a 288x512 frame on each grid, timed in turns."""
    frame = bench_frame(288, 512)
    base = matter.recipe
    recipes = {s: dataclasses.replace(base, stride=s) for s in STRIDES}
    times: dict[int, list[float]] = {s: [] for s in STRIDES}
    for recipe in recipes.values():  # warm up each size
        matter.recipe = recipe
        for _ in range(3):
            matter.matte(frame)
    for _ in progress(range(max(1, repeat // TURN)), "timing turns"):
        for stride, recipe in recipes.items():
            matter.recipe = recipe
            for _ in range(TURN):
                start = time.perf_counter()
                matter.matte(frame)
                times[stride].append((time.perf_counter() - start) * 1000)
    matter.recipe = base
    rows = ["| stride | network size | median ms | p90 ms | fps |", "|---|---|---|---|---|"]
    for stride, recipe in recipes.items():
        h, w = recipe.network_size(288, 512)
        median = float(np.median(times[stride]))
        rows.append(f"| {stride} | {w}x{h} | {median:.1f} | {np.percentile(times[stride], 90):.1f} | {1000 / median:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "portraits", help="a labelled folder")
    parser.add_argument("--ref-sizes", type=int, nargs="+", default=list(REF_SIZES), help="reference sizes to score")
    parser.add_argument("--repeat", type=int, default=60, help="timed frames per grid (0: no timing)")
    args = parser.parse_args()
    samples = find_labelled(need_path(args.data, "the labelled portraits, --data", "dir"))
    images = [(load_rgb(s.image), read_alpha(s.alpha)) for s in samples]
    matter = Matter(stream=True, threads=2)
    print(quality(matter, images, args.ref_sizes))
    if len(samples) <= 8:
        print(f"\nPer image, in this order: {', '.join(s.stem for s in samples)}.")
    if args.repeat > 0:
        print("\n" + speed(matter, args.repeat))


if __name__ == "__main__":
    run_script(main)
