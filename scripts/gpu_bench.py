"""GPU speed in one device call: every network and engine of ``greenless bench --device cuda``, the batched video
path end to end on a 1080p clip beside its bare network rate, and checks that the fast paths give the mattes
the plain ones give. Writes ``gpu_bench.md`` and ``gpu_bench.json`` to ``$OUT`` (two small files of the eight
a device call may return).

The device machine gets a copy of the working tree plus at most 64 MiB of ignored paths named in ``carry``;
the packaged weights (75 MB) do not fit, so they travel as a trimmed copy:

1. ``python scripts/gpu_bench.py prepare``     copy the .safetensors, their cards, modnet.onnx and a test clip
                                               into the ignored ``work/gpu-bench/`` (about 42 MiB;
                                               the tree that travels anyway is about 4 MiB);
2. ``python scripts/gpu_train.py stash-weights`` move the packaged weights out of the tree;
3. the device call, ``carry = ["work/gpu-bench"]``, ``timeout_s = 540``:
   ``PYTHONUNBUFFERED=1 python3 scripts/gpu_bench.py run --out "$OUT"``
   (puts the carried weights back into the package folder of the device's copy, then times; about 6 minutes
   on an H200, ``--budget-s`` bounds the network bench);
4. ``python scripts/gpu_train.py restore-weights``.

``run --device cpu --quick`` is the same code on CPU torch with tiny settings: the tests run it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from gpu_train import folder_bytes  # noqa: E402  (scripts/ is on the path: this script's own folder)

from greenless.cli.script import need_path, run_script  # noqa: E402

DEST = Path("work/gpu-bench")
WEIGHTS = Path("src/greenless/weights")
CARRIED = ("modnet.safetensors", "modnet.json", "modnet.onnx")
CLIP = Path("../shared/data/videos/thoughtful-35590.mp4")  # 640x360, 367 frames, a person (CC-BY-4.0)
CARRY_LIMIT = 60 * 2**20


def prepare(repo: Path = REPO, dest: Path = DEST, clip: Path = CLIP) -> int:
    """Copy the weights the bench needs and the clip into ``dest``; returns the bytes copied."""
    dest = repo / dest
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "weights").mkdir(parents=True)
    for name in CARRIED:
        shutil.copy2(repo / WEIGHTS / name, dest / "weights" / name)
    source = clip if clip.is_absolute() else repo / clip
    shutil.copy2(source, dest / "clip.mp4")
    total = folder_bytes(dest)
    if total > CARRY_LIMIT:
        raise SystemExit(f"{dest} holds {total / 2**20:.1f} MiB, over the {CARRY_LIMIT / 2**20:.0f} MiB carry limit")
    return total


def install_weights(repo: Path = REPO, dest: Path = DEST) -> list[str]:
    """Put carried weights into the package folder where it lacks them (on the device's copy of the tree)."""
    carried = repo / dest / "weights"
    placed = []
    if carried.is_dir():
        for path in sorted(carried.iterdir()):
            target = repo / WEIGHTS / path.name
            if not target.exists():
                shutil.copy2(path, target)
                placed.append(path.name)
    return placed


def have_pyav() -> bool:
    """Whether PyAV is installed (the device image has OpenCV but not PyAV: the script then uses OpenCV)."""
    import importlib.util

    try:
        return importlib.util.find_spec("av") is not None
    except (ImportError, ValueError):
        return False


class CvReader:
    """Frames of a video file through OpenCV's FFmpeg (RGB, index as timestamp): PyAV's stand-in on the device."""

    def __init__(self, path: Path) -> None:
        import cv2

        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise RuntimeError(f"OpenCV cannot read {path}")
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 25.0

    def __iter__(self) -> Any:
        import cv2

        from greenless.media.video import Frame

        index = 0
        while True:
            ok, bgr = self.capture.read()
            if not ok:
                return
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index, None)
            index += 1

    def close(self) -> None:
        self.capture.release()


