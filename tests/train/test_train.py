"""The trainer on tiny real crops: runs, resumes after being killed, DDP (gloo) matches one process, wall-clock
budgets end on their final learning rate and resume with what is left, the one loader of a run gives each step
its batch, and the GPU round trip (scripts/gpu_train.py) packs, splits and reassembles on CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import load_script

from greenless.model import build_model
from greenless.model.checkpoint import load_weights
from greenless.train.config import load_config

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, tiny: Path, out: str, steps: int, batch: int, every: int = 2, extra: str = "",
                 labelled: bool = True, data_extra: str = "") -> Path:
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
{data_extra}

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


def make_val_set(tiny: Path, dest: Path) -> Path:
    """A validation folder apart from the training data: the tiny set's images and alphas mirrored (other
    bytes, so the leak check rightly lets it through)."""
    import cv2

    for sub, ext in (("image", ".jpg"), ("alpha", ".png")):
        (dest / sub).mkdir(parents=True)
        for path in sorted((tiny / sub).iterdir()):
            cv2.imwrite(str(dest / sub / (path.stem + ext)), cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, ::-1])
    return dest


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



# Runs ``greenless train CONFIG`` with the trainer paused for good when it is about to start step PAUSE + 1
# (PAUSE steps done, the last checkpoint older), after touching MARKER: the test's SIGKILL then always
# lands mid-run, however loaded the machine is (a poll on the checkpoint used to let the run finish first).
_PAUSED_TRAIN = """
import sys, time
from pathlib import Path
import greenless.train.supervised as supervised
config, pause, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
real = supervised.lr_factor
def lr_factor(step, *args, **kwargs):
    if step == pause:
        marker.touch()
        while True:
            time.sleep(60)
    return real(step, *args, **kwargs)
