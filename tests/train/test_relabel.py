"""Self-training labels (scripts/relabel_training_data.py): the photo default re-labels the real pictures of a
training folder, keeps plate-made labels and those where teacher and label disagree about the person, resumes,
and refuses a bad folder in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]


def relabel(*args: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(REPO / "scripts" / "relabel_training_data.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_the_photo_default_relabels_and_plate_labels_stay(tmp_path: Path, tiny_set: Path) -> None:
    data = tmp_path / "set"
    shutil.copytree(tiny_set, data)
    first = relabel(data, "-o", tmp_path / "teacher")
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads((tmp_path / "teacher" / "manifest.json").read_text())["set"]
    out = tmp_path / "teacher" / "set"
    assert report["plate"] == 1 and report["relabelled"] + report["disagree"] == 2, report
    # The room frame's label came from its clean plate: copied byte for byte.
    for sub in ("alpha", "fg"):
        assert (out / sub / "room_00132.png").read_bytes() == (data / sub / "room_00132.png").read_bytes()
    # A re-labelled picture: a new alpha of the same size, close to the old one but not equal (edges moved).
    assert report["relabelled"] >= 1
    relabelled = [p.stem for p in (data / "image").glob("*.jpg") if not p.stem.startswith("room_")
                  and (out / "alpha" / f"{p.stem}.png").read_bytes() != (data / "alpha" / f"{p.stem}.png").read_bytes()]
    assert len(relabelled) == report["relabelled"]
    stem = relabelled[0]
    new, old = read(out / "alpha" / f"{stem}.png"), read(data / "alpha" / f"{stem}.png")
    assert new.shape == old.shape and 0 < np.abs(new.astype(int) - old).mean() < 20
    assert read(out / "fg" / f"{stem}.png").shape == old.shape + (3,)
    # Stopped and run again: finished pictures are not redone.
    again = relabel(data, "-o", tmp_path / "teacher")
    assert again.returncode == 0
    assert json.loads((tmp_path / "teacher" / "manifest.json").read_text())["set"]["done_before"] == 3


def test_a_teacher_that_disagrees_about_the_person_changes_nothing(tmp_path: Path, tiny_set: Path) -> None:
    result = relabel(tiny_set, "-o", tmp_path / "out", "--min-iou", "1.01")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "manifest.json").read_text())[tiny_set.name]
    assert report["relabelled"] == 0 and report["disagree"] == 2
    for p in (tiny_set / "alpha").iterdir():
        assert (tmp_path / "out" / tiny_set.name / "alpha" / p.name).read_bytes() == p.read_bytes()


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = relabel(tmp_path / "nope", "-o", tmp_path / "out")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "nope" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()
