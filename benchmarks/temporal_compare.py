"""Previous-frame-alpha weights against the 3-channel model with and without OFD, on real and synthetic clips.

Real clips (../shared/data/videos) have no ground truth: they give the flicker measure (mean alpha change
on pixels whose input did not change). Synthetic clips give ground truth: a slow camera pan and zoom over
each validation portrait (../shared/data/portraits, never trained on) with a little sensor noise per
frame; the alpha is cropped alike. They give MAD against the truth and dtSSD (temporal coherence).
Prints Markdown tables; run from the repository root:

    python benchmarks/temporal_compare.py [--three W.onnx] [--four W4.onnx] [--max-frames 60] [--pan-frames 40]
    python benchmarks/temporal_compare.py --guided      # a guided model: the guide on every frame vs feedback

``--guided`` compares the two ways a guided 4-channel model can fill its hint channel on video: the guide
of every frame (rows "3-ch", the same model with no memory) against its own previous matte (rows
"prev-alpha"; the first frame gets the guide), each with and without OFD.

The README figures compare the packaged modnet with its 3-channel sibling (configs/modnet-3ch.toml, same
data and steps), shipped to runs/ with scripts/ship_weights.py --name modnet-3ch --out runs/modnet-3ch.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from greenless import Matter
from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError
from greenless.evaluate.temporal import FlickerMeter, dtssd
from greenless.media.images import load_rgb
from greenless.media.video import open_video
from greenless.pipeline.video import DEFAULT_OFD_TOL, OneFrameDelay

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
METHODS = ("3-ch", "3-ch + OFD", "prev-alpha", "prev-alpha + OFD")


def pan_clip(image: np.ndarray, alpha: np.ndarray, frames: int, short_side: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(frame, true alpha) of a slow pan and zoom over a still photo, with Gaussian sensor noise per frame."""
    rng = np.random.default_rng(seed)
    h, w = alpha.shape
    first = int(min(h, w) * 0.9)
    size = (round(w * 0.9 * short_side / first), round(h * 0.9 * short_side / first))  # one size for every frame
    for t in range(frames):
        s = t / max(1, frames - 1)
        crop = 0.9 - 0.05 * s  # zoom in a little
        ch, cw = int(h * crop), int(w * crop)
        y0, x0 = int((h - ch) * (0.2 + 0.6 * s)), int((w - cw) * (0.7 - 0.4 * s))
        frame = cv2.resize(image[y0:y0 + ch, x0:x0 + cw], size, interpolation=cv2.INTER_AREA).astype(np.float32)
        frame = np.clip(frame + rng.normal(0, 2.0, frame.shape), 0, 255).astype(np.uint8)
        truth = cv2.resize(alpha[y0:y0 + ch, x0:x0 + cw], size, interpolation=cv2.INTER_AREA)
        yield frame, truth