supervised.lr_factor = lr_factor
from greenless.cli import main
main(["train", config])
"""


def kill_after_checkpoint(config: Path, last: Path, step: int) -> Path:
    """Run ``greenless train config`` until its checkpoint ``last`` holds ``step`` and one more step is done
    (lost to the kill), then SIGKILL it; fails if the run ends on its own or never gets there."""
    marker = last.parent.parent / f"{config.stem}.paused"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    with open(last.parent.parent / f"{config.stem}.stderr", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", _PAUSED_TRAIN, str(config), str(step + 1), str(marker)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 600
        while not marker.exists():
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                err.seek(0)
                pytest.fail(f"the training run ended or stalled before step {step + 1}: {err.read()[-2000:]}")
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert torch.load(last, weights_only=True)["step"] == step
    return last


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
    last = kill_after_checkpoint(killed, tmp_path / "killed" / "last.pt", 2)  # killed after step 3, saved at 2
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


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_budget_run_stops_on_final_lr_and_writes_validated_weights(tmp_path: Path, tiny_set: Path) -> None:
    from greenless.model.checkpoint import read_card
    from greenless.train.supervised import train

    val = make_val_set(tiny_set, tmp_path / "val")
    cfg = write_config(tmp_path, tiny_set, "budget", 1000, 2, every=1000, extra="minutes = 0.04\nnum_workers = 1",
                       data_extra=f'val = "{val}"\nval_ref_size = 64')
    final = train(load_config(cfg), progress=False)
    steps = [r for r in read_log(tmp_path / "budget") if "loss" in r]
    assert 2 <= len(steps) < 1000  # the budget stopped it, not `steps`
    assert steps[-1]["lr"] == pytest.approx(1e-3 * 0.02)  # the last step runs at the schedule's end
    assert all(0 <= r["data_s"] <= r["step_s"] for r in steps)
    card = read_card(final)
    assert set(card["validation"]) == {"mse", "mad"} and card["training"]["steps"] == len(steps)
    state = torch.load(tmp_path / "budget" / "last.pt", weights_only=True)
    assert state["finished"] and state["step"] == len(steps) and state["budget_s"] == pytest.approx(2.4)

    train(load_config(cfg), progress=False)  # a spent budget stays spent: no step more
    assert len([r for r in read_log(tmp_path / "budget") if "loss" in r]) == len(steps)


def test_budget_clock_plans_the_last_step() -> None:
    from greenless.train.supervised import RunClock, lr_factor
    from greenless.train.config import TrainConfig

    fresh = RunClock(budget_s=100.0)
    fresh.record(1.0)
    progress, last = fresh.plan()
    assert not last and 0.01 <= progress < 0.02
    nearly = RunClock(budget_s=100.0, carried_s=98.5)  # resumed: the earlier sessions' seconds count
    nearly.record(1.0)
    assert nearly.plan() == (1.0, True)  # a step after this one would not fit
    cfg = TrainConfig()
    assert lr_factor(10_000, cfg, progress=1.0) == pytest.approx(0.02)
    assert lr_factor(10_000, cfg, progress=0.0) == pytest.approx(1.0)


def test_budgeted_run_resumes_with_the_rest_of_its_budget(tmp_path: Path, tiny_set: Path) -> None:
    cfg = write_config(tmp_path, tiny_set, "resumed", 1000, 2, every=2, extra="minutes = 0.1")
    last = kill_after_checkpoint(cfg, tmp_path / "resumed" / "last.pt", 2)
    state = torch.load(last, weights_only=True)
    assert not state["finished"] and state["elapsed_s"] > 0

    proc = run_cli("greenless", "train", str(cfg))
    assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-2000:]
    rows = [r for r in read_log(tmp_path / "resumed") if "loss" in r]
    restart = max(i for i, r in enumerate(rows) if r["step"] == state["step"] + 1)
    assert rows[restart]["elapsed_s"] > state["elapsed_s"]  # the clock goes on from the checkpoint, not from 0
    assert [r["step"] for r in rows[restart:]] == list(range(state["step"] + 1, rows[-1]["step"] + 1))
    assert rows[-1]["lr"] == pytest.approx(1e-3 * 0.02)
    end = torch.load(last, weights_only=True)
    assert end["finished"] and end["elapsed_s"] > state["elapsed_s"]
    assert (tmp_path / "resumed" / "final.safetensors").is_file()


def test_one_loader_gives_each_step_its_batch_after_resume(tmp_path: Path, tiny_set: Path) -> None:
    """The run-long loader (worker process, epoch in the index) serves step s exactly what the per-epoch
    loaders served before: set_epoch in the main process, that epoch's permutation, batch s % steps_per_epoch."""
    from torch.utils.data import default_collate

    from greenless.train.supervised import build_dataset, epoch_batches, make_loader

    cfg = load_config(write_config(tmp_path, tiny_set, "loader", 10, 2, extra="num_workers = 1"))
    dataset = build_dataset(cfg)
    per_epoch = len(epoch_batches(len(dataset), 2, 0, 0, 0, 1))
    assert per_epoch < 8  # steps 6..9 cross an epoch boundary

    def reference(step: int) -> dict:
        epoch, offset = divmod(step, per_epoch)
        for part in dataset.datasets:
            part.set_epoch(epoch)
        return default_collate([dataset[i] for i in epoch_batches(len(dataset), 2, epoch, 0, 0, 1)[offset]])

    straight = list(make_loader(dataset, cfg, 0))
    resumed = list(make_loader(dataset, cfg, 6))
    assert len(straight) == 10 and len(resumed) == 4
    for step in range(6, 10):
        want = reference(step)
        for got in (straight[step], resumed[step - 6]):
            assert all(torch.equal(got[k], want[k]) for k in want)
    assert not torch.equal(straight[0]["image"], straight[per_epoch]["image"])  # epochs differ


def test_compact_batches_travel_in_half_the_bytes() -> None:
    from greenless.train.supervised import collate_compact, to_device

    alpha = torch.rand(1, 16, 16)
    sample = {"image": torch.rand(3, 16, 16) * 2 - 1, "alpha": alpha, "band": (alpha > 0.5).float(),
              "has_comp": torch.tensor(1.0)}
    batch = collate_compact([sample, sample])
    assert batch["image"].dtype == torch.float16 and batch["band"].dtype == torch.uint8
    back = to_device(batch, torch.device("cpu"))
    assert all(v.dtype == torch.float32 for v in back.values())
    assert torch.equal(back["band"][0], sample["band"]) and float((back["alpha"][0] - alpha).abs().max()) < 5e-4


