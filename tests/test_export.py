"""Exports of a small random MODNet: ONNX and TorchScript at two sizes, fp16, int8 end to end, and the refusal rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="exports need the torch extra")
import cv2  # noqa: E402

from greenless.export import (  # noqa: E402
    convert_fp16, export_checked, export_onnx, onnx_runner, torch_runner, torchscript_runner,
)
from greenless.export_check import calibration_images, compare, enforce, load_check_set, matte_with  # noqa: E402
from greenless.cli import main  # noqa: E402
from greenless.errors import GreenlessError  # noqa: E402
from greenless.model.checkpoint import save_weights  # noqa: E402
from greenless.model.modnet import build_model  # noqa: E402
from greenless.pipeline.recipe import Recipe  # noqa: E402

REF = 128
RECIPE = Recipe(ref_size=REF)  # a 3-channel network's photo recipe at REF
SIZES = [(1, 128, 192), (2, 160, 96)]  # (batch, height, width): two shapes besides the 256x256 trace


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model({"encoder": "mobilenetv2", "hr_channels": 16}).eval()


@pytest.fixture(scope="module")
def onnx_file(model, tmp_path_factory) -> Path:
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "small.onnx", {"ref_size": REF})


@pytest.fixture(scope="module")
def check_set(data: Path):
    images, alphas, _ = load_check_set(data / "portraits", limit=1)
    small = [cv2.resize(im, (im.shape[1] // 4, im.shape[0] // 4), interpolation=cv2.INTER_AREA) for im in images]
    mattes = [cv2.resize(a, (a.shape[1] // 4, a.shape[0] // 4), interpolation=cv2.INTER_AREA) for a in alphas]
    return small, mattes


def _inputs(batch: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(h * w).uniform(-1, 1, (batch, 3, h, w)).astype(np.float32)


def _assert_matches_at_every_size(reference, exported) -> None:  # noqa: ANN001
    for batch, h, w in SIZES:
        x = _inputs(batch, h, w)
        out = exported(x)
        assert out.shape == (batch, 1, h, w)
        assert np.abs(out - reference(x)).max() < 1e-3


def test_onnx_has_dynamic_shapes_and_matches_torch(model, onnx_file: Path) -> None:
    _assert_matches_at_every_size(torch_runner(model), onnx_runner(onnx_file))


def test_torchscript_runs_at_other_sizes_and_matches_torch(model, check_set, tmp_path: Path) -> None:
    path = tmp_path / "small.pt"
    check = export_checked(model, path, "torchscript", {"model": model.config.to_dict()}, *check_set, REF)
    assert check.matte_mean_abs_diff < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.pt"]  # the card lives inside the file
    _assert_matches_at_every_size(torch_runner(model), torchscript_runner(path))
    extra = {"greenless_card.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    card = json.loads(extra["greenless_card.json"])
    assert card["ref_size"] == REF and card["variant"] == "torchscript" and card["check"]["images"] == 1


def test_fp16_keeps_float32_io_and_stays_close(model, onnx_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxconverter_common", reason="fp16 export needs the export extra (onnxconverter-common)")
    import onnxruntime as ort

    half = convert_fp16(onnx_file, tmp_path / "half.onnx")
    session = ort.InferenceSession(str(half), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float)" and session.get_outputs()[0].type == "tensor(float)"
    assert half.stat().st_size < onnx_file.stat().st_size * 0.6
    x = _inputs(1, 128, 192)
    assert np.abs(onnx_runner(half)(x) - torch_runner(model)(x)).mean() < 1e-2


def test_int8_export_end_to_end(model, check_set, data: Path, tmp_path: Path) -> None:
    images, alphas = check_set
    calib = calibration_images([data / "photos", data / "backgrounds", data / "videos"],
                               max_samples=3, frames_per_video=1)
    assert len(calib) == 3
    out = tmp_path / "small.int8.onnx"
    check = export_checked(model, out, "int8", {"model": model.config.to_dict()}, images, alphas, REF,
                           calibration=calib, max_degradation=100.0)
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["small.int8.json", "small.int8.onnx"]
    import onnx

    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["variant"] == "int8" and card["check"]["images"] == 1
    assert 0 < check.matte_mean_abs_diff < 0.5
    assert np.isfinite([check.torch_mse, check.torch_mad, check.export_mse, check.export_mad]).all()
    x = _inputs(1, 96, 160)
    assert onnx_runner(out)(x).shape == (1, 1, 96, 160)


def test_compare_and_enforce_figures(model, onnx_file: Path, check_set) -> None:
    images, alphas = check_set
    check = compare("onnx", torch_runner(model), onnx_runner(onnx_file), images, alphas, RECIPE)
    assert check.matte_mean_abs_diff < 1e-4 and abs(check.mad_change) < 1e-3
    enforce(check, 0.05, 1e-3)
    perfect = [matte_with(torch_runner(model), im, RECIPE) for im in images]  # torch is exact on these: MAD 0
    strict = compare("onnx", torch_runner(model), lambda x: np.clip(onnx_runner(onnx_file)(x) + 0.01, 0, 1),
                     images, perfect, RECIPE)
    assert strict.torch_mad == 0.0 and strict.export_mad > 0
    with pytest.raises(GreenlessError, match="refused"):
        enforce(strict, 0.0)


def test_export_check_scores_the_mattes_matter_gives(check_set, tmp_path: Path) -> None:
    """The check of an export of the guided packaged model runs its recipe (guide, bounds, stream reference size):
    its figures are the MAD of what ``Matter`` gives with the exported file and with the source weights."""
    from greenless.matter import Matter
    from greenless.model.checkpoint import load_weights
    from greenless.registry import packaged

    source = packaged("modnet").path("torch")
    net, card = load_weights(source)
    images, alphas = check_set
    out = tmp_path / "guided.onnx"
    check = export_checked(net, out, "onnx", card, images, alphas, 288)
    exported, eager = Matter(out, stream=True), Matter(source, engine="torch", device="cpu", stream=True, ref_size=288)
    assert exported.hint == eager.hint == "guide" and exported.ref_size == 288

    def mad(matter: Matter) -> float:  # over all pixels of all images, as the check counts
        errors = [np.abs(matter.matte(im).astype(np.float64) - gt).sum() for im, gt in zip(images, alphas)]
        return float(sum(errors) / sum(gt.size for gt in alphas))

    assert check.export_mad == pytest.approx(mad(exported), abs=1e-7)
    assert check.torch_mad == pytest.approx(mad(eager), abs=1e-6)


def test_cli_refuses_a_variant_that_degrades_and_writes_nothing(model, check_set, data: Path,
                                                               tmp_path: Path, capsys) -> None:
    """With --max-mad-increase 0 and ground truth equal to the torch model's own mattes, int8 must be refused."""
    weights = save_weights(model, tmp_path / "small.safetensors", {"ref_size": REF}, half=False)
    check_dir = tmp_path / "check"
    (check_dir / "image").mkdir(parents=True)
    (check_dir / "alpha").mkdir()
    rgb = cv2.resize(check_set[0][0], None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(check_dir / "image" / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    alpha = matte_with(torch_runner(model), rgb, RECIPE)
    cv2.imwrite(str(check_dir / "alpha" / "a.png"), (alpha * 65535 + 0.5).astype(np.uint16))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = ["export", "--weights", str(weights), "-o", str(out_dir / "m.onnx"), "--int8", "--check-data",
            str(check_dir), "--calibration-data", str(data / "photos"), "--calibration-samples", "2",
            "--max-mad-increase", "0"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)  # in-process: the same code path as the console script, without a second torch import
    assert exit_info.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("greenless: error:")]
    assert len(lines) == 1 and "refused" in lines[0] and "MAD" in lines[0]
    assert list(out_dir.iterdir()) == []


def test_cli_rejects_bad_requests(tmp_path: Path, capsys) -> None:
    for args, needle in [(["-o", str(tmp_path / "m.onnx"), "--fp16", "--int8"], "one of"),
                         (["-o", str(tmp_path / "m.onnx"), "--torchscript"], ".pt"),
                         (["-o", str(tmp_path / "m.onnx"), "--weights", str(tmp_path / "none.safetensors")], "not found"),
                         (["-o", str(tmp_path / "m.onnx"), "--check-data", str(tmp_path)], "image/ + alpha/")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["export", *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and needle in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_console_script_reports_errors_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    result = subprocess.run([sys.executable, "-m", "greenless", "export", "-o", str(tmp_path / "m.onnx"), "--fp16",
                             "--int8"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("greenless: error:") and result.stderr.count("\n") == 1
