"""Peak memory of ``greenless video`` as the clip gets longer: the streaming pipeline must stay flat.

Runs ``greenless video CLIP -o OUT.mp4 --max-frames N`` (N from ``--frames``) for each N in its own wrapper process and prints
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

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"
# Run in a fresh interpreter so RUSAGE_CHILDREN holds this one command only.
_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_mb(clip: Path, frames: int, extra: list[str]) -> float:
    """Peak RSS in MB of one ``greenless video`` run over the first ``frames`` frames of ``clip``."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "greenless", "video", str(clip),
               "-o", str(Path(tmp) / "out.mp4"), "--max-frames", str(frames), *extra]
        done = subprocess.run(cmd, capture_output=True, text=True)
        out = done.stdout.split()
        if done.returncode or len(out) < 2 or out[-2] != "0":
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise GreenlessError(f"greenless video failed on {clip.name} ({last})")
        kib = int(out[-1])
        return kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "one-by-one-person-detection.mp4")
    parser.add_argument("--frames", type=int, nargs="+", default=[60, 360])
    parser.add_argument("--ref-size", type=int, default=None, help="Network size (default: the video default's).")
    args = parser.parse_args()
    need_path(args.clip, "the clip, --clip", "file")
    extra = ["--ref-size", str(args.ref_size)] if args.ref_size else []
    print(f"clip: {args.clip.name}")
    print("| frames | peak RSS (MB) |")
    print("|---:|---:|")
    for frames in progress(args.frames, "runs"):
        print(f"| {frames} | {peak_mb(args.clip, frames, extra):.0f} |", flush=True)


if __name__ == "__main__":
    run_script(main)