def run_methods(three: Matter, four: Matter, frames: Iterator[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Alpha sequences of the four methods over one clip (OFD output re-aligned to input order)."""
    out: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    ofd3, ofd4 = OneFrameDelay(DEFAULT_OFD_TOL), OneFrameDelay(DEFAULT_OFD_TOL)
    prev = None
    for image in frames:
        a3 = three.matte(image)
        a4 = four.matte(image, prev_alpha=prev)
        prev = a4
        out["3-ch"].append(a3)
        out["prev-alpha"].append(a4)
        out["3-ch + OFD"] += [a for a, _ in ofd3.push(a3, image)]
        out["prev-alpha + OFD"] += [a for a, _ in ofd4.push(a4, image)]
    out["3-ch + OFD"] += [a for a, _ in ofd3.flush()]
    out["prev-alpha + OFD"] += [a for a, _ in ofd4.flush()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--three", type=Path, default=None, help="3-channel weights (default: modnet-paper, once rebuilt "
                        "with scripts/rebuild_weights.py modnet-paper: it ships as a card only).")
    parser.add_argument("--four", type=Path, default=None, help="4-channel weights (default: the packaged modnet).")
    parser.add_argument("--max-frames", type=int, default=60, help="Frames per real clip.")
    parser.add_argument("--pan-frames", type=int, default=40, help="Frames per synthetic pan.")
    parser.add_argument("--pan-size", type=int, default=360, help="Short side of the synthetic frames.")
    parser.add_argument("--no-real", action="store_true", help="Only the synthetic clips.")
    parser.add_argument("--guided", action="store_true",
                        help="Guided model (--four, default the packaged modnet): the guide on every frame vs feedback.")
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data: videos/ and portraits/")
    args = parser.parse_args()
    for given, what in ((args.three, "the 3-channel weights, --three"), (args.four, "the 4-channel weights, --four")):
        if given is not None:
            need_path(given, what, "file")
    need_path(args.data / "portraits" / "image", "the validation portraits, --data", "dir")
    four = Matter(args.four, model=None if args.four else "modnet", guide="selfie" if args.guided else None,
                  stream=True)
    three = four if args.guided else Matter(args.three, model=None if args.three else "modnet-paper")
    if args.guided:
        print('"3-ch" rows: the guide on every frame; "prev-alpha" rows: the previous matte as the hint\n')
    if four.engine.in_channels != 4:
        raise GreenlessError(f"{four.weights} is not a 4-channel model")
    start = time.perf_counter()
    print(f"3-channel: {three.weights.name} (ref {three.ref_size}); 4-channel: {four.weights.name} (ref {four.ref_size})\n")

    clips = [] if args.no_real else [Path(p) for p in sorted(glob.glob(str(args.data / "videos" / "asl" / "*.mkv")))] + \
        [need_path(args.data / "videos" / "thoughtful-35590.mp4", "the portrait video (or --no-real)", "file")]
    flick = {m: [] for m in METHODS}
    counts = []
    for clip in progress(clips, "real clips"):
        with open_video(clip) as reader:
            images = [f.image for f in itertools.islice(iter(reader), args.max_frames)]
        seqs = run_methods(three, four, iter(images))
        for m in METHODS:
            meter = FlickerMeter()
            for image, alpha in zip(images, seqs[m]):
                meter.update(image, alpha)
            flick[m].append(meter.value)
        counts.append(len(images))
    if clips:
        print(f"Real clips ({len(clips)} clips, {sum(counts)} frames): flicker, frame-weighted mean (lower is steadier)\n")
        print("| method | flicker | vs 3-ch |")
        print("|---|---:|---:|")
        base = np.average(flick["3-ch"], weights=counts)
        for m in METHODS:
            v = np.average(flick[m], weights=counts)
            print(f"| {m} | {v:.5f} | {100 * (v / base - 1):+.1f}% |")

    mads = {m: [] for m in METHODS}
    dts = {m: [] for m in METHODS}
    portraits = args.data / "portraits"
    stems = sorted(p.stem for p in (portraits / "image").iterdir())
    for i, stem in progress(list(enumerate(stems)), "synthetic pans"):
        image = load_rgb(next((portraits / "image").glob(stem + ".*")))
        alpha = cv2.imread(str(next((portraits / "alpha").glob(stem + ".*"))), cv2.IMREAD_GRAYSCALE)
        pairs = list(pan_clip(image, alpha, args.pan_frames, args.pan_size, seed=i))
        truth = [t.astype(np.float32) / 255.0 for _, t in pairs]
        seqs = run_methods(three, four, iter(f for f, _ in pairs))
        for m in METHODS:
            pred = [a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a for a in seqs[m]]
            mads[m].append(float(np.mean([np.abs(p - t).mean() for p, t in zip(pred, truth)])))
            dts[m].append(dtssd(pred, truth))
    print(f"\nSynthetic pans over the {len(stems)} validation portraits ({args.pan_frames} frames each, short side "
          f"{args.pan_size}, noise sigma 2): mean over clips\n")
    print("| method | MAD | dtSSD |")
    print("|---|---:|---:|")
    for m in METHODS:
        print(f"| {m} | {np.mean(mads[m]):.4f} | {np.mean(dts[m]):.4f} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    run_script(main)
