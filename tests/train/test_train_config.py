"""Training configs and flags: every bad value is one error line naming its key, before anything is created
(no runs/ folder left behind); --steps wins over a config's minutes; the last step runs at the schedule's end
even inside warm-up; validation data is never training data; --no-resume starts a fresh log; the card records
the loss and the true warm start."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_main
from greenless.errors import GreenlessError
from greenless.model.checkpoint import read_card
from greenless.train.config import TrainConfig, config_from_dict, load_config
from test_train import make_val_set, write_config


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line]


@pytest.mark.parametrize(("section", "setting", "key", "says"), [
    ("train", "batch_size = 0", "[train] batch_size", "at least 1"),
    ("data", "size = 0", "[data] size", "multiple of 32"),
    ("data", "size = 100", "[data] size", "multiple of 32"),
    ("data", "edge_crop_p = 1.5", "[data] edge_crop_p", "between 0 and 1"),
    ("train", "lr = nan", "[train] lr", "finite"),
    ("train", "lr = -1e-3", "[train] lr", "above 0"),
    ("train", "minutes = inf", "[train] minutes", "finite"),
    ("train", 'batch_size = "8"', "[train] batch_size", "whole number"),
    ("train", "amp = 1", "[train] amp", "true or false"),
    ("model", 'encoder = "resnet50"', "[model] encoder", "'efficientnet-lite0'"),
    ("train", "steps = -1", "[train] steps", "at least 0"),
    ("train", "threads = 100000", "[train] threads", "between 0 and 256"),
    ("train", 'loss = "mine"', "[train] loss", "'official'"),
    ("train", 'detail_norm = "pixel"', "[train] detail_norm", "'band'"),
    ("data", 'foregrounds = "x"', "[data] foregrounds", "list of strings"),
    ("model", 'hint = "guide"', "[model] hint", "in_channels = 4"),
])
def test_bad_settings_are_one_line_naming_the_key_and_create_nothing(
        tmp_path: Path, tiny_set: Path, capsys: pytest.CaptureFixture[str], section: str, setting: str, key: str,
        says: str) -> None:
    cfg = write_config(tmp_path, tiny_set, "run", 2, 2)
    text = cfg.read_text()
    key_name = setting.split(" =")[0]
    lines = [line for line in text.splitlines() if not line.startswith(f"{key_name} =")]
    at = lines.index(f"[{section}]") + 1
    cfg.write_text("\n".join(lines[:at] + [setting] + lines[at:]) + "\n")
    with pytest.raises(GreenlessError, match="^" + re.escape(f"{cfg}: ")) as info:
        load_config(cfg)
    assert key in str(info.value) and says in str(info.value), info.value
    code, err = run_main(["train", cfg], capsys)
    assert code == 2 and err.count("\n") == 1 and key in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("flags", "says"), [
    (["--steps", "-1"], "--steps"),
    (["--minutes", "inf"], "--minutes"),
    (["--minutes", "nan"], "--minutes"),
    (["--minutes", "-2"], "--minutes"),
    (["--num-workers", "100000"], "--num-workers"),
    (["--steps", "2", "--minutes", "1"], "not both"),
])
def test_bad_training_flags_are_one_line(tmp_path: Path, tiny_set: Path, capsys: pytest.CaptureFixture[str],
                                         flags: list[str], says: str) -> None:
    cfg = write_config(tmp_path, tiny_set, "run", 2, 2)
    code, err = run_main(["train", cfg, *flags], capsys)
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert not (tmp_path / "run").exists()


def test_missing_data_or_init_weights_leave_no_run_folder(tmp_path: Path, tiny_set: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, tmp_path / "nowhere", "run", 2, 2)
    code, err = run_main(["train", cfg], capsys)
    assert code == 2 and "nowhere" in err and err.count("\n") == 1, err
    cfg = write_config(tmp_path, tiny_set, "run", 2, 2)
    cfg.write_text(cfg.read_text().replace("pretrained = false", 'pretrained = false\ninit_weights = "gone.safetensors"'))
    code, err = run_main(["train", cfg], capsys)
    assert code == 2 and "[model] init_weights" in err and err.count("\n") == 1, err
    cfg = write_config(tmp_path, tiny_set, "run", 2, 64)  # 9 samples: not one batch of 64
    code, err = run_main(["train", cfg], capsys)
    assert code == 2 and "fewer than one batch" in err, err
    assert not (tmp_path / "run").exists()


def test_an_out_dir_that_cannot_be_a_folder_is_one_line(tmp_path: Path, tiny_set: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, tiny_set, "run", 2, 2)
    (tmp_path / "file").write_text("mine")
    for flag, says in (("file", "not a folder"), ("file/sub", "cannot write")):
        code, err = run_main(["train", cfg, "--out-dir", tmp_path / flag], capsys)
        assert code == 2 and err.count("\n") == 1 and says in err, err
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "run").exists()


def test_validation_inside_training_data_is_refused(tmp_path: Path, tiny_set: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The same folder, a folder inside it, a folder around it, and a copy of its files under another name."""
    data = tmp_path / "data"
    shutil.copytree(tiny_set, data / "set")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_set, copy)
    shutil.rmtree(copy / "fg")
    for val, says in ((data / "set", "is the training data"), (data, "contains the training data"),
                      (copy, "is also training data")):
        cfg = write_config(tmp_path, data / "set", "run", 2, 2, data_extra=f'val = "{val}"')
        code, err = run_main(["train", cfg], capsys)
        assert code == 2 and says in err and "validation must never be trained on" in err, (val, err)
        assert err.count("\n") == 1 and not (tmp_path / "run").exists()
    # the reverse: the validation folder inside a training folder
    outer = tmp_path / "outer"
    shutil.copytree(tiny_set, outer)
    make_val_set(tiny_set, outer / "val")
    cfg = write_config(tmp_path, outer, "run", 2, 2, data_extra=f'val = "{outer / "val"}"')
    code, err = run_main(["train", cfg], capsys)
    assert code == 2 and "is inside the training data" in err and not (tmp_path / "run").exists(), err


