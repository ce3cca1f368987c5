"""Engines and weights: official-checkpoint conversion, onnx vs torch agreement, exact output sizes."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from conftest import run_greenless
from greenless.matter import Matter
from greenless.registry import packaged
from greenless.media.images import load_rgb

import torch  # noqa: E402  (the torch extra is part of the test install)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64}


def _official_checkpoint(tsv: Path, path: Path) -> dict[str, "torch.Tensor"]:
    """Random tensors with every key, shape and dtype of the official MODNet checkpoint (``module.`` prefix)."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for line in tsv.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        shape = tuple(ast.literal_eval(shape))
        if dtype == "int64":
            value = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            value = torch.rand(shape, generator=gen) + 0.5
        else:
            value = torch.randn(shape, generator=gen) * 0.05
        state[key] = value.to(_DTYPES[dtype])
    assert len(state) == 751 and all(k.startswith("module.") for k in state)
    torch.save(state, path)
    return state


def test_convert_official_checkpoint(tmp_path: Path, data: Path) -> None:
    """``greenless convert`` keeps every weight: the converted file runs exactly like the checkpoint itself."""
    from greenless.engines.torch import TorchEngine
    from greenless.model.checkpoint import load_weights
    from greenless.pipeline.preprocess import to_network_input

    tsv = data / "modnet_official_state_dict.tsv"
    ckpt = tmp_path / "modnet_photographic_portrait_matting.ckpt"
    _official_checkpoint(tsv, ckpt)
    out = tmp_path / "converted.safetensors"
    proc = run_greenless("convert", str(ckpt), "-o", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert out.is_file() and out.with_suffix(".json").is_file()

    direct, _ = load_weights(ckpt)
    engine = TorchEngine(out, device="cpu")
    ours = engine.model.state_dict()
    theirs = direct.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)

    rgb = load_rgb(data / "photos" / "portrait-640.jpg")
    batch = to_network_input(rgb, (128, 96))
    with torch.inference_mode():
        expected = direct(torch.from_numpy(batch)).numpy()
    np.testing.assert_array_equal(engine.run(batch), expected)

    # The converted weights drive the CLI too (--engine torch --weights).
    proc = run_greenless("matte", str(data / "photos" / "portrait-640.jpg"), "--engine", "torch",
                         "--weights", str(out), "--write", "alpha", "-o", str(tmp_path / "a.png"), "--ref-size", "64")
    assert proc.returncode == 0, proc.stderr.decode()
    assert load_rgb(tmp_path / "a.png").shape == rgb.shape


def test_onnx_and_torch_agree(tmp_path: Path, data: Path) -> None:
    """The packaged safetensors exported to ONNX here and run by onnxruntime matches PyTorch within 1e-3 MAD."""
    from greenless.export import export_onnx
    from greenless.model.checkpoint import load_weights

    weights = packaged("modnet").path("torch")
    model, card = load_weights(weights)
    onnx_path = export_onnx(model, tmp_path / "m.onnx", card)
    rgb = load_rgb(data / "portraits" / "image" / "p_51c916fc.jpg")
    a_torch = Matter(weights, engine="torch", ref_size=256, device="cpu").matte(rgb)
    a_onnx = Matter(onnx_path, engine="onnx", ref_size=256, device="cpu").matte(rgb)
    assert a_torch.shape == a_onnx.shape == rgb.shape[:2]
    assert float(np.abs(a_torch - a_onnx).mean()) < 1e-3


def test_packaged_pair_agree(data: Path) -> None:
    """The .onnx and .safetensors that ship together are the same network (fp16 storage allows a little slack)."""
    rgb = load_rgb(data / "photos" / "portrait-1280.jpg")
    a_torch = Matter(engine="torch", ref_size=256, device="cpu").matte(rgb)
    a_onnx = Matter(engine="onnx", ref_size=256, device="cpu").matte(rgb)
    assert float(np.abs(a_torch - a_onnx).mean()) < 1e-3


# (height, width, ref_size) -> the network size these photo and video shapes have always had.
_PHOTO_SIZES = {
    (427, 640, 512): (416, 640), (853, 1280, 512): (512, 768), (3000, 4000, 512): (512, 672),
    (4000, 3000, 512): (672, 512), (1080, 1920, 512): (512, 896), (288, 512, 512): (288, 512),
    (512, 512, 512): (512, 512), (1000, 3560, 512): (512, 1824), (101, 517, 512): (96, 512),
    (33, 47, 512): (512, 736), (480, 640, 256): (256, 352), (1080, 2560, 2048): (1088, 2560),
    (33, 47, 64): (64, 96), (720, 1280, 64): (64, 128),
}


