"""The GPU code paths, run on CPU torch: the torch runner's modes, the batched device video path against the
per-frame path on a real clip, ``greenless bench --device`` and the device script's dry run.

No GPU here: CUDA graphs can only be refused (tested); everything around them is device-agnostic and runs.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, load_script, run_greenless
from greenless.errors import GreenlessError

CLIP = "videos/room.mp4"


@pytest.fixture(scope="module")
def frames(data: Path) -> list[np.ndarray]:
    """The first four frames (384x216) of a real clip."""
    from greenless.media.video import open_video

    with open_video(data / CLIP) as reader:
        return [f.image for f in itertools.islice(iter(reader), 4)]


def _tiny_model() -> torch.nn.Module:
    from greenless.model import build_model

    torch.manual_seed(0)
    return build_model({"encoder": "mobilenetv2"})


def test_runner_modes_on_cpu() -> None:
    """compile gives eager's matte; CUDA graphs and unknown modes are one error line, not a crash."""
    from greenless.engines.accel import TensorRunner, resolve_device

    cpu = resolve_device("cpu")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    eager = TensorRunner(_tiny_model(), cpu)
    assert eager.dtype == torch.float32 and not eager.channels_last  # fp16/channels-last are for CUDA
    expected = eager(x)
    compiled = TensorRunner(_tiny_model(), cpu, mode="compile", compile_backend="eager")
    torch.testing.assert_close(compiled(x), expected)
    with pytest.raises(GreenlessError, match="cudagraph needs a CUDA device"):
        TensorRunner(_tiny_model(), cpu, mode="cudagraph")
    with pytest.raises(GreenlessError, match="unknown torch mode"):
        TensorRunner(_tiny_model(), cpu, mode="fast")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_device_without_cuda_is_one_line() -> None:
    from greenless.engines.accel import resolve_device

    for name, text in (("cuda", "no CUDA device here"), ("tpu", "not a device name"), ("meta", "runs on cpu or cuda")):
        with pytest.raises(GreenlessError, match=text):
            resolve_device(name)


@pytest.mark.parametrize("guide", ["selfie", "none"])
def test_batched_device_path_matches_per_frame(frames: list[np.ndarray], guide: str) -> None:
    """Four real frames in one batch on the device path give the mattes ``Matter`` gives frame by frame
    (same engine, fp32): the resize weights are OpenCV's own, so only float rounding differs."""
    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceMatter

    matter = Matter(engine="torch", device="cpu", stream=True, guide=guide)
    device = DeviceMatter(matter, workers=2)
    try:
        got = device.matte_batch(frames)
    finally:
        device.close()
    expected = [matter.matte(frame) for frame in frames]
    assert all(g.shape == frame.shape[:2] and g.dtype == np.float32 for g, frame in zip(got, frames))
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-4)
    assert 0.05 < float(np.mean(got[0])) < 0.95  # a person was found: not a blank matte agreeing with a blank one
    assert device.frames == 4 and device.network_fps() > 0


def test_device_path_small_frames_feedback_and_demo_rule(frames: list[np.ndarray]) -> None:
    """Frames smaller than the network (resized up on the CPU), a fed-back previous matte, and the official
    demo's area resizing all agree with the per-frame path."""
    import cv2

    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceMatter

    small = [cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for f in frames[:2]]
    prev = [None, np.linspace(0, 1, 160 * 90, dtype=np.float32).reshape(90, 160)]
    for kwargs in ({"ref_size": 128}, {"ref_size": 96, "guide": "none", "preprocess": "modnet-demo"}):
        matter = Matter(engine="torch", device="cpu", stream=True, **kwargs)
        device = DeviceMatter(matter, workers=1)
        try:
            got = device.matte_batch(small, prev)
        finally:
            device.close()
        for g, e in zip(got, matter.matte_batch(small, prev)):
            np.testing.assert_allclose(g, e, atol=1e-4)


def test_device_path_needs_the_torch_engine() -> None:
    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceMatter
    from greenless.pipeline.streaming import use_device_path

    with pytest.raises(GreenlessError, match="needs the torch engine"):
        DeviceMatter(Matter(stream=True))
    assert use_device_path("onnx", "cpu") and not use_device_path("onnx", None)
    assert use_device_path("torch", None) == torch.cuda.is_available()


