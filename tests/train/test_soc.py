"""SOC adaptation on real unlabelled frames: runs on 3- and 4-channel weights, follows the official loss,
lowers the semantic/matte inconsistency on frames it never saw, and reports bad weights on one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_greenless, run_main
from greenless.errors import GreenlessError
from greenless.model.checkpoint import load_weights, read_card
from greenless.train.soc import (SOCConfig, adapt, blur_down16, boundary_band, inconsistency, iter_frames,
                                 load_for_adaptation, soc_losses, to_tensor)

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "src" / "greenless" / "weights"


def _clips(shared_data: Path) -> list[Path]:
    clips = sorted((shared_data / "videos" / "asl").glob("*.mkv"))
    assert len(clips) >= 8, "expected the 16 ASL clips in shared/data/videos/asl"
    return clips


def test_blur_down16_of_a_constant_is_that_constant() -> None:
    out = blur_down16(torch.full((1, 1, 64, 32), 0.25), (4, 2))
    assert out.shape == (1, 1, 4, 2) and torch.allclose(out, torch.full_like(out, 0.25))


def test_boundary_band_is_the_ring_around_the_foreground() -> None:
    matte = torch.zeros(1, 1, 64, 64)
    matte[..., 16:48, 16:48] = 1.0
    band = boundary_band(matte, torch.ones(1, 1, 4, 4))  # side: 5% of 64 -> 3 (odd, at least 3)
    assert band[0, 0, 15, 30] == 1 and band[0, 0, 16, 30] == 1 and band[0, 0, 17, 30] == 0
    assert band[0, 0, 14, 30] == 0 and band[0, 0, 32, 32] == 0
    # No foreground where the semantic output says background: no band at all.
    assert boundary_band(matte, torch.zeros(1, 1, 4, 4)).sum() == 0


def test_soc_losses_follow_the_official_weights_and_floor() -> None:
    semantic = torch.full((1, 1, 4, 4), 0.005)  # below the 0.01 floor: its pseudo-target for the matte is 0
    matte = torch.full((1, 1, 64, 64), 0.5)
    detail = torch.full((1, 1, 64, 64), 0.5)
    total, parts = soc_losses((semantic, detail, matte), (semantic, detail, matte))
    # Semantic vs 0.5 (the matte's view), plus the matte's view (0.5) vs the zeroed semantic.
    assert parts["consistency"] == pytest.approx((0.5 - 0.005) ** 2 + 0.5 ** 2, rel=1e-5)
    assert parts["band"] == 0 and parts["detail"] == 0 and parts["matte"] == 0
    assert float(total) == pytest.approx(100 * parts["consistency"], rel=1e-5)


@pytest.mark.parametrize("name,channels", [("unguided", 3), ("modnet", 4)])
def test_adapt_runs_on_packaged_weights(name: str, channels: int, tmp_path: Path, data: Path,
                                        unguided_weights: Path) -> None:
    """The packaged (guided, 4-channel) set and a 3-channel unguided network."""
    weights = unguided_weights.with_suffix(".safetensors") if name == "unguided" else WEIGHTS / f"{name}.safetensors"
    assert load_weights(weights)[0].config.in_channels == channels
    clip = data / "videos" / "signing.mkv"
    frames = list(iter_frames(clip, every=7, limit=4))
    assert len(frames) == 4 and frames[0].shape == (240, 320, 3)
    out = tmp_path / "adapted.safetensors"
    result = adapt(weights, clip, out, SOCConfig(steps=3, batch_size=2, size=64, frame_every=7, max_frames=4),
                   progress=False)
    assert result["frames"] == 4 and len(result["history"]) == 3
    assert result["epochs"] == 2 and [h["epoch"] for h in result["history"]] == [1, 1, 2]  # 2 batches an epoch
    assert all(np.isfinite(h["loss"]) for h in result["history"])
    card = read_card(out)
    assert card["soc"]["steps"] == 3 and card["soc"]["parent"] == weights.name
    assert card["soc"]["config"]["semantic_weight"] == 100 and card["model"]["in_channels"] == channels
    before, _ = load_weights(weights)
    after, _ = load_weights(out)
    changed = [k for k, v in before.state_dict().items() if v.is_floating_point()
               and not torch.equal(v, after.state_dict()[k])]
    assert changed and not any("running_" in k for k in changed)  # BatchNorm statistics stay frozen
    assert np.isfinite(inconsistency(after, frames[:2], size=64))


def test_soc_lowers_inconsistency_on_held_out_frames(tmp_path: Path, shared_data: Path) -> None:
    """Adapt the real-time (4-channel) network on two clips; score frames of four other clips (of the shared set:
    the fixtures hold one clip).

    The assertion can fail: with semantic_weight 0 nothing moves (the frozen copy equals the model, so
    the detail and matte terms have no gradient) and the ratio is exactly 1; a sign error raises it;
    a collapse to an empty matte would lower it, which the matte check below catches.
    """
    clips = _clips(shared_data)
    source = tmp_path / "unlabelled"
    source.mkdir()
    for clip in clips[:2]:
        (source / clip.name).symlink_to(clip)
    held_out = [f for clip in clips[4:8] for f in iter_frames(clip, every=20, limit=2)]
    assert len(held_out) == 8
    weights = WEIGHTS / "modnet.safetensors"
    size = 192
    cfg = SOCConfig(steps=6, batch_size=1, size=size, frame_every=10, seed=0)
    out = tmp_path / "adapted.safetensors"
    adapt(weights, source, out, cfg, progress=False)

    before, _ = load_weights(weights)
    after, _ = load_weights(out)
    score_before, score_after = inconsistency(before, held_out, size), inconsistency(after, held_out, size)
    print(f"held-out inconsistency {score_before:.4f} -> {score_after:.4f}")
    assert score_after < 0.9 * score_before
    batch = torch.stack([to_tensor(f, size, 4) for f in held_out])
    with torch.no_grad():
        matte_before, matte_after = before(batch), after(batch)
    assert float(torch.abs(matte_after - matte_before).mean()) < 0.02  # the matte stays what it was
    assert float((matte_after > 0.5).float().mean()) > 0.8 * float((matte_before > 0.5).float().mean())


def test_adapt_cli_rejects_onnx_on_one_line(tmp_path: Path) -> None:
    proc = run_greenless("adapt", "--weights", str(WEIGHTS / "modnet.onnx"), "--data", str(tmp_path),
                         "-o", str(tmp_path / "o.safetensors"))
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert err.strip().count("\n") == 0 and "not ONNX" in err and "Traceback" not in err


@pytest.mark.parametrize("name,content,message", [
    ("none.safetensors", None, "weights file not found"),
    ("broken.safetensors", b"not a safetensors file", "cannot load as PyTorch weights"),
    ("broken.ckpt", b"not a pickle", "cannot load as PyTorch weights"),
])
def test_adapt_cli_reports_bad_weights_on_one_line(name: str, content: bytes | None, message: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / name
    if content is not None:
        weights.write_bytes(content)
    code, err = run_main(["adapt", "--weights", weights, "--data", tmp_path, "-o", tmp_path / "o.safetensors"],
                         capsys)
    assert code != 0 and err.strip().count("\n") == 0 and message in err


def test_load_for_adaptation_raises_greenless_error_for_onnx() -> None:
    with pytest.raises(GreenlessError, match="not ONNX"):
        load_for_adaptation(WEIGHTS / "modnet.onnx")


def test_guided_weights_get_the_guide_in_soc(data: Path) -> None:
    """Guided weights are adapted as they run: the 4th channel carries the segmenter's mask of each crop."""
    from greenless.media.images import load_rgb
    from greenless.pipeline.guide import shared_segmenter
    from greenless.train.soc import square_crop, to_tensor

    rgb = load_rgb(data / "photos" / "portrait-640.jpg")
    guided, blank = to_tensor(rgb, 128, 4, guided=True), to_tensor(rgb, 128, 4)
    assert float(blank[3].max()) == -1.0
    expected = shared_segmenter()(square_crop(rgb, 128)) * 2.0 - 1.0
    assert np.allclose(guided[3].numpy(), expected, atol=1e-6)
    assert float(guided[3].max()) > 0.5 and torch.equal(guided[:3], blank[:3])


def test_adapt_refuses_crops_off_the_networks_grid(tmp_path: Path, data: Path) -> None:
    """The packaged modnet's stride is 64: 96-px crops are one error line before any frame is read."""
    out = tmp_path / "adapted.safetensors"
    with pytest.raises(GreenlessError, match="size 96: must be a multiple of 64"):
        adapt(WEIGHTS / "modnet.safetensors", data / "videos" / "signing.mkv", out, SOCConfig(steps=1, size=96),
              progress=False)
    assert not out.exists()
