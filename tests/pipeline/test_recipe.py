"""The one matte recipe: every path that makes or measures a matte runs it, so their figures agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from greenless.card import network_stride
from greenless.errors import GreenlessError
from greenless.matter import Matter
from greenless.media.images import load_rgb
from greenless.pipeline.detail import DetailSettings
from greenless.pipeline.preprocess import inference_size
from greenless.pipeline.recipe import Recipe, recipe_for
from greenless.registry import packaged


def test_training_validation_gives_the_figures_greenless_eval_gives(data: Path) -> None:
    """Same weights, same folder: the validation that picks weights during training reports what ``greenless
    eval`` reports (it ran the guide letterboxed at the stream's view while photos run both views)."""
    torch = pytest.importorskip("torch", reason="training validation needs the torch extra")
    from greenless.evaluate.runner import evaluate
    from greenless.model.checkpoint import load_weights
    from greenless.train.validate import validate

    weights = packaged("modnet").path("torch")
    model, card = load_weights(weights)
    ref = card["photo_ref_size"]
    with torch.inference_mode():
        trained = validate(model, data / "portraits", ref, hint=card["hint"])
    evaluated = evaluate(data / "portraits", weights=weights, engine="torch", ref_size=ref).ours.mean
    assert trained["mad"] == pytest.approx(evaluated["mad"], rel=1e-5)
    assert trained["mse"] == pytest.approx(evaluated["mse"], rel=1e-5)


def test_prepare_and_finish_around_any_runner_give_what_matter_gives(data: Path) -> None:
    """The two halves with the engine's ``run`` between them are ``Matter.matte``; ``finish`` has the full-size
    image and the network-size guide at hand."""
    rgb = load_rgb(data / "photos" / "portrait-640.jpg")
    matter = Matter()
    prepared = matter.recipe.prepare([rgb])
    assert prepared.x.shape[:2] == (1, 4) and prepared.size == matter.recipe.network_size(*rgb.shape[:2])
    assert prepared.rgbs[0] is rgb and prepared.full_size == rgb.shape[:2]
    assert prepared.guides[0] is not None and prepared.guides[0].shape == prepared.size
    alpha = matter.recipe.finish(matter.engine.run(prepared.x), prepared)[0]
    assert np.array_equal(alpha, matter.matte(rgb))
    # a given previous matte replaces the guide (streams that feed it back), and then nothing is bounded
    fed = matter.recipe.prepare([rgb], [alpha])
    assert fed.guides == [None] and not np.array_equal(fed.x[:, 3], prepared.x[:, 3])


def test_streams_take_their_temporal_default_from_the_recipe() -> None:
    """The registry's temporal default (in the recipe) is the one a stream uses: change it, the stream follows."""
    matter = Matter(stream=True)
    assert matter.recipe.temporal == "ofd" and matter.stream().label == "ofd"
    matter.recipe = dataclasses.replace(matter.recipe, temporal="prev-alpha")
    assert matter.stream().label == "prev-alpha + ofd"
    unguided = Matter(stream=True, guide="none")
    assert unguided.hint == "prev-alpha" and unguided.recipe.temporal == "prev-alpha"


def test_recipe_for_reads_the_registry_and_refuses_bad_settings() -> None:
    card = packaged("modnet").card()
    photo, stream = recipe_for(card, 4, "photo"), recipe_for(card, 4, "stream")
    assert (photo.ref_size, photo.guide_view, photo.hint) == (card["photo_ref_size"], "both", "guide")
    assert (stream.ref_size, stream.guide_view, stream.hint) == (card["ref_size"], "pad", "guide")
    assert recipe_for({}, 3) == Recipe(ref_size=512, hint="none", detail=DetailSettings())
    assert photo.detail == DetailSettings() and stream.detail is None  # the detail stage is for photos
    official = recipe_for({"source": "official checkpoint"}, 3)
    assert official.preprocess == "modnet-demo" and official.detail is None  # the demo's mattes, as they know them
    assert recipe_for(card, 4, "photo", refine="none").detail is None
    with pytest.raises(GreenlessError, match="unknown refiner"):
        recipe_for(card, 4, refine="sharpen")
    with pytest.raises(GreenlessError, match="x.onnx takes no guide"):
        recipe_for({}, 3, guide="selfie", name="x.onnx")
    with pytest.raises(GreenlessError, match="at least 32"):
        recipe_for({}, 3, ref_size=16)
    with pytest.raises(GreenlessError, match="unknown preprocessing"):
        recipe_for({}, 3, preprocess="bicubic")
    with pytest.raises(ValueError, match="one size"):
        Recipe().prepare([np.zeros((32, 32, 3), np.uint8), np.zeros((64, 32, 3), np.uint8)])


def test_network_sizes_are_multiples_of_the_networks_stride() -> None:
    """The packaged modnet's encoder sees the image at half size, so its input sides are multiples of 64 (the
    real-time 288x512 frame goes in at 256x512); networks whose encoder sees the whole image keep 32."""
    modnet = packaged("modnet").card()
    assert network_stride(modnet) == 64
    assert network_stride({"model": {"semantic_scale": 1.0}}) == 32 and network_stride({}) == 32
    assert network_stride({"model": {"semantic_scale": 0.75}}) == 32  # no whole factor: no grid to keep
    stream, photo = recipe_for(modnet, 4, "stream"), recipe_for(modnet, 4, "photo")
    assert stream.network_size(288, 512) == (256, 512) and photo.network_size(1080, 1920) == (384, 704)
    assert recipe_for({}, 3, ref_size=288).network_size(288, 512) == (288, 512)
    assert inference_size(20, 20, 32, stride=64) == (64, 64)  # never below one stride
    assert inference_size(300, 500, 512, "modnet-demo", stride=64) == (512, 832)  # truncated, as the demo does


@pytest.mark.needs_trained_weights
def test_the_stream_default_runs_the_network_on_its_own_grid(data: Path) -> None:
    """On the shared portraits the real-time default at 288 sees 256x512-like sizes (stride 64): mean MAD 0.0183
    against 0.0235 at the multiples of 32 it ran at before, where the encoder's last row and column cover padding
    and the semantic features sit off the person."""
    from greenless.data.folders import find_labelled
    from greenless.media.images import read_alpha

    samples = [(load_rgb(s.image), read_alpha(s.alpha)) for s in find_labelled(data / "portraits")]
    matter = Matter(stream=True)

    def mad() -> float:
        return float(np.mean([np.mean(np.abs(matter.matte(rgb) - truth)) for rgb, truth in samples]))

    aligned = mad()
    matter.recipe = dataclasses.replace(matter.recipe, stride=32)
    assert aligned <= 0.020 < mad()