def test_steps_flag_wins_over_the_configs_minutes_and_no_resume_starts_a_fresh_log(
        tmp_path: Path, tiny_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, tiny_set, "run", 1000, 2, extra="minutes = 30")
    code, err = run_main(["train", cfg, "--steps", "2"], capsys)
    assert code == 0, err
    run = tmp_path / "run"
    assert [r["step"] for r in rows(run)] == [1, 2]  # two steps, not 30 minutes
    card = read_card(run / "final.safetensors")
    assert card["training"]["steps"] == 2 and card["training"]["config"]["train"]["minutes"] == 0.0
    code, err = run_main(["train", cfg, "--steps", "3", "--no-resume"], capsys)
    assert code == 0, err
    assert [r["step"] for r in rows(run)] == [1, 2, 3]  # a fresh log, not the old two rows and three more


def test_the_last_step_runs_at_the_end_rate_even_inside_warm_up() -> None:
    from greenless.train.supervised import lr_factor

    cfg = config_from_dict({"train": {"steps": 3, "warmup_steps": 20}})
    assert [lr_factor(s, cfg) for s in range(3)] == pytest.approx([1 / 20, 2 / 20, 0.02])
    budget = config_from_dict({"train": {"minutes": 1.0, "warmup_steps": 20}})
    assert lr_factor(2, budget, progress=0.5) == pytest.approx(3 / 20)  # still warming up
    assert lr_factor(2, budget, progress=1.0) == pytest.approx(0.02)  # the budget's last step
    assert lr_factor(5, config_from_dict({"train": {"steps": 6, "warmup_steps": 0}})) == pytest.approx(0.02)


def test_a_budget_ending_inside_warm_up_ends_at_the_documented_rate(tmp_path: Path, tiny_set: Path) -> None:
    from greenless.train.supervised import train

    cfg = write_config(tmp_path, tiny_set, "short", 1000, 2, every=1000, extra="minutes = 0.03")
    cfg.write_text(cfg.read_text().replace("warmup_steps = 0", "warmup_steps = 10000"))
    train(load_config(cfg), progress=False)
    steps = rows(tmp_path / "short")
    assert 2 <= len(steps) < 10000 and steps[-1]["lr"] == pytest.approx(1e-3 * 0.02)
    assert steps[0]["lr"] == pytest.approx(1e-3 / 10000)


@pytest.mark.parametrize("loss", ["greenless", "paper", "official"])
def test_the_card_records_the_loss_and_the_true_warm_start(tmp_path: Path, tiny_set: Path, loss: str) -> None:
    from greenless.train.supervised import train

    first = train(load_config(write_config(tmp_path, tiny_set, "first", 1, 2)), progress=False)
    cfg = write_config(tmp_path, tiny_set, "second", 1, 2, extra=f'loss = "{loss}"')
    cfg.write_text(cfg.read_text().replace("pretrained = false", f'pretrained = false\ninit_weights = "{first}"'))
    card = read_card(train(load_config(cfg), progress=False))
    assert card["training"]["loss"]["name"] == loss
    assert card["training"]["loss"]["semantic"] == (10.0 if loss == "official" else 1.0)
    assert card["training"]["loss"]["detail_norm"] == ("band" if loss == "greenless" else "image")
    assert card["warm_start"]["weights"] == str(first) and card["warm_start"]["tensors"].split(" of ")[0] != "0"
    assert card["training"]["config"]["model"]["init_weights"] == str(first)


def test_shipped_configs_name_their_loss() -> None:
    """The shipped recipes say which objective made their weights (the current behaviour, by name)."""
    repo = Path(__file__).resolve().parents[2]
    for name in ("modnet", "modnet-paper"):
        text = (repo / "configs" / f"{name}.toml").read_text()
        assert 'loss = "greenless"' in text
        assert load_config(repo / "configs" / f"{name}.toml").loss().name == "greenless"
    assert TrainConfig().loss().detail_norm == "band"


@pytest.mark.parametrize("lr", ["nan", "inf", "0", "-1e-5"])
def test_adapt_refuses_a_learning_rate_that_is_not_a_positive_number(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                     lr: str) -> None:
    code, err = run_main(["adapt", "--weights", tmp_path / "w.safetensors", "--data", tmp_path, "-o",
                          tmp_path / "o.safetensors", "--lr", lr], capsys)
    assert code == 2 and err.count("\n") == 1 and "--lr" in err, err
    assert list(tmp_path.iterdir()) == []


def test_crops_are_multiples_of_the_networks_stride() -> None:
    """An encoder that sees the crop at half size needs crops that are multiples of 64 (its features line up with
    the image only there, and inference runs only there); the whole-image encoder keeps 32."""
    assert config_from_dict({"data": {"size": 96}}).data.size == 96
    assert config_from_dict({"model": {"semantic_scale": 0.5}, "data": {"size": 384}}).data.size == 384
    with pytest.raises(GreenlessError, match=r"\[data\] size must be a multiple of 64 with semantic_scale = 0.5 \(got 288\)"):
        config_from_dict({"model": {"semantic_scale": 0.5}, "data": {"size": 288}})
