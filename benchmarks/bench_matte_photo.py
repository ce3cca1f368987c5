"""Time one large photo through ``greenless matte``'s stages (decode, matte, compose, write), warm.

Usage: python benchmarks/bench_matte_photo.py [--size 4000x3000] [--repeat 3] [--data PORTRAITS] [--stem STEM]
The photo is a real portrait from ../shared/data/portraits upscaled to the size asked for; the
composite steps use its ground-truth matte too, so foreground estimation sees a realistic soft edge.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError
from greenless.matter import Matter
from greenless.media.images import load_rgb, save_image_atomic
from greenless.pipeline.compose import estimate_foreground, render

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "portraits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x3000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stem", default="p_09ba26b4", help="which portrait of --data")
    parser.add_argument("--data", type=Path, default=DATA, help="a labelled folder (image/, alpha/)")
    args = parser.parse_args()
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise GreenlessError(f"--size {args.size!r}: give WIDTHxHEIGHT, e.g. 4000x3000") from None
    image = need_path(args.data / "image" / f"{args.stem}.jpg", "the portrait, --data and --stem", "file")
    matte = need_path(args.data / "alpha" / f"{args.stem}.png", "the portrait's alpha", "file")
    photo = cv2.resize(load_rgb(image), (w, h), interpolation=cv2.INTER_CUBIC)
    truth = cv2.resize(load_rgb(matte)[:, :, 0], (w, h)).astype(np.float32) / 255.0
    matter = Matter()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "photo.jpg"
        save_image_atomic(src, photo)
        print(f"{w}x{h} ({w * h / 1e6:.1f} MP), best of {args.repeat}, warm")
        print("| output | fg estimate | decode s | matte s | compose s | write s | total s |")
        print("|---|---|---|---|---|---|---|")
        for kind, fg in progress((("rgba", True), ("rgba", False), ("composite", True), ("alpha", False)), "outputs"):
            runs = []
            for _ in range(args.repeat + 1):  # first run warms caches and is dropped
                t0 = time.perf_counter()
                rgb = load_rgb(src)
                t1 = time.perf_counter()
                alpha = matter.matte(rgb)
                t2 = time.perf_counter()
                out = render(kind, rgb, truth, "white", fg_estimate=fg)
                t3 = time.perf_counter()
                save_image_atomic(Path(tmp) / "out.png", out)
                t4 = time.perf_counter()
                runs.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0))
                del alpha
            best = min(runs[1:], key=lambda r: r[-1])
            print(f"| {kind} | {'yes' if fg else 'no'} | " + " | ".join(f"{v:.2f}" for v in best) + " |", flush=True)
        t = time.perf_counter()
        estimate_foreground(photo, truth)
        print(f"\nestimate_foreground alone: {time.perf_counter() - t:.2f} s")
        try:
            from pymatting import estimate_foreground_ml
        except ImportError:
            return
        estimate_foreground_ml(photo[:64, :64] / 255.0, truth[:64, :64].astype(np.float64))  # compile numba
        t = time.perf_counter()
        estimate_foreground_ml(photo / 255.0, truth.astype(np.float64))
        print(f"pymatting estimate_foreground_ml: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    run_script(main)