def gpu_train_module():
    return load_script("gpu_train")


def test_gpu_round_trip_prepare_train_split_collect(tmp_path: Path, tiny_set: Path) -> None:
    """prepare packs data, validation set and init weights with a config that points at them; train (here on
    CPU) writes fp16 weights in parts; collect reassembles them bit for bit."""
    import shutil

    from greenless.model.checkpoint import read_card, save_weights
    from greenless.train.supervised import build_dataset

    gpu = gpu_train_module()
    data = tmp_path / "data"
    shutil.copytree(tiny_set, data / "set")
    init = tmp_path / "init" / "start.safetensors"
    save_weights(build_model({"encoder": "mobilenetv2", "hr_channels": 8}), init, {}, half=True)
    val = make_val_set(tiny_set, tmp_path / "val")
    cfg = write_config(tmp_path, data / "set", "src", 1000, 2, data_extra=f'val = "{val}"\nval_ref_size = 64',
                       extra="num_workers = 0")
    cfg.write_text(cfg.read_text().replace("pretrained = false", f'pretrained = false\ninit_weights = "{init}"'))
    dest = tmp_path / "work" / "gpu"
    info = gpu.prepare(cfg, data, dest, overrides={"train.threads": 1})
    assert info["copied_bytes"] < gpu.CARRY_LIMIT and info["webp_bytes"] < info["png_bytes"]
    packed = load_config(dest / "config.toml")
    assert packed.data.foregrounds == ["data/set"] and packed.data.val == "val"
    assert packed.resolve(packed.model.init_weights) == dest / "start.safetensors"
    assert len(build_dataset(packed)) == len(build_dataset(load_config(cfg)))  # WebP fgs pair up as the PNGs did

    out = tmp_path / "OUT"
    manifest = gpu.run_training(dest / "config.toml", 0.03, "tiny", out, progress=False)
    assert manifest["parts"] == ["tiny.safetensors"] and manifest["throughput"]["images_per_s"] > 0
    whole = out / "tiny.safetensors"
    split = tmp_path / "OUT-split"  # the same run exported in parts, as a file over 15 MiB would be
    parts = gpu.export_run(dest / "out" / "tiny" / "final.safetensors", split, "tiny",
                           part_bytes=whole.stat().st_size // 3 + 1)["parts"]
    assert parts == ["tiny.safetensors.000", "tiny.safetensors.001", "tiny.safetensors.002"]

    final = gpu.collect(split, tmp_path / "runs")
    assert final == tmp_path / "runs" / "tiny" / "final.safetensors" and final.read_bytes() == whole.read_bytes()
    assert "validation" in read_card(final) and (final.parent / "log.jsonl").is_file()
    assert load_weights(final)[0].config.hr_channels == 8


def test_weights_stash_and_restore(tmp_path: Path) -> None:
    """stash-weights moves the packaged weights out of the tree; restore puts them back, from git's index
    when a stashed copy was lost."""
    gpu = gpu_train_module()
    repo = tmp_path / "repo"
    weights = repo / "src" / "greenless" / "weights"
    weights.mkdir(parents=True)
    (weights / "a.safetensors").write_bytes(b"a" * 1000)
    (weights / "a.json").write_text("{}")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "w"], cwd=repo, check=True)
    (weights / "a.json").write_text('{"edited": true}')  # uncommitted edits travel through the stash too

    stash = repo / "work" / "stash"
    assert sorted(gpu.stash_weights(repo, stash)) == ["src/greenless/weights/a.json",
                                                      "src/greenless/weights/a.safetensors"]
    assert not list(weights.iterdir())
    assert len(gpu.restore_weights(repo, stash)) == 2 and not stash.exists()
    assert (weights / "a.json").read_text() == '{"edited": true}' and (weights / "a.safetensors").stat().st_size == 1000

    gpu.stash_weights(repo, stash)
    (stash / "a.safetensors").unlink()  # lost: git's copy is the same bytes
    (stash / "a.json").unlink()  # lost, and git holds other bytes: restore must refuse, keeping the stash
    with pytest.raises(SystemExit, match="a.json"):
        gpu.restore_weights(repo, stash)
    assert (weights / "a.safetensors").read_bytes() == b"a" * 1000 and stash.exists()
