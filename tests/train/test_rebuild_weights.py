"""One command rebuilds each shipped set (scripts/rebuild_weights.py, greenless.train.recipes): the shipped cards
name the real recipe (config, warm start, data, command), the plan holds every stage, and --tiny runs the
whole chain for real (data building, warm starts rebuilt from scratch, training, shipping) and resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from greenless.train.config import load_config
from greenless.train.recipes import RECIPES, card_record, chain

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "src" / "greenless" / "weights"


def rebuild(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(REPO / "scripts" / "rebuild_weights.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("name", ["modnet", "modnet-paper"])
def test_each_card_records_the_recipe_that_made_it(name: str) -> None:
    """The card names the one command, an existing config whose settings are the ones the run recorded, and
    the warm start the config really loads (today modnet.json named another set and a config that no
    longer existed)."""
    card = json.loads((WEIGHTS / f"{name}.json").read_text())
    assert card["recipe"] == card_record(name, REPO)
    assert card["recipe"]["command"] == f"python scripts/rebuild_weights.py {name}"
    config = load_config(REPO / card["recipe"]["config"])
    for section, values in card["training"]["config"].items():
        for key, value in values.items():
            now = getattr(getattr(config, section), key)
            if now is not None:
                assert now == value, (section, key)
    assert card["training"]["loss"] == config.loss().to_dict()
    assert "configs/default.toml" not in json.dumps(card) and "<name>" not in json.dumps(card)
    warm = RECIPES[name].warm_start
    if warm:
        assert card["warm_start"]["weights"] == config.model.init_weights
        assert card["recipe"]["warm_start"]["recipe"] == warm


def test_the_warm_starts_named_in_git_are_there() -> None:
    """The exact bytes each warm start was taken from are in this clone's history (skipped in a shallow one)."""
    if subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True,
                      text=True).stdout.strip() != "false":
        pytest.skip("not a full git clone")
    for r in RECIPES.values():
        if r.warm_start_git:
            assert subprocess.run(["git", "cat-file", "-e", r.warm_start_git], cwd=REPO).returncode == 0, r.name


def test_dry_run_plans_every_stage_and_writes_nothing(tmp_path: Path, shared_data: Path) -> None:
    result = rebuild("modnet", "--dry-run", "--from-scratch", "--work", tmp_path / "runs", "--out", tmp_path / "w",
                     "--shared", shared_data.parent)
    assert result.returncode == 0, result.stderr
    steps = [line.split(": ")[0].split("] ", 1)[1] for line in result.stderr.splitlines()]
    assert steps == ["data runs/data", "data runs/data-extra", "warm start modnet-1255fc4.safetensors",
                     "warm start modnet-paper.safetensors", "train modnet-paper", f"ship modnet-paper into {tmp_path / 'w'}",
                     "train modnet-prev-alpha to step 800", "train modnet-prev-alpha to step 1600", "train modnet",
                     f"ship modnet into {tmp_path / 'w'}"]
    assert [r.name for r in chain("modnet")] == ["modnet-paper", "modnet-prev-alpha", "modnet"]
    assert not tmp_path.joinpath("runs").exists() and not tmp_path.joinpath("w").exists()


def test_the_self_training_plan_relabels_with_the_packaged_network(tmp_path: Path, shared_data: Path) -> None:
    """modnet-self: the data, the packaged modnet as warm start and teacher, the teacher's labels, training; no
    ship stage (an experiment), and asking for modnet-prev-alpha (a warm start) is still refused."""
    result = rebuild("modnet-self", "--dry-run", "--work", tmp_path / "runs", "--shared", shared_data.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line.split(": ")[0].split("] ", 1)[1] for line in lines] == [
        "data runs/data", "data runs/data-extra", "warm start modnet.safetensors", "teacher labels runs/teacher",
        "train modnet-self"]
    teacher = next(line for line in lines if "teacher labels" in line)
    assert f"--weights {REPO / 'src' / 'greenless' / 'weights' / 'modnet.safetensors'} --ref-size 384" in teacher
    assert f"{tmp_path / 'runs' / 'data'} {tmp_path / 'runs' / 'data-extra'} -o {tmp_path / 'runs' / 'teacher'}" in teacher
    assert not tmp_path.joinpath("runs").exists()


