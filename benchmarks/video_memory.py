"""Peak memory of ``greenless video`` as the clip gets longer: the streaming pipeline must stay flat.

Runs ``greenless video CLIP -o OUT.mp4 --max-frames N`` for each N in its own wrapper process and prints
the command's peak resident memory (``ru_maxrss`` of the finished child), so one table says whether
memory grows with the video's length.

    python benchmarks/video_memory.py [--clip F] [--frames 60 360] [--ref-size N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
# Run in a fresh interpreter so RUSAGE_CHILDREN holds this one command only.
_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mb(clip: Path, frames: int, extra: list[str]) -> float:
    """Peak RSS in MB of one ``greenless video`` run over the first ``frames`` frames of ``clip``."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "greenless", "video", str(clip),
               "-o", str(Path(tmp) / "out.mp4"), "--max-frames", str(frames), *extra]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
        rc, kib = int(out[-2]), int(out[-1])
        if rc != 0:
            raise SystemExit(f"greenless video exited with {rc}")
        return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "one-by-one-person-detection.mp4")
    parser.add_argument("--frames", type=int, nargs="+", default=[60, 360])
    parser.add_argument("--ref-size", type=int, default=None, help="Network size (default: the video default's).")
    args = parser.parse_args()
    extra = ["--ref-size", str(args.ref_size)] if args.ref_size else []
    print(f"clip: {args.clip.name}")
    print("| frames | peak RSS (MB) |")
    print("|---:|---:|")
    for frames in args.frames:
        print(f"| {frames} | {peak_mb(args.clip, frames, extra):.0f} |", flush=True)


if __name__ == "__main__":
    main()
