"""Throughput of the streaming video pipeline against bare inference on the same frames.

bare = Matter.matte_batch over frames already decoded in memory (the model alone);
pipeline = decode thread -> inference -> OFD -> compose + H.264 encode thread, file to file.
The ratio pipeline / bare says how well decoding and encoding hide behind inference (goal >= 0.85).

    python benchmarks/video_pipeline.py [--clip F] [--frames 90] [--ref-size N] [--batch 2] [--threads N]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

from greenless import Matter
from greenless.cli.script import need_path, progress, run_script
from greenless.media.video import open_video, open_writer
from greenless.pipeline.video import Background, VideoPipeline

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"


def bare_fps(matter: Matter, images: list, batch: int, temporal: str) -> float:
    """Frames per second of inference alone (after one warm-up call); prev-alpha feeds each matte to the
    next frame, one frame per call, as the pipeline does."""
    matter.matte_batch(images[:batch])
    start = time.perf_counter()
    if temporal == "prev-alpha":
        prev = None
        for image in images:
            prev = matter.matte(image, prev_alpha=prev)
    else:
        for i in range(0, len(images), batch):
            matter.matte_batch(images[i:i + batch])
    return len(images) / (time.perf_counter() - start)


def pipeline_fps(matter: Matter, clip: Path, frames: int, batch: int, mode: str, temporal: str) -> float:
    """Frames per second of the whole pipeline, decoding ``clip`` and encoding an mp4."""
    with open_video(clip) as reader, tempfile.TemporaryDirectory() as tmp:
        writer = open_writer(Path(tmp) / "out.mp4", reader.width, reader.height, reader.fps, time_base=reader.time_base)
        bg = Background("green", reader.width, reader.height)
        start = time.perf_counter()
        stats = VideoPipeline(matter, mode=mode, background=bg, batch=batch, temporal=temporal).run(
            itertools.islice(iter(reader), frames), writer)
        writer.close()
        return stats.frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=SHARED / "thoughtful-35590.mp4")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--ref-size", type=int, default=None)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args()
    need_path(args.clip, "the clip, --clip", "file")
    if args.weights is not None:
        need_path(args.weights, "the weights, --weights", "file")
    matter = Matter(args.weights, ref_size=args.ref_size, threads=args.threads, stream=True,
                    model=None if args.weights else "modnet")  # the video default, with the stream job's defaults
    with open_video(args.clip) as reader:
        images = [f.image for f in itertools.islice(iter(reader), args.frames)]
        size = f"{reader.width}x{reader.height}"
    print(f"clip: {args.clip.name} ({size}, {len(images)} frames)  ref_size: {matter.ref_size}  "
          f"cores: {os.cpu_count()}  load avg: {os.getloadavg()[0]:.1f}")
    temporal = "prev-alpha" if matter.stream().policy.feedback else "ofd"  # what greenless video would use
    print(f"temporal: {temporal}")
    print("| batch | bare inference fps | pipeline fps (composite -> mp4) | ratio |")
    print("|---:|---:|---:|---:|")
    for batch in progress([1] if temporal == "prev-alpha" else args.batch, "batch sizes"):
        bare = bare_fps(matter, images, batch, temporal)
        pipe = pipeline_fps(matter, args.clip, len(images), batch, "composite", temporal)
        print(f"| {batch} | {bare:.2f} | {pipe:.2f} | {pipe / bare:.2f} |", flush=True)


if __name__ == "__main__":
    run_script(main)