def test_inference_size_keeps_photos_and_bounds_strips() -> None:
    """Photos and video frames (aspect up to 4:1) keep their network size; any strip gets a small input.

    Before the long-side bound a 255x1 image became a 512x130,560 input (over 8 GB) and 1x2047 at
    ref 2048 a 4,192,256x2048 one, which OpenCV could not even allocate.
    """
    from greenless.pipeline.preprocess import MAX_REF_SIZE, inference_size

    for (h, w, ref), size in _PHOTO_SIZES.items():
        assert inference_size(h, w, ref) == size, (h, w, ref)
    assert inference_size(1, 255, 512) == (32, 2048)
    assert inference_size(2047, 1, MAX_REF_SIZE) == (8192, 32)
    for ref in (32, 64, 100, 512, MAX_REF_SIZE):
        for short in (1, 2, 7, 31, 33, ref - 1, ref, ref + 1, 3 * ref):
            for long in (short, ref - 1, ref, 4 * ref - 1, 4 * ref + 1, 65_280, 100_000_000 // short):
                if short < 1 or long < short:
                    continue
                for h, w in ((short, long), (long, short)):
                    nh, nw = inference_size(h, w, ref)
                    assert nh % 32 == 0 and nw % 32 == 0 and min(nh, nw) >= 32
                    assert max(nh, nw) <= max(32, 4 * ref), (h, w, ref, nh, nw)
                    assert nh * nw <= 4 * ref * (ref + 32), (h, w, ref, nh, nw)
    with pytest.raises(ValueError):
        inference_size(0, 10, 512)


def test_matter_on_thin_strips_of_a_real_photo(data: Path) -> None:
    """A one-pixel row and column of a real photo: full-size mattes from a bounded network input."""
    import cv2

    matter = Matter(engine="onnx", ref_size=512)
    seen: list[tuple[int, ...]] = []
    run = matter.engine.run

    def recording_run(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        # Checked before running: an unbounded input (the old 512x130,560) would take over 20 GB here.
        assert batch.shape[2] * batch.shape[3] <= 4 * matter.ref_size * (matter.ref_size + 32), batch.shape
        return run(batch)

    matter.engine.run = recording_run  # type: ignore[method-assign]
    photo = load_rgb(data / "photos" / "portrait-1280.jpg")
    row = np.ascontiguousarray(photo[photo.shape[0] // 2:photo.shape[0] // 2 + 1, :255])
    alpha = matter.matte(row)
    assert alpha.shape == (1, 255) and 0.0 <= alpha.min() <= alpha.max() <= 1.0
    stride = matter.recipe.stride  # 64: the packaged modnet's encoder sees the image at half size
    assert seen[-1][2:] == (stride, 2048)
    matter.ref_size = 2048  # the server's largest ref_size
    column = cv2.resize(photo[:, photo.shape[1] // 2:photo.shape[1] // 2 + 1], (1, 2047), interpolation=cv2.INTER_AREA)
    alpha = matter.matte(column)
    assert alpha.shape == (2047, 1) and 0.0 <= alpha.min() <= alpha.max() <= 1.0
    assert seen[-1][2:] == (8192, stride)


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_matte_has_exact_input_size(data: Path, engine: str) -> None:
    import cv2

    matter = Matter(engine=engine, ref_size=64, device="cpu")
    photo = load_rgb(data / "photos" / "portrait-1280.jpg")
    for h, w in [(33, 47), (101, 517), (517, 101), (32, 32)]:
        rgb = cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
        alpha = matter.matte(rgb)
        assert alpha.shape == (h, w) and alpha.dtype == np.float32
        assert 0.0 <= alpha.min() <= alpha.max() <= 1.0


@pytest.mark.needs_trained_weights
@pytest.mark.parametrize("model, stem, max_mad", [
    ("modnet", "p_09ba26b4", 0.0135), ("modnet", "p_51c916fc", 0.023), ("modnet", "p_71bcce3a", 0.024),
    ("modnet", "p_bac3c1ff", 0.0055)])
def test_portrait_quality(data: Path, model: str, stem: str, max_mad: float) -> None:
    """The packaged set: the person's centre is foreground, the top corners are not, and MAD stays within
    about 25% of what the photo default measures (modnet at 384 with the detail stage: 0.0107, 0.0183, 0.0186,
    0.0043): a regression guard. (modnet-paper, 0.107, 0.124, 0.157, 0.064, ships as a card only.)"""
    rgb = load_rgb(data / "portraits" / "image" / f"{stem}.jpg")
    truth = load_rgb(data / "portraits" / "alpha" / f"{stem}.png")[:, :, 0] / 255.0
    alpha = Matter(model=model).matte(rgb)
    assert np.abs(alpha - truth).mean() < max_mad
    ys, xs = np.nonzero(truth > 0.99)
    assert alpha[int(np.median(ys)), int(np.median(xs))] > 0.5
    assert alpha[:20, :20].mean() < 0.5 and alpha[:20, -20:].mean() < 0.5