def test_bad_requests_are_one_line(tmp_path: Path, shared_data: Path) -> None:
    for args, says in ((["nope"], "no recipe for 'nope'"), (["modnet-prev-alpha"], "not a shipped set"),
                       (["modnet", "--shared", tmp_path / "none"], "the shared data")):
        result = rebuild(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and says in lines[0], result.stderr


def tiny_shared(tmp: Path, shared_data: Path, tiny_set: Path) -> Path:
    """A shared folder the data builders finish in seconds: one ASL clip, the portrait video, a 24-frame room
    video made here (the room plate with a person walking across), one background, the real portraits for
    validation and the reference model."""
    import av
    import cv2

    root = tmp / "shared"
    videos = root / "data" / "videos"
    (videos / "asl").mkdir(parents=True)
    (root / "data" / "backgrounds").mkdir()
    (root / "models").mkdir()
    (videos / "asl" / "yes.mkv").symlink_to(shared_data / "videos" / "asl" / "yes.mkv")
    (videos / "thoughtful-35590.mp4").symlink_to(shared_data / "videos" / "thoughtful-35590.mp4")
    (root / "data" / "backgrounds" / "sky.jpg").symlink_to(shared_data / "backgrounds" / "sky.jpg")
    (root / "data" / "portraits").symlink_to(shared_data / "portraits")
    (root / "models" / "selfie_segmentation.onnx").symlink_to(shared_data.parent / "models" / "selfie_segmentation.onnx")
    plate = cv2.resize(cv2.imread(str(tiny_set / "bg" / "room_plate_0.jpg")), (192, 112))[:, :, ::-1]
    fg = cv2.resize(cv2.imread(str(tiny_set / "fg" / "room_00132.png")), (83, 80))[:, :, ::-1].astype(np.float32)
    alpha = cv2.resize(cv2.imread(str(tiny_set / "alpha" / "room_00132.png"), 0), (83, 80))[..., None] / 255.0
    with av.open(str(videos / "one-by-one-person-detection.mp4"), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 192, 112, "yuv420p"
        for i in range(24):
            frame = plate.astype(np.float32)
            x = (192 - 83) * i // 23
            frame[32:, x:x + 83] = alpha * fg + (1 - alpha) * frame[32:, x:x + 83]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return root


@pytest.mark.slow
def test_tiny_rebuild_runs_the_whole_chain_and_resumes(tmp_path: Path, shared_data: Path, tiny_set: Path) -> None:
    """modnet-self from scratch on tiny data: both data builders, modnet-paper trained and shipped, the
    previous-alpha warm start trained in two resumed stages and rounded to fp16, modnet trained from it and
    shipped with a card that records the recipe, the data re-labelled by the photo default on that modnet (the
    teacher), and modnet-self trained on those labels and left in the work folder. A second run finds every
    stage done."""
    shared = tiny_shared(tmp_path, shared_data, tiny_set)
    work, out = tmp_path / "runs", tmp_path / "weights"
    args = ("modnet-self", "--tiny", "--from-scratch", "--work", work, "--out", out, "--shared", shared)
    first = rebuild(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / "data" / "manifest.json").is_file() and (work / "data-extra" / "manifest.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == [f"{n}.{e}" for n in ("modnet-paper", "modnet")
                                                      for e in ("json", "onnx", "safetensors")]
    card = json.loads((out / "modnet.json").read_text())
    assert card["recipe"] == card_record("modnet", REPO) and card["training"]["loss"]["name"] == "greenless"
    scores = card["validation"]  # each job as users get it, per portrait and the mean
    assert {"stream", "photo", "photo, network alone"} <= set(scores) and len(scores["photo"]["per_image"]) == 4
    assert 0.0 < scores["stream"]["mean"]["mad"] < 1.0 and scores["photo"]["mean"]["band"] > 0.0
    assert card["warm_start"] == {"weights": str(work / "init" / "modnet-1255fc4.safetensors"),
                                  "from": "greenless-modnet-prev-alpha (rebuilt)", "tensors": "437 of 437"}
    teacher = json.loads((work / "teacher" / "manifest.json").read_text())
    assert teacher["teacher"]["weights"] == str(out / "modnet.safetensors")
    assert teacher["data"]["plate"] >= 1 and teacher["data"]["relabelled"] + teacher["data"]["disagree"] >= 1
    assert (work / "modnet-self" / "final.safetensors").is_file() and f"{work / 'modnet-self'}" in first.stderr
    prev = [json.loads(line) for line in (work / "realtime-prev-alpha" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in prev if "loss" in r] == [1, 2]  # two stages: the second resumed the first
    paper = json.loads((out / "modnet-paper.json").read_text())
    assert paper["training_data"]["built_by"].startswith("scripts/build_training_data.py -o runs/data (")
    assert "openpeople" not in json.dumps(paper["training_data"])

    again = rebuild(*args)
    assert again.returncode == 0, again.stderr
    stages = [line for line in again.stderr.splitlines() if line.startswith("[")]
    assert stages and all(": done" in line for line in stages), stages


def test_the_train_extra_brings_the_backgrounds_the_card_lists() -> None:
    """The shipped card's backgrounds include scikit-image's sample photos; the rebuild's data stage reads them
    from the installed package, so the train extra must install it (without it the data built had none and
    the script filled the gap with procedural backgrounds, so the card's command did not rebuild its set)."""
    script = load_script("build_extra_data")
    files = script.PackageFiles.locate("skimage", None)
    assert files is not None, "scikit-image is not installed: pip install -e '.[train]'"
    missing = [name for name, _, _ in script.SKIMAGE_PHOTOS if not files.exists(f"data/{name}")]
    assert not missing
    card = json.loads((WEIGHTS / "modnet.json").read_text())
    assert f"{3 * len(script.SKIMAGE_PHOTOS)} scikit-image sample photos" in card["training_data"]["backgrounds"]
