"""Training data: folder layouts and their errors, composition samples, determinism, previous-alpha jitter,
face blur and harmonisation, studio pseudo-labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from greenless.data.augment import face_blur, harmonise, random_crop_scale
from greenless.data.datasets import CompositionDataset, LabelledDataset, jitter_prev_alpha, load_pair
from greenless.data.folders import find_backgrounds, find_foregrounds, find_labelled, find_unlabelled
from greenless.data.pseudo_labels import studio_trimap
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
    with pytest.raises(GreenlessError, match=f"no ground truth for 1 image.*{victim.stem}"):
        find_labelled(tmp_path / "set")


def test_empty_and_mismatched_folders_are_errors(tiny_set: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "image").mkdir(parents=True)
    (tmp_path / "empty" / "alpha").mkdir()
    with pytest.raises(GreenlessError, match="no images found"):
        find_labelled(tmp_path / "empty")
    with pytest.raises(GreenlessError, match="no known dataset layout"):
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


def _person(h: int = 160, w: int = 120, head: int = 16, top: int = 12) -> np.ndarray:
    """A synthetic silhouette: a round head on a neck on wide shoulders reaching the bottom edge."""
    alpha = np.zeros((h, w), np.float32)
    cx = w // 2
    cv2.ellipse(alpha, (cx, top + head + 2), (head, head + 2), 0, 0, 360, 1.0, -1)
    cv2.rectangle(alpha, (cx - head // 2, top + 2 * head), (cx + head // 2, top + 3 * head), 1.0, -1)
    cv2.rectangle(alpha, (cx - 3 * head, top + 3 * head), (cx + 3 * head, h - 1), 1.0, -1)
    return alpha


def _detail(img: np.ndarray) -> np.ndarray:
    """High-frequency energy per pixel (what a blur removes)."""
    return np.abs(img - cv2.GaussianBlur(img, (0, 0), 2.0)).mean(axis=2)


def test_edge_crops_hold_the_transition_band(tiny_set: Path) -> None:
    """With edge_p = 1 every crop holds soft alpha (hair, edges); plain random crops of a zoomed-in picture often
    do not; the edge share changes nothing else of the crop (size) and the dataset passes it through."""
    fg, alpha = load_pair(find_foregrounds(tiny_set)[0])

    def soft_share(edge_p: float) -> float:
        hits = 0
        for seed in range(40):
            crop_fg, crop = random_crop_scale(np.random.default_rng(seed), [fg, alpha], 64, (4.0, 5.0), edge_p)
            assert crop.shape == (64, 64) and crop_fg.shape == (64, 64, 3)
            hits += bool(((crop > 0.02) & (crop < 0.98)).any())
        return hits / 40

    assert soft_share(1.0) == 1.0
    assert soft_share(0.0) < 0.8
    data = CompositionDataset(find_foregrounds(tiny_set), find_backgrounds(tiny_set / "bg"), size=64, edge_crop_p=1.0)
    assert data.edge_crop_p == 1.0 and data[0]["alpha"].shape[-2:] == (64, 64)


def test_face_blur_blurs_the_face_and_nothing_far_from_it() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((160, 120, 3)).astype(np.float32)
    alpha = _person()
    out = face_blur(np.random.default_rng(0), image, alpha)
    assert out.shape == image.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    face = (slice(28, 40), slice(54, 66))  # middle of the head (centre 60, 30)
    assert _detail(out)[face].mean() < 0.3 * _detail(image)[face].mean()
    np.testing.assert_array_equal(out[120:], image[120:])  # the body far below the head
    np.testing.assert_array_equal(out[:, :20], image[:, :20])  # background beside the person
    np.testing.assert_array_equal(out, face_blur(np.random.default_rng(0), image, alpha))
    np.testing.assert_array_equal(face_blur(np.random.default_rng(0), image, np.zeros_like(alpha)), image)


def test_face_blur_finds_a_small_head_of_a_full_body_figure() -> None:
    alpha = np.zeros((240, 120), np.float32)
    cv2.circle(alpha, (60, 30), 10, 1.0, -1)  # head
    cv2.rectangle(alpha, (42, 42), (78, 150), 1.0, -1)  # torso
    cv2.rectangle(alpha, (46, 150), (74, 230), 1.0, -1)  # legs
    image = np.random.default_rng(5).random((240, 120, 3)).astype(np.float32)
    out = face_blur(np.random.default_rng(1), image, alpha)
    assert _detail(out)[26:36, 55:65].mean() < 0.5 * _detail(image)[26:36, 55:65].mean()
    np.testing.assert_array_equal(out[70:], image[70:])  # torso and legs untouched


def test_harmonise_moves_the_foreground_part_way_to_the_background() -> None:
    rng = np.random.default_rng(2)
    fg = np.clip(np.array([0.8, 0.3, 0.25], np.float32) + rng.normal(0, 0.05, (64, 64, 3)), 0, 1).astype(np.float32)
    bg = np.clip(np.array([0.2, 0.35, 0.7], np.float32) + rng.normal(0, 0.1, (64, 64, 3)), 0, 1).astype(np.float32)
    alpha = np.zeros((64, 64), np.float32)
    alpha[16:48, 16:48] = 1.0
    inside = alpha > 0.5

    def lab_mean(img: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab)
        return lab[where].mean(axis=0) if where is not None else lab.reshape(-1, 3).mean(axis=0)

    start, target = lab_mean(fg, inside), lab_mean(bg)
    moved = []
    for seed in range(8):
        out = harmonise(np.random.default_rng(seed), fg, bg, alpha, max_strength=0.8)
        assert out.shape == fg.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        now = lab_mean(out, inside)
        # every channel's mean lies between where it was and the background's (part way, never past)
        lo, hi = np.minimum(start, target) - 1.0, np.maximum(start, target) + 1.0
        assert ((now >= lo) & (now <= hi)).all()
        moved.append(np.linalg.norm(now - target) / np.linalg.norm(start - target))
    assert max(moved) <= 1.0 + 1e-3 and min(moved) < 0.7  # random strength: some shift a lot, none overshoot
    np.testing.assert_allclose(harmonise(np.random.default_rng(0), fg, bg, alpha, max_strength=0.0), fg, atol=2e-3)
    np.testing.assert_array_equal(harmonise(np.random.default_rng(0), fg, bg, np.zeros_like(alpha)), fg)


def test_studio_trimap_from_a_fitted_backdrop_plate() -> None:
    h, w = 120, 100
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    backdrop = 110 + 30 * (xx / w) - 20 * (yy / h) ** 2  # a smoothly lit grey sweep
    truth = _person(h, w, head=12, top=10) > 0.5
    rgb = np.repeat(backdrop[..., None], 3, axis=2)
    rgb[truth] = (40, 35, 30)  # dark clothes and hair
    rgb = np.clip(rgb + np.random.default_rng(0).normal(0, 1.5, rgb.shape), 0, 255).astype(np.uint8)
    coarse = cv2.dilate(truth.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(np.float32)  # a rough mask
    trimap, diff, scale = studio_trimap(rgb, coarse)
    assert scale < 5.0  # the plate explains the backdrop down to its noise
    assert not truth[trimap == 0.0].any()  # nothing of the person is called background
    assert truth[trimap == 1.0].all()  # nothing of the backdrop is called person
    assert (trimap == 0.5).mean() < 0.15  # and the unknown band stays thin


def test_training_reads_ground_truth_as_eval_does(tiny_set: Path, tmp_path: Path) -> None:
    """An RGB matte (luminance), an RGBA cut-out (its alpha) and a 16-bit matte read the same in training (and
    its validation) as in ``greenless eval``: one reader, so their figures agree. Training used to take an RGB
    matte's blue channel."""
    from PIL import Image

    from greenless.media.images import read_alpha

    shutil.copytree(tiny_set, tmp_path / "set")
    alphas = sorted((tmp_path / "set" / "alpha").iterdir())
    h, w = cv2.imread(str(alphas[0]), 0).shape
    ramp = np.linspace(0, 1, w, dtype=np.float64)[None, :].repeat(h, 0)
    Image.fromarray(np.dstack([ramp * 200, ramp * 100, ramp * 50]).astype(np.uint8)).save(alphas[0])
    h, w = cv2.imread(str(alphas[1]), 0).shape
    Image.fromarray(np.dstack([np.full((h, w, 3), 255), np.full((h, w), 128)]).astype(np.uint8), "RGBA").save(alphas[1])
    h, w = cv2.imread(str(alphas[2]), 0).shape
    cv2.imwrite(str(alphas[2]), (np.linspace(0, 65535, w)[None, :].repeat(h, 0)).astype(np.uint16))
    for pair in find_labelled(tmp_path / "set"):
        _, alpha = load_pair(pair)
        assert alpha.dtype == np.float32
        np.testing.assert_allclose(alpha, read_alpha(pair.alpha), atol=1e-6)
    assert load_pair(find_labelled(tmp_path / "set")[1])[1].max() == pytest.approx(128 / 255)