class CvWriter:
    """An MPEG-4 Part 2 file through OpenCV (``write(rgb, pts)``, ``close``, ``abort``): PyAV's stand-in."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import cv2

        self.path = path
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
        if not self.writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path}")

    def write(self, image: Any, pts: int | None = None) -> None:
        import cv2

        self.writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self.writer.release()

    def abort(self) -> None:
        self.writer.release()
        self.path.unlink(missing_ok=True)


def open_reader(path: Path) -> Any:
    """PyAV's reader (``greenless video``'s own) when installed, else OpenCV's."""
    if have_pyav():
        from greenless.media.video import open_video

        return open_video(path)
    return CvReader(path)


def open_output(path: Path, width: int, height: int, reader: Any) -> Any:
    """PyAV's writer (H.264, as ``greenless video`` writes) when installed, else OpenCV's (MPEG-4 Part 2), at
    ``reader``'s frame rate."""
    if have_pyav():
        from greenless.media.video import open_writer

        return open_writer(path, width, height, reader.fps, time_base=reader.time_base)
    return CvWriter(path, width, height, reader.fps)


def make_clip(source: Path, path: Path, width: int, height: int, frames: int) -> Path:
    """The first ``frames`` frames of ``source`` scaled to ``width`` x ``height``, encoded to ``path``."""
    import cv2

    reader = open_reader(source)
    try:
        writer = open_output(path, width, height, reader)
        try:
            for frame in itertools.islice(iter(reader), frames):
                image = frame.image
                if image.shape[:2] != (height, width):
                    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
                writer.write(image, frame.pts)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    finally:
        reader.close()
    return path


def video_run(clip: Path, out: Path, device: str, mode: str, batch: int, max_frames: int | None,
              ref_size: int | None = None) -> dict[str, Any]:
    """``greenless video --device DEVICE`` on ``clip`` as the command runs it: end-to-end fps beside the network's
    (``ref_size`` None: the stream default, 288)."""
    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceMatter, DeviceRenderer
    from greenless.pipeline.video import Background, VideoPipeline

    matter = DeviceMatter(Matter(engine="torch", device=device, stream=True, ref_size=ref_size))
    reader = open_reader(clip)
    try:
        frames = iter(reader) if max_frames is None else itertools.islice(iter(reader), max_frames)
        bg = Background("green", reader.width, reader.height) if mode == "composite" else None
        writer = open_output(out, reader.width, reader.height, reader)
        try:
            stats = VideoPipeline(matter, mode=mode, background=bg, batch=batch, stream=matter.stream(),
                                  renderer=DeviceRenderer(matter.device)).run(frames, writer)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        network_fps = matter.network_fps()
    finally:
        reader.close()
        matter.close()
    return {"clip": f"{reader.width}x{reader.height}", "ref_size": matter.ref_size, "output": mode, "batch": batch,
            "frames": stats.frames,
            "seconds": stats.seconds, "end_to_end_fps": stats.fps, "network_fps": network_fps,
            "ratio": stats.fps / network_fps if network_fps else None, "temporal": stats.temporal,
            "io": "PyAV (H.264)" if have_pyav() else "OpenCV (MPEG-4 Part 2; PyAV not installed)"}


