"""Flicker of video mattes with and without OFD on the shared clips, with the weights' own stream policy.

Flicker = mean |alpha_t - alpha_{t-1}| on pixels whose input did not change (greenless.evaluate.temporal).
Prints a Markdown table; run from the repository root:

    python benchmarks/flicker.py [--weights W.onnx] [--ref-size N] [--max-frames N] [clips...]
"""

from __future__ import annotations

import argparse
import glob
import itertools
import time
from pathlib import Path

from greenless import Matter
from greenless.cli.script import need_path, progress, run_script
from greenless.evaluate.temporal import FlickerMeter
from greenless.media.video import open_video
from greenless.pipeline.video import DEFAULT_OFD_TOL, OneFrameDelay

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"


def measure(matter: Matter, clip: Path, max_frames: int | None, tol: float, batch: int) -> dict:
    """Flicker of one clip without OFD and with OFD, the hint channel as ``greenless video`` fills it (the
    weights' stream policy from ``Matter.stream()``: the guide every frame, or previous-alpha feedback)."""
    stream = matter.stream(ofd=False)  # OFD is applied below, after the raw column is measured
    raw, ofd_meter, ofd = FlickerMeter(), FlickerMeter(), OneFrameDelay(tol)
    frames = 0
    with open_video(clip) as reader:
        it = itertools.islice(iter(reader), max_frames) if max_frames else iter(reader)
        for alpha, image in stream.run((f.image for f in it), batch=batch):
            frames += 1
            raw.update(image, alpha)
            for a, img in ofd.push(alpha, image):
                ofd_meter.update(img, a)
        for a, img in ofd.flush():
            ofd_meter.update(img, a)
    return {"clip": clip.name, "frames": frames, "static": raw.static_fraction, "raw": raw.value, "ofd": ofd_meter.value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--ref-size", type=int, default=None)
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--tol", type=float, default=DEFAULT_OFD_TOL)
    args = parser.parse_args()
    clips = args.clips or [Path(p) for p in sorted(glob.glob(str(SHARED / "asl" / "*.mkv")))] + \
        [SHARED / "thoughtful-35590.mp4"]
    for clip in clips:
        need_path(clip, "the clip", "file")
    if args.weights is not None:
        need_path(args.weights, "the weights, --weights", "file")
    matter = Matter(args.weights, ref_size=args.ref_size, stream=True)
    label = "prev-alpha" if matter.stream().policy.feedback else f"guide {matter.guide}"
    print(f"weights: {matter.weights}  ref_size: {matter.ref_size}  OFD tol: {args.tol}  "
          f"in_channels: {matter.engine.in_channels}")
    print(f"| clip | frames | static px | flicker ({label}) | flicker ({label} + OFD) | reduction |")
    print("|---|---:|---:|---:|---:|---:|")
    rows, start = [], time.perf_counter()
    for clip in progress(clips, "clips"):
        row = measure(matter, clip, args.max_frames, args.tol, args.batch)
        rows.append(row)
        red = 100 * (1 - row["ofd"] / row["raw"]) if row["raw"] else 0.0
        print(f"| {row['clip']} | {row['frames']} | {100 * row['static']:.0f}% | {row['raw']:.5f} | {row['ofd']:.5f} "
              f"| {red:.1f}% |", flush=True)
    raw = sum(r["raw"] * r["frames"] for r in rows) / sum(r["frames"] for r in rows)
    ofd = sum(r["ofd"] * r["frames"] for r in rows) / sum(r["frames"] for r in rows)
    print(f"| **all (frame-weighted)** | {sum(r['frames'] for r in rows)} | | {raw:.5f} | {ofd:.5f} "
          f"| {100 * (1 - ofd / raw) if raw else 0.0:.1f}% |")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    run_script(main)