def test_one_stream_factory_picks_path_renderer_and_batch() -> None:
    """``open_stream`` decides for video, webcam and ``Matter.stream()``: the device path when a device was asked
    for (its renderer on CUDA only), a live source one frame per call, feedback one frame per call."""
    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceMatter
    from greenless.pipeline.streaming import DEFAULT_BATCH, DEVICE_BATCH, open_stream
    from greenless.pipeline.video import frame_render

    plain = Matter(stream=True)
    setup = open_stream(plain)
    assert setup.matter is plain and setup.render is frame_render and setup.batch == DEFAULT_BATCH
    assert not setup.on_device and setup.network_fps() is None
    assert open_stream(plain, live=True).batch == 1 and open_stream(plain, batch=5).batch == 5
    with pytest.raises(GreenlessError, match="--batch must be at least 1"):
        open_stream(plain, batch=0)
    asked = Matter(engine="torch", device="cpu", stream=True)
    with open_stream(asked) as setup:
        assert isinstance(setup.matter, DeviceMatter) and setup.batch == DEVICE_BATCH
        assert setup.render is frame_render  # the device renderer pays off on a GPU only
        assert setup.stream.matter is setup.matter and setup.label == "ofd"
    with open_stream(asked, temporal="prev-alpha", batch=8) as setup:
        assert setup.batch == 1 and setup.label == "prev-alpha + ofd"
    with pytest.raises(GreenlessError, match="unknown --temporal"):
        open_stream(asked, temporal="smooth")
    assert asked.stream().matter is asked  # the API's stream stays frame by frame on the matter itself


def test_video_on_the_device_path(data: Path, tmp_path: Path) -> None:
    """``greenless video --device cpu`` writes the clip and reports the end-to-end rate beside the network's;
    ``--device cuda`` without CUDA is one line and creates nothing."""
    out = tmp_path / "out.mp4"
    proc = run_greenless("video", str(data / CLIP), "-o", str(out), "--device", "cpu", "--max-frames", "3",
                         "--batch", "3", "-q")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert out.stat().st_size > 0 and "3 frames" in err and "end to end; network alone" in err
    if not torch.cuda.is_available():
        missing = tmp_path / "never.mp4"
        proc = run_greenless("video", str(data / CLIP), "-o", str(missing), "--device", "cuda", "-q")
        err = proc.stderr.decode()
        assert proc.returncode == 2 and err.count("\n") == 1 and "no CUDA device" in err
        assert not missing.exists() and not list(tmp_path.glob("*.part*"))


def test_device_bench_on_cpu() -> None:
    """The device bench's rows, skips and summary, on CPU: eager and compile timed, CUDA graphs and the paper
    model's missing ONNX file noted, the guide's cost in its own row."""
    from greenless.evaluate.device_bench import Plan, render_markdown, run_device_bench

    plan = Plan(device="cpu", models=("modnet", "paper MobileNetV2"),
                engines=("torch-eager-fp32", "torch-compile-fp32", "torch-cudagraph-fp16", "onnx-cpu-fp32"),
                sizes=("512x288",), batches=(1,), warmup=0, repeat=1, compile_backend="eager",
                compile_models=("modnet",))
    report = run_device_bench(plan)
    rows = {(r["model"], r["engine"], r["what"]): r for r in report["rows"]}
    for key in (("modnet", "torch-eager-fp32", "network"), ("modnet", "torch-compile-fp32", "network"),
                ("modnet", "onnx-cpu-fp32", "network"), ("paper MobileNetV2", "torch-eager-fp32", "network")):
        # each network at the frame's size on its own grid: modnet's stride is 64, the paper network's 32
        size = "512x256" if key[0] == "modnet" else "512x288"
        assert rows[key]["fps"] > 0 and rows[key]["network"] == size and not rows[key]["note"], key
    assert "needs a CUDA device" in rows[("modnet", "torch-cudagraph-fp16", "network")]["note"]
    assert "no ONNX file" in rows[("paper MobileNetV2", "onnx-cpu-fp32", "network")]["note"]
    assert "compiled for modnet only" in rows[("paper MobileNetV2", "torch-compile-fp32", "network")]["note"]
    guide = [r for r in report["rows"] if r["what"] == "guide"]
    assert len(guide) == 1 and guide[0]["median_ms"] > 0
    assert {f["model"] for f in report["fastest"]} == {"modnet", "paper MobileNetV2"}
    text = render_markdown(report)
    assert report["machine"]["device"] in text and "Fastest engine" in text