def stage_costs(clip: Path, frames: int, out: Path, device: str) -> list[dict[str, Any]]:
    """Frames per second of each CPU stage of the video path alone, one thread each, on ``clip``'s first
    ``frames`` frames: what the GPU waits on when the end-to-end rate falls short of the network's."""
    import numpy as np

    from greenless.engines.accel import resolve_device
    from greenless.pipeline.device import DeviceRenderer
    from greenless.pipeline.guide import SelfieSegmenter, guide_bounds
    from greenless.pipeline.video import Background, frame_render as render

    reader = open_reader(clip)
    try:
        start = time.perf_counter()
        images = [f.image for f in itertools.islice(iter(reader), frames)]
        decode_s = time.perf_counter() - start
    finally:
        reader.close()
    h, w = images[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    alpha = np.clip(1.5 - np.hypot((yy - h / 2) / (0.4 * h), (xx - w / 2) / (0.25 * w)), 0, 1).astype(np.float32)
    rows = [{"stage": f"decode ({len(images)} frames)", "fps": len(images) / decode_s}]
    bg = Background("green", w, h)
    for mode in ("composite", "alpha"):
        start = time.perf_counter()
        rendered = [render(mode, image, alpha, bg) for image in images]
        rows.append({"stage": f"render {mode} (CPU)", "fps": len(images) / (time.perf_counter() - start)})
    draw = DeviceRenderer(resolve_device(device))
    draw("composite", images[0], alpha, bg)  # first call builds the weight matrices
    start = time.perf_counter()
    for image in images:
        draw("composite", image, alpha, bg)
    rows.append({"stage": f"render composite ({device}, copies included)", "fps": len(images) / (time.perf_counter() - start)})
    source = open_reader(clip)
    writer = open_output(out, w, h, source)
    source.close()
    start = time.perf_counter()
    for i, image in enumerate(rendered):
        writer.write(image, i)
    writer.close()
    rows.append({"stage": "encode", "fps": len(images) / (time.perf_counter() - start)})
    segmenter = SelfieSegmenter()
    start = time.perf_counter()
    for image in images:
        guide_bounds(segmenter(image, mode="pad", size=(288, 512)))
    rows.append({"stage": "guide + bounds at 288x512 (one thread)", "fps": len(images) / (time.perf_counter() - start)})
    return [{"clip": f"{w}x{h}", **row} for row in rows]


def checks(device: str, clip: Path, frames: int, compile_backend: str = "inductor") -> list[dict[str, Any]]:
    """Largest matte difference of each fast path against its plain counterpart on real frames."""
    import numpy as np
    import torch

    from greenless.engines.accel import TensorRunner
    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceMatter

    reader = open_reader(clip)
    try:
        images = [f.image for f in itertools.islice(iter(reader), frames)]
    finally:
        reader.close()
    out = []
    plain = Matter(engine="torch", device=device, stream=True)
    fast = DeviceMatter(plain)
    try:
        a, b = plain.matte_batch(images), fast.matte_batch(images)
        out.append({"check": "batched device path vs per-frame Matter (same engine)",
                    "max_abs_diff": float(max(np.abs(x - y).max() for x, y in zip(a, b)))})
        from greenless.pipeline.device import DeviceRenderer
        from greenless.pipeline.video import Background, frame_render as render

        bg = Background("green", images[0].shape[1], images[0].shape[0])
        draw = DeviceRenderer(fast.device)
        levels = max(int(np.abs(render("composite", im, al, bg).astype(int) - draw("composite", im, al, bg)).max())
                     for im, al in zip(images, a))
        out.append({"check": "device composite vs CPU composite, in 8-bit levels (not alpha)", "max_abs_diff": levels})
    finally:
        fast.close()
    engine = plain.engine
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, engine.in_channels, 288, 512)).astype(np.float32))
    eager = engine.runner(x).float().cpu()
    modes = ["compile"] + (["cudagraph"] if torch.device(device).type == "cuda" else [])
    for mode in modes:
        try:
            runner = TensorRunner(engine.runner.model, engine.runner.device, mode=mode, compile_backend=compile_backend)
            got = runner(x).float().cpu()
            out.append({"check": f"torch {mode} vs eager ({'fp16' if runner.half else 'fp32'}, 2x4x288x512)",
                        "max_abs_diff": float((got - eager).abs().max())})
        except Exception as exc:  # a failing mode is a finding, not the end of the run
            out.append({"check": f"torch {mode} vs eager", "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    return out


def render(report: dict[str, Any]) -> str:
    """The whole report as Markdown: the network table, the video rows, the checks."""
    from greenless.evaluate.device_bench import render_markdown

    lines = ["# greenless GPU bench (`scripts/gpu_bench.py run`)", "", report["environment"], "",
             "## Networks (`greenless bench --device`)", "", render_markdown(report["bench"]),
             "## greenless video on the device path (decode thread, batched GPU matting, GPU composite + encode thread)", "",
             "| clip | ref size | output | batch | frames | end-to-end fps | network alone fps | ratio | decode/encode |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in report["video"]:
        if "error" in v:
            lines.append(f"| {v.get('clip', '')} | | {v.get('output', '')} | | | {v['error']} | | | |")
            continue
        ratio = f"{v['ratio']:.2f}" if v["ratio"] else "–"
        lines.append(f"| {v['clip']} | {v['ref_size']} | {v['output']} | {v['batch']} | {v['frames']} | {v['end_to_end_fps']:.1f} | "
                     f"{v['network_fps']:.1f} | {ratio} | {v['io']} |")
    lines += ["", "## Each CPU stage of the video path alone (one thread, frames per second)", "",
              "| clip | stage | fps |", "|---|---|---|"]
    lines += [f"| {r['clip']} | {r['stage']} | " + (f"{r['fps']:.1f}" if "fps" in r else r.get("error", "")) + " |"
              for r in report.get("stages", [])]
    lines += ["", "## Checks (largest matte difference, alpha in [0, 1])", ""]
    for c in report["checks"]:
        lines.append(f"- {c['check']}: " + (f"{c['max_abs_diff']:.2e}" if "max_abs_diff" in c else c["error"]))
    lines += ["", f"Total {report['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"


def run(out: Path, device: str = "cuda", quick: bool = False, budget_s: float = 150.0,
        frames: int | None = None) -> dict[str, Any]:
    """Everything, in order of importance, each part's failure noted rather than fatal; writes the report files.

    ``frames`` caps the frames of every video run and of the 1080p clip (a dry run of the full plan on CPU).
    """
    import torch

    from greenless.evaluate.device_bench import CUDA_ENGINES, DEVICE_MODELS, Plan, run_device_bench

    started = time.monotonic()
    placed = install_weights()
    env = (f"torch {torch.__version__} (CUDA {torch.version.cuda}), "
           f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device'}, "
           f"{os.cpu_count()} CPUs" + (f"; installed carried weights {', '.join(placed)}" if placed else ""))
    print(env, flush=True)
    if quick:
        plan = Plan(device=device, models=("modnet",), engines=("torch-eager-fp32", "torch-compile-fp32",
                                                                 "torch-cudagraph-fp16", "onnx-cpu-fp32"),
                    sizes=("512x288",), batches=(1, 2), warmup=1, repeat=2, budget_s=budget_s,
                    compile_backend="eager" if device == "cpu" else "inductor")
        plan.notes.append("quick run: tiny settings, on CPU torch.compile traces only (backend eager)")
    else:
        plan = Plan(device=device, models=DEVICE_MODELS, engines=CUDA_ENGINES, batches=(1, 16), warmup=10,
                    repeat=50, budget_s=budget_s, compile_models=("modnet",))
    bench = run_device_bench(plan, on_progress=lambda text: print(f"  {text}", flush=True))
    report: dict[str, Any] = {"environment": env, "bench": bench, "video": [], "stages": [], "checks": []}
    source = REPO / DEST / "clip.mp4"
    source = source if source.is_file() else (REPO / CLIP).resolve()
    source = source if source.is_file() else REPO / "tests" / "fixtures" / "data" / "videos" / "room.mp4"  # no ../shared
    with tempfile.TemporaryDirectory(prefix="greenless-gpu-bench-") as tmp:
        clips = [source]
        try:
            if not quick:
                print("making the 1080p clip", flush=True)
                clips.insert(0, make_clip(source, Path(tmp) / "clip1080.mp4", 1920, 1080, min(240, frames or 240)))
        except Exception as exc:
            report["video"].append({"clip": "1920x1080", "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
        runs = [("composite", 16, None), ("alpha", 16, None)] if not quick else [("composite", 2, None)]
        for clip, (mode, batch, ref) in itertools.product(clips, runs):
            # at 1080p also with the network near full size: ref 1024 gives 1024x1824, which the device resizes
            # itself (at ref 1080 the network's 1088 rows would be an enlargement, done on the CPU for exactness)
            runs_here = [(mode, batch, ref)] + ([("alpha", 16, 1024)] if "1080" in clip.name and mode == "alpha" else [])
            for mode_, batch_, ref_ in runs_here:
                print(f"video {clip.name} {mode_} batch {batch_} ref {ref_ or 'default'}", flush=True)
                try:
                    report["video"].append(video_run(clip, Path(tmp) / f"out-{mode_}.mp4", device, mode_, batch_,
                                                     4 if quick else frames, ref_))  # None: every frame
                except Exception as exc:
                    report["video"].append({"clip": clip.name, "output": mode_,
                                            "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
        print("stage costs", flush=True)
        try:
            report["stages"] = stage_costs(clips[0], 4 if quick else min(60, frames or 60), Path(tmp) / "stage.mp4", device)
        except Exception as exc:
            report["stages"] = [{"clip": clips[0].name, "stage": "stage costs", "error": f"{type(exc).__name__}: {exc}"}]
        print("checks", flush=True)
        try:
            report["checks"] = checks(device, source, 2 if quick else 8, plan.compile_backend)
        except Exception as exc:
            report["checks"] = [{"check": "checks", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}]
    report["seconds"] = time.monotonic() - started
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_bench.md").write_text(render(report))
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help=f"copy the weights and a clip into {DEST}/ (carried to the device)")
    p.add_argument("--clip", type=Path, default=None, help=f"the test clip (default: {CLIP}, beside the repository)")
    p = sub.add_parser("run", help="on the device machine: time everything, write gpu_bench.md/json to --out")
    p.add_argument("--out", type=Path, default=None, help="default: $OUT")
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="tiny settings (the CPU check in the tests)")
    p.add_argument("--budget-s", type=float, default=150.0, help="seconds for the network bench (the rest follows)")
    p.add_argument("--frames", type=int, default=None, help="at most this many frames per video run (a dry run)")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        from gpu_train import travelling_bytes  # scripts/ is on the path when this runs as a script

        clip = need_path((args.clip or REPO / CLIP).resolve(), "the test clip, --clip", "file")
        for name in CARRIED:  # checked before prepare() empties the destination
            need_path(REPO / WEIGHTS / name, "a packaged weights file (run restore-weights first?)", "file")
        total, tree = prepare(clip=clip), travelling_bytes(REPO)
        if total + tree > CARRY_LIMIT:
            raise SystemExit(f"{DEST} ({total / 2**20:.1f} MiB) and the tree ({tree / 2**20:.1f} MiB) pass the "
                             f"{CARRY_LIMIT / 2**20:.0f} MiB kept under the transfer limit")
        print(f"copied {total / 2**20:.1f} MiB into {DEST}/ (the tree that travels too: {tree / 2**20:.1f} MiB); next:")
        print("  python scripts/gpu_train.py stash-weights")
        print(f'  device run, carry = ["{DEST.as_posix()}"], timeout_s = 540:')
        print('    PYTHONUNBUFFERED=1 python3 scripts/gpu_bench.py run --out "$OUT"')
        print("  python scripts/gpu_train.py restore-weights")
        return
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    if out is None:
        raise SystemExit("no --out and no $OUT")
    report = run(out, device=args.device, quick=args.quick, budget_s=args.budget_s, frames=args.frames)
    print(render(report))


if __name__ == "__main__":
    run_script(main)
