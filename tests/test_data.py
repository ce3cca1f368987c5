"""Training data: folder layouts and their errors, composition samples, determinism, previous-alpha jitter."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from greenless.data.datasets import CompositionDataset, LabelledDataset, jitter_prev_alpha, load_pair
from greenless.data.folders import find_backgrounds, find_foregrounds, find_labelled, find_unlabelled
from greenless.errors import GreenlessError


def test_layouts_are_found(tiny_set: Path, tmp_path: Path) -> None:
    assert len(find_foregrounds(tiny_set)) == 3
    assert len(find_labelled(tiny_set)) == 3  # image/ + alpha/
    assert len(find_backgrounds(tiny_set / "bg")) == 2
    listing = tmp_path / "bgs.txt"
    listing.write_text("\n".join(str(p) for p in sorted((tiny_set / "bg").iterdir())) + "\n")
    assert len(find_backgrounds(listing)) == 2
    # P3M-500 names: blurred_image/ + mask/
    shutil.copytree(tiny_set / "image", tmp_path / "p3m" / "blurred_image")
    shutil.copytree(tiny_set / "alpha", tmp_path / "p3m" / "mask")
    assert len(find_labelled(tmp_path / "p3m")) == 3


def test_missing_alpha_is_a_clear_error(tiny_set: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_set, tmp_path / "set")
    victim = sorted((tmp_path / "set" / "alpha").iterdir())[0]
    victim.unlink()
    with pytest.raises(GreenlessError, match=f"no alpha for {victim.stem}"):
        find_labelled(tmp_path / "set")


def test_empty_and_mismatched_folders_are_errors(tiny_set: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "image").mkdir(parents=True)
    (tmp_path / "empty" / "alpha").mkdir()
    with pytest.raises(GreenlessError, match="no images found"):
        find_labelled(tmp_path / "empty")
    with pytest.raises(GreenlessError, match="expected image/ and alpha/"):
        find_labelled(tiny_set / "bg")
    shutil.copytree(tiny_set, tmp_path / "set")
    alpha_path = sorted((tmp_path / "set" / "alpha").iterdir())[0]
    cv2.imwrite(str(alpha_path), np.zeros((7, 9), np.uint8))
    pair = [p for p in find_labelled(tmp_path / "set") if p.alpha == alpha_path][0]
    with pytest.raises(GreenlessError, match="does not match"):
        load_pair(pair)
    with pytest.raises(GreenlessError, match="no images or videos"):
        find_unlabelled(tmp_path / "empty")


def test_composites_are_valid_and_reproducible(tiny_set: Path) -> None:
    ds = CompositionDataset(find_foregrounds(tiny_set), find_backgrounds(tiny_set / "bg"), size=64,
                            composites_per_fg=3, seed=7)
    assert len(ds) == 9
    a, b = ds[4], ds[4]
    assert a["image"].shape == (3, 64, 64) and a["alpha"].shape == (1, 64, 64)
    assert a["semantic"].shape == (1, 4, 4) and a["band"].shape == (1, 64, 64)
    assert float(a["image"].min()) >= -1.0 and float(a["image"].max()) <= 1.0
    assert bool(a["has_comp"]) and (a["image"] == b["image"]).all()
    ds.set_epoch(1)
    assert not (ds[4]["image"] == a["image"]).all()  # a new epoch draws new crops and backgrounds
    # the composite really is alpha*fg + (1-alpha)*bg (in linear light): where alpha is 1 it equals fg
    solid = a["alpha"][0] > 0.999
    if solid.any():
        assert (a["image"][:, solid] + 1) / 2 == pytest.approx(a["fg"][:, solid], abs=0.25)


def test_real_images_and_previous_alpha_channel(tiny_set: Path) -> None:
    ds = LabelledDataset(find_labelled(tiny_set), size=64, hint="prev-alpha")
    sample = ds[0]
    assert sample["image"].shape == (4, 64, 64) and not bool(sample["has_comp"])
    whole = LabelledDataset(find_labelled(tiny_set), size=None)[0]
    assert whole["image"].shape[1:] == whole["alpha"].shape[1:]


def test_previous_alpha_is_blanked_or_jittered() -> None:
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1
    outcomes = [jitter_prev_alpha(np.random.default_rng(i), alpha) for i in range(40)]
    blank = [o for o in outcomes if not o.any()]
    assert 4 <= len(blank) <= 22  # p = 0.3 of 40
    moved = [o for o in outcomes if o.any()]
    assert all(not np.array_equal(o, alpha) for o in moved)
