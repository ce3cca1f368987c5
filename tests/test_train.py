"""The trainer on tiny real crops: runs, resumes after being killed, and DDP (gloo) matches one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from greenless.model import build_model
from greenless.model.checkpoint import load_weights
from greenless.train.config import load_config

REPO = Path(__file__).resolve().parents[1]


def write_config(tmp: Path, tiny: Path, out: str, steps: int, batch: int, every: int = 2, extra: str = "",
                 labelled: bool = True) -> Path:
    cfg = tmp / f"{out}.toml"
    cfg.write_text(f"""
[model]
encoder = "mobilenetv2"
hr_channels = 8
pretrained = false

[data]
foregrounds = ["{tiny}"]
backgrounds = ["{tiny / 'bg'}"]
labelled = [{'"%s"' % tiny if labelled else ""}]
composites_per_fg = 2
size = 64

[train]
steps = {steps}
batch_size = {batch}
lr = 1e-3
warmup_steps = 0
checkpoint_every = {every}
out_dir = "{tmp / out}"
threads = 1
{extra}
""")
    return cfg


def run_cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def params(path: Path) -> dict[str, torch.Tensor]:
    """Learnable parameters only: BatchNorm running statistics are per rank under DDP by design."""
    model, _ = load_weights(path)
    return {k: v.detach().float() for k, v in model.named_parameters()}


def max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def distance(a: dict, b: dict) -> float:
    """L2 distance between two parameter sets, all tensors together."""
    return float(sum(((a[k] - b[k]) ** 2).sum() for k in a) ** 0.5)


def test_config_rejects_typos(tmp_path: Path, tiny_set: Path) -> None:
    from greenless.errors import GreenlessError

    cfg = write_config(tmp_path, tiny_set, "x", 1, 2, extra="stepz = 3")
    with pytest.raises(GreenlessError, match="unknown setting"):
        load_config(cfg)


def test_training_resumes_after_being_killed(tmp_path: Path, tiny_set: Path) -> None:
    steps = 6
    straight = write_config(tmp_path, tiny_set, "straight", steps, 2)
    proc = run_cli("greenless", "train", str(straight))
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]

    killed = write_config(tmp_path, tiny_set, "killed", steps, 2)
    proc = run_cli("greenless", "train", str(killed))
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 600
    while time.time() < deadline and not (last.exists() and torch.load(last, weights_only=True)["step"] >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = torch.load(last, weights_only=True)["step"]
    assert 2 <= stopped_at < steps and not (tmp_path / "killed" / "final.safetensors").exists()

    proc = run_cli("greenless", "train", str(killed))
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    a, b = params(tmp_path / "straight" / "final.safetensors"), params(tmp_path / "killed" / "final.safetensors")
    assert max_diff(a, b) < 1e-5  # same data order and state: resuming loses nothing


def test_two_gloo_processes_match_one_process(tmp_path: Path, tiny_set: Path) -> None:
    """DDP averages gradients: 2 ranks x batch 2 should follow 1 rank x batch 4 on the same samples.

    With BatchNorm statistics frozen (per-rank statistics would differ) and only the mean-type losses
    (the band-normalised detail term is not a mean over the global batch), averaging the ranks' gradients
    is exactly the one-process gradient: the bound is a hundredth of how far (SGD) training moved the
    weights, which fails if gradients were not synchronised.
    """
    # SGD: updates proportional to gradients (Adam would normalise small differences up to full steps);
    # frozen BatchNorm: PyTorch has no CPU SyncBatchNorm, and per-rank batch statistics of 2 images differ;
    # no detail term: it normalises by the band pixels of each rank's own batch, so it is not a plain mean.
    sgd = 'optimizer = "sgd"\nmomentum = 0.0\nfreeze_norm = true\ndetail_weight = 0.0'
    init = write_config(tmp_path, tiny_set, "init", 0, 4, extra=sgd, labelled=False)
    single = write_config(tmp_path, tiny_set, "single", 3, 4, every=3, extra=sgd, labelled=False)
    ddp = write_config(tmp_path, tiny_set, "ddp", 3, 2, every=3, extra=sgd, labelled=False)
    for cfg in (init, single):
        proc = run_cli("greenless", "train", str(cfg))
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    proc = run_cli("torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29611", "-m",
                   "greenless", "train", str(ddp))
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-3000:]
    start = params(tmp_path / "init" / "final.safetensors")
    one, two = params(tmp_path / "single" / "final.safetensors"), params(tmp_path / "ddp" / "final.safetensors")
    moved = distance(start, one)
    assert moved > 1e-3
    assert distance(one, two) < 0.01 * moved


def test_warm_start_copies_what_fits_and_zero_extends_input_channels() -> None:
    from greenless.train.supervised import warm_start

    source = build_model({"encoder": "efficientnet-lite0"})
    target = build_model({"encoder": "efficientnet-lite0", "in_channels": 4, "norm": "bn", "separable": True,
                          "fusion_channels": 16})
    copied, total = warm_start(target, source.state_dict())
    assert 0 < copied < total
    stem_src, stem_dst = source.backbone._conv_stem.weight, target.backbone._conv_stem.weight
    assert torch.equal(stem_dst[:, :3], stem_src) and torch.count_nonzero(stem_dst[:, 3]) == 0
    assert torch.equal(target.lr_branch.se_block.fc[0].weight, source.lr_branch.se_block.fc[0].weight)


def test_shipped_configs_parse_and_build(repo_root: Path) -> None:
    """Every recipe in configs/ loads (unknown keys are errors) and describes a network that builds."""
    from greenless.train.supervised import model_config

    configs = sorted((repo_root / "configs").glob("*.toml"))
    assert {p.stem for p in configs} >= {"modnet", "modnet-paper", "modnet-3ch"}
    for path in configs:
        cfg = load_config(path)
        model = build_model(model_config(cfg))
        assert model.config.in_channels == cfg.model.in_channels
    assert load_config(repo_root / "configs" / "modnet.toml").model.norm == "bn"