def test_bench_device_cli_errors() -> None:
    proc = run_greenless("bench", "--device", "cpu", "--engine", "torch-warp-fp8", timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "unknown engine" in err
    proc = run_greenless("bench", "--engine", "torch-eager-fp32", timeout=120)
    assert proc.returncode == 2 and "go with --device" in proc.stderr.decode()
    if not torch.cuda.is_available():
        proc = run_greenless("bench", "--device", "cuda", timeout=120)
        err = proc.stderr.decode()
        assert proc.returncode == 2 and err.count("\n") == 1 and "no CUDA device" in err


@pytest.mark.slow
def test_gpu_bench_script_dry_run(tmp_path: Path) -> None:
    """``scripts/gpu_bench.py run --device cpu --quick``: the device call's script end to end, on CPU."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_bench.py"), "run", "--device", "cpu", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert {"environment", "bench", "video", "checks", "seconds"} <= set(report)
    video = report["video"][0]
    assert video["frames"] == 4 and video["end_to_end_fps"] > 0 and video["network_fps"] > 0
    diffs = {c["check"]: c.get("max_abs_diff") for c in report["checks"]}
    assert len(diffs) == 3 and all(d is not None for d in diffs.values()), diffs
    assert all(d <= (1 if "8-bit levels" in name else 1e-4) for name, d in diffs.items()), diffs
    assert "## greenless video" in (tmp_path / "gpu_bench.md").read_text()


def test_gpu_bench_prepare_and_install(tmp_path: Path) -> None:
    """prepare copies what the device needs (within the carry limit); install_weights puts it back into a tree
    whose packaged weights were stashed."""
    gpu_bench = load_script("gpu_bench")

    repo = tmp_path / "repo"
    (repo / gpu_bench.WEIGHTS).mkdir(parents=True)
    for name in gpu_bench.CARRIED:
        (repo / gpu_bench.WEIGHTS / name).write_bytes(name.encode())
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"clip")
    total = gpu_bench.prepare(repo, gpu_bench.DEST, clip)
    assert total == sum(len(n) for n in gpu_bench.CARRIED) + 4
    for name in gpu_bench.CARRIED[:2]:
        (repo / gpu_bench.WEIGHTS / name).unlink()
    assert gpu_bench.install_weights(repo, gpu_bench.DEST) == sorted(gpu_bench.CARRIED[:2])
    assert (repo / gpu_bench.WEIGHTS / "modnet.json").read_bytes() == b"modnet.json"


@pytest.mark.parametrize("background", ["green", "blur", "backgrounds/beach.jpg"])
def test_device_renderer_matches_render(frames: list[np.ndarray], data: Path, background: str) -> None:
    """The device composite (and cut-out, foreground) equals the CPU's within one 8-bit level on real frames and
    their mattes: the foreground estimate's blurs and resizes use OpenCV's own weights."""
    from greenless.matter import Matter
    from greenless.pipeline.device import DeviceRenderer
    from greenless.pipeline.video import Background, frame_render as render

    spec = str(data / background) if "/" in background else background
    bg = Background(spec, frames[0].shape[1], frames[0].shape[0])
    draw = DeviceRenderer(torch.device("cpu"))
    alphas = Matter(stream=True).matte_batch(frames[:2])
    for frame, alpha in zip(frames[:2], alphas):
        for mode in ("composite", "rgba", "foreground", "alpha"):
            expected, got = render(mode, frame, alpha, bg), draw(mode, frame, alpha, bg)
            assert got.shape == expected.shape and got.dtype == np.uint8
            diff = np.abs(got.astype(int) - expected.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (mode, diff.max(), (diff > 0).mean())
    soft = alphas[0].copy()
    soft[(soft > 0) & (soft < 1)] = 0  # a hard matte: nothing to estimate, the frame's own colours
    assert np.array_equal(draw("foreground", frames[0], soft, bg), frames[0])


def test_video_pipeline_with_the_device_renderer(shared_data: Path) -> None:
    """VideoPipeline through the device matter and renderer writes what the plain pipeline writes (the
    composite within one level), frames in order, OFD included.

    On the shared portrait clip, where "within one level" was measured: on the fixture room clip the two
    differ by 2 levels at a few pixels, and OFD, a threshold, turns 1e-4 matte differences into 28 levels
    at 16 pixels of one frame."""
    from greenless.matter import Matter
    from greenless.media.video import open_video
    from greenless.pipeline.device import DeviceMatter, DeviceRenderer
    from greenless.pipeline.video import Background, VideoPipeline

    class Collect:
        def __init__(self) -> None:
            self.images: list[np.ndarray] = []
            self.pts: list[int] = []

        def write(self, image: np.ndarray, pts: int | None = None) -> None:
            self.images.append(image)
            self.pts.append(pts)

    outputs = []
    for device_path in (False, True):
        matter = Matter(engine="torch", device="cpu", stream=True, ref_size=128)
        matter = DeviceMatter(matter, workers=1) if device_path else matter
        writer = Collect()
        with open_video(shared_data / "videos" / "thoughtful-35590.mp4") as reader:
            bg = Background("green", reader.width, reader.height)
            VideoPipeline(matter, background=bg, batch=3, stream=matter.stream(),
                          renderer=DeviceRenderer(torch.device("cpu")) if device_path else None
                          ).run(itertools.islice(iter(reader), 4), writer)
        outputs.append(writer)
    plain, device = outputs
    assert len(device.images) == 4 and device.pts == plain.pts == sorted(plain.pts)
    for a, b in zip(plain.images, device.images):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_bench_device_without_torch_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """On the light install (no PyTorch) ``bench --device`` says which extra to install, in one line."""
    from conftest import run_main

    monkeypatch.setitem(sys.modules, "torch", None)  # ``import torch`` now raises ImportError
    code, err = run_main(["bench", "--device", "cuda"], capsys)
    assert code == 2 and err.count("\n") == 1 and "needs PyTorch" in err and "[gpu]" in err
