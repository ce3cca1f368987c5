"""The semantic guide: the packaged segmentation model, its place in the hint channel, its training corruptions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import load_script, run_main
from greenless.data.augment import corrupt_guide
from greenless.data.datasets import CompositionDataset, LabelledDataset
from greenless.data.folders import find_backgrounds, find_foregrounds, find_labelled
from greenless.errors import GreenlessError
from greenless.matter import Matter
from greenless.registry import packaged
from greenless.media.images import load_rgb
from greenless.pipeline.guide import SelfieSegmenter, packaged_segmenter_path


def _portrait(data: Path, stem: str = "p_bac3c1ff") -> tuple[np.ndarray, np.ndarray]:
    rgb = load_rgb(data / "portraits" / "image" / f"{stem}.jpg")
    alpha = np.asarray(load_rgb(data / "portraits" / "alpha" / f"{stem}.png")[..., 0], np.float32) / 255.0
    return rgb, alpha


def test_packaged_segmenter_is_the_shared_reference_model(data: Path, shared_reference_model: Path) -> None:
    rgb, _ = _portrait(data)
    # The same Google model as the reference: derived from MediaPipe's tflite by scripts/derive_guide.py, where the
    # reference is a third party's conversion of it. Only float rounding tells them apart (measured 1.2e-5).
    seg = SelfieSegmenter()
    assert float(np.abs(seg(rgb, "squash") - SelfieSegmenter(shared_reference_model)(rgb, "squash")).max()) < 1e-4


def test_packaged_segmenter_finds_the_person(data: Path) -> None:
    rgb, alpha = _portrait(data)
    seg = SelfieSegmenter()
    mask = seg(rgb)  # letterboxed, at the image's size
    assert mask.shape == alpha.shape and mask.dtype == np.float32
    assert float(np.mean(np.abs(mask - alpha))) < 0.03  # measured 0.013 on this portrait
    small = seg(rgb, size=(96, 64))
    assert small.shape == (96, 64)
    squashed = seg(rgb, mode="squash")
    assert not np.allclose(squashed, mask)  # the two modes really differ
    with pytest.raises(ValueError):
        seg(rgb, mode="stretch")


def test_packaged_segmenter_is_the_file_its_licence_records() -> None:
    """The licence file's provenance chain ends in the SHA-256 of the shipped model: a changed model needs a new
    chain (scripts/derive_guide.py --install writes both)."""
    path = packaged_segmenter_path()
    licence = (path.parent / "LICENSE.selfie_segmentation.txt").read_text()
    assert "Apache License, Version 2.0" in licence
    recorded = re.search(r"^  sha256: +([0-9a-f]{64})$", licence, re.M)
    assert recorded, "the licence file records no sha256 of the model"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded.group(1)
    tflite = re.search(r"^  tflite sha256: +([0-9a-f]{64})$", licence, re.M)
    assert tflite and "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite" in licence


def test_derive_guide_rebuilds_the_shipped_bytes_from_googles_file() -> None:
    """scripts/derive_guide.py turns the tflite in the recorded mediapipe wheel into exactly the shipped file."""
    pytest.importorskip("tflite", reason="needs the guide extra (tflite)")
    repo = Path(__file__).resolve().parents[2]
    licence = (packaged_segmenter_path().parent / "LICENSE.selfie_segmentation.txt").read_text()
    wheel = repo / "runs" / "guide" / re.search(r"source wheel: +(\S+\.whl)", licence).group(1)
    if not wheel.is_file():
        pytest.skip(f"needs {wheel.relative_to(repo)} (python scripts/derive_guide.py downloads it)")
    module = load_script("derive_guide")
    source = module.read_member(wheel)
    assert module.sha256(source) in licence
    derived = module.convert(source, module.model_doc(wheel.name, module.sha256(source)))
    assert derived == packaged_segmenter_path().read_bytes()


def test_guide_fills_the_hint_channel_and_a_given_previous_alpha_wins(data: Path) -> None:
    rgb, alpha = _portrait(data, "p_09ba26b4")  # unguided, the network takes in part of the room here
    rgb, alpha = rgb[::4, ::4].copy(), alpha[::4, ::4].copy()  # small and quick
    guided = Matter(model="modnet", guide="selfie")
    plain = Matter(model="modnet", guide="none")
    assert guided.guide == "selfie" and plain.guide == "none"
    with_guide, without = guided.matte(rgb), plain.matte(rgb)
    assert np.abs(with_guide - without).mean() > 0.05  # the channel really carries the guide (0.15)
    # an explicit previous alpha takes the channel: a blank one gives exactly the unguided matte
    assert np.allclose(guided.matte(rgb, prev_alpha=np.zeros(alpha.shape, np.float32)), without, atol=1e-6)
    # the guide is better than nothing, even for weights that were not trained with it
    assert np.abs(with_guide - alpha).mean() < np.abs(without - alpha).mean()


def test_guide_default_follows_the_weights_card(tmp_path: Path, unguided_weights: Path) -> None:
    import shutil

    from greenless.export import set_onnx_card

    # 3-channel weights (and converted official checkpoints) run unguided, as the paper does
    assert Matter(weights=unguided_weights).guide == "none"
    onnx = packaged("modnet").path("onnx")
    card = json.loads(onnx.with_suffix(".json").read_text())
    for hint, expected in (("guide", "selfie"), ("prev-alpha", "none")):
        copy = tmp_path / f"{hint}.onnx"  # the card in the file's metadata, as exports write it
        shutil.copyfile(onnx, copy)
        set_onnx_card(copy, {**card, "hint": hint})
        assert Matter(weights=copy).guide == expected
        assert Matter(weights=copy, guide="none").guide == "none"
    with pytest.raises(GreenlessError, match="unknown guide"):
        Matter(model="modnet", guide="grabcut")


def test_guide_errors_are_one_line(capsys: pytest.CaptureFixture[str], repo_root: Path, tmp_path: Path,
                                   unguided_weights: Path) -> None:
    photo = repo_root / "examples" / "astronaut.jpg"
    code, err = run_main(["matte", photo, "-o", tmp_path / "a.png", "--weights", unguided_weights, "--guide", "selfie"], capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "takes no guide" in err
    assert not (tmp_path / "a.png").exists()
    code, err = run_main(["matte", photo, "-o", tmp_path / "b.png", "--model", "modnet", "--guide", "mask"], capsys)
    assert code == 2 and "unknown guide 'mask'" in err and err.strip().count("\n") == 0
    code, err = run_main(["matte", photo, "-o", tmp_path / "c.png", "--model", "modnet", "--guide", "none",
                          "--write", "alpha"], capsys)
    assert code == 0 and (tmp_path / "c.png").is_file()


def test_corrupted_guides_are_varied_and_stay_masks() -> None:
    guide = np.zeros((128, 96), np.float32)
    guide[30:128, 25:70] = 1.0
    outcomes = [corrupt_guide(np.random.default_rng(i), guide) for i in range(80)]
    assert all(o.shape == guide.shape and o.min() >= 0.0 and o.max() <= 1.0 for o in outcomes)
    blank = sum(float(o.max()) == 0.0 for o in outcomes)
    changed = sum(float(np.abs(o - guide).mean()) > 0.01 for o in outcomes)
    assert 2 <= blank <= 20  # missing guides, about one in ten
    assert changed >= 40  # most guides are damaged somehow
    assert sum(float(np.abs(o - guide).mean()) < 1e-6 for o in outcomes) >= 3  # and some are left as they are


def test_guided_training_samples_carry_the_segmenter_mask(tiny_set: Path) -> None:
    ds = CompositionDataset(find_foregrounds(tiny_set), find_backgrounds(tiny_set / "bg"), size=128,
                            composites_per_fg=4, seed=3, hint="guide")
    agree = 0
    for i in range(len(ds)):
        sample = ds[i]
        assert sample["image"].shape == (4, 128, 128)
        hint = (sample["image"][3].numpy() + 1) / 2
        assert hint.min() >= 0.0 and hint.max() <= 1.0
        person = sample["alpha"][0].numpy() > 0.5
        agree += bool(hint[person].mean() > hint[~person].mean() + 0.3)
    assert agree >= len(ds) * 0.6  # the guide mostly marks the person (some are blank or damaged)
    whole = LabelledDataset(find_labelled(tiny_set), size=None, hint="guide")[0]
    assert whole["image"].shape[0] == 4 and float(whole["image"][3].max()) > 0.5  # the guide of the whole image
    with pytest.raises(GreenlessError, match="unknown hint"):
        CompositionDataset(find_foregrounds(tiny_set), find_backgrounds(tiny_set / "bg"), size=64, hint="trimap")[0]


def test_the_guide_bounds_the_matte() -> None:
    from greenless.pipeline.guide import GUIDE_INNER_MARGIN, GUIDE_MARGIN, bound_by_guide

    guide = np.zeros((400, 600), np.float32)
    guide[100:400, 200:400] = 1.0
    guide[20:35, 500:515] = 1.0  # a speck of "person" on the background (under 5% of the person)
    matte = np.full(guide.shape, 0.4, np.float32)  # a hazy matte: 0.4 everywhere
    out = bound_by_guide(matte, guide)
    band, inner = int(GUIDE_MARGIN * 400), int(GUIDE_INNER_MARGIN * 400)
    assert out[10, 10] == 0.0 and out[200, 40] == 0.0  # far outside the guide's person: exactly 0
    assert out[27, 507] == 0.0  # the speck is not a person
    assert out[300, 300] == 1.0 and out[200, 200 + 3 * inner] == 1.0  # deep inside a confident guide: exactly 1
    assert out[200, 200 - band // 2] == pytest.approx(0.4) and out[200, 200 + inner // 2] == pytest.approx(0.4)
    second = guide.copy()
    second[20:80, 500:560] = 1.0  # a second person, small but not a speck, is kept
    assert bound_by_guide(matte, second)[50, 530] == 1.0
    unsure = guide * 0.8  # a guide that is not confident never forces 1
    assert bound_by_guide(matte, unsure)[300, 300] == pytest.approx(0.4)
    assert bound_by_guide(np.zeros_like(matte), np.zeros_like(guide)).max() == 0.0  # no person: nothing forced


def test_guided_matte_is_zero_far_from_the_person(data: Path) -> None:
    """The haze a small network leaves on large backgrounds is gone where the guide sees no one."""
    rgb, alpha = _portrait(data, "p_09ba26b4")
    matte = Matter(model="modnet", guide="selfie").matte(rgb)
    far = cv2.distanceTransform((alpha <= 0).astype(np.uint8), cv2.DIST_L2, 5) > 0.05 * np.hypot(*alpha.shape)
    assert far.mean() > 0.2 and float(matte[far].max()) < 1 / 255


def test_an_exported_onnx_carries_its_card_and_runs_guided(tmp_path: Path) -> None:
    """An ONNX file keeps the card in its metadata, so an export of guided weights runs guided, at the card's
    reference sizes, with no .json beside it."""
    from greenless.export import export_onnx
    from greenless.model.checkpoint import load_weights

    model, card = load_weights(packaged("modnet").path("torch"))
    path = export_onnx(model, tmp_path / "alone.onnx", card)
    assert not path.with_suffix(".json").exists()
    matter = Matter(path)
    assert matter.guide == "selfie" and matter.ref_size == card["photo_ref_size"] == 384
    assert Matter(path, stream=True).ref_size == card["ref_size"] == 288


def test_photos_drop_what_only_one_guide_view_takes_in(shared_data: Path) -> None:
    """The letterboxed guide takes in the sunlit city behind the woman; photos keep only what both views see.

    Streams keep the one letterboxed view (a second segmenter run would cost real time). The photo is the
    shared set's (Pixabay content, not in the repository's fixtures)."""
    from PIL import Image

    rgb = np.asarray(Image.open(shared_data / "photos" / "woman-5883428_1280.jpg").convert("RGB"))
    h, w = rgb.shape[:2]
    city = (slice(int(0.25 * h), int(0.6 * h)), slice(int(0.75 * w), w))
    photo = Matter()
    assert photo.guide_view == "both" and Matter(stream=True).guide_view == "pad"
    assert (photo.matte(rgb)[city] > 0.5).mean() < 0.02
    photo.recipe = dataclasses.replace(photo.recipe, guide_view="pad")
    assert (photo.matte(rgb)[city] > 0.5).mean() > 0.3  # the failure the second view removes
