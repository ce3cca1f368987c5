"""SOC adaptation end to end on real unlabelled frames: runs, records itself in the card, moves the weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from greenless.model import build_model
from greenless.model.checkpoint import load_weights, read_card, save_weights
from greenless.train.soc import SOCConfig, adapt, blur_down16, inconsistency, iter_frames

REPO = Path(__file__).resolve().parents[1]


def test_blur_down16_of_a_constant_is_that_constant() -> None:
    out = blur_down16(torch.full((1, 1, 64, 32), 0.25), (4, 2))
    assert out.shape == (1, 1, 4, 2) and torch.allclose(out, torch.full_like(out, 0.25))


def test_adapt_on_a_real_clip(tmp_path: Path, shared_data: Path) -> None:
    torch.manual_seed(0)
    weights = save_weights(build_model({"encoder": "mobilenetv2", "hr_channels": 8}), tmp_path / "w.safetensors",
                           {"ref_size": 256}, half=False)
    clip = shared_data / "videos" / "asl" / "yes.mkv"
    frames = list(iter_frames(clip, every=10, limit=6))
    assert len(frames) == 6 and frames[0].shape == (480, 640, 3)
    result = adapt(weights, clip, tmp_path / "adapted.safetensors",
                   SOCConfig(steps=3, batch_size=2, size=64, lr=1e-3, frame_every=10, max_frames=6), progress=False)
    assert result["frames"] == 6 and len(result["history"]) == 3
    card = read_card(tmp_path / "adapted.safetensors")
    assert card["soc"]["steps"] == 3 and card["soc"]["parent"] == "w.safetensors"
    before, _ = load_weights(weights)
    after, _ = load_weights(tmp_path / "adapted.safetensors")
    changed = [k for k, v in before.state_dict().items() if v.is_floating_point()
               and not torch.equal(v, after.state_dict()[k])]
    assert changed and not any("running_mean" in k for k in changed)  # BatchNorm statistics stay frozen
    assert np.isfinite(inconsistency(after, frames[:2], size=64))


def test_adapt_cli_reports_bad_input_on_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run([sys.executable, "-m", "greenless", "adapt", "--weights", str(tmp_path / "none.safetensors"),
                           "--data", str(tmp_path), "-o", str(tmp_path / "o.safetensors")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "weights file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
