"""``Matter``: the one object every entry point (API, CLI, video, server, batch) uses to get a matte."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from greenless.card import card_path, read_card
from greenless.engines import Engine, make_engine
from greenless.errors import GreenlessError
from greenless.media.images import as_rgb_array
from greenless.pipeline.detail import DetailSettings, check_refiner
from greenless.pipeline.guide import shared_segmenter
from greenless.pipeline.recipe import Recipe, recipe_for
from greenless.pipeline.stream import DEFAULT_OFD_TOL, MatteStream
from greenless.pipeline.streaming import open_stream
from greenless.registry import resolve_weights


class Matter:
    """Loads a matting engine once and turns images into full-resolution alpha mattes.

    ``weights`` (a file) or ``model`` (a packaged set from MODELS) default to the registry's default model;
    ``engine`` is ``onnx`` (default) or ``torch``. Everything left unsaid comes from the registry's defaults
    for the job (``stream`` set: video, webcam; else photos): ``ref_size``, the short side the network sees
    (the card's ``photo_ref_size`` for stills, its ``ref_size`` for streams, else 512); ``guide`` (``selfie``:
    the packaged segmentation guide in the 4th channel; ``none``); and ``preprocess``, how an image becomes the
    network input (``modnet-demo`` for official checkpoints, else ``greenless``; see
    ``greenless.pipeline.preprocess``); and ``refine``, the full-resolution detail stage (``band``: photos'
    default; ``none``: the network's matte alone), with ``detail`` for its settings
    (``greenless.pipeline.detail.DetailSettings``: band width, thresholds). These make its ``recipe`` (``greenless.pipeline.recipe``), which does
    the work around the engine.
    """

    def __init__(self, weights: str | Path | None = None, engine: str = "onnx", ref_size: int | None = None,
                 threads: int | None = None, device: str | None = None, model: str | None = None,
                 guide: str | None = None, stream: bool = False, preprocess: str | None = None,
                 refine: str | None = None, detail: DetailSettings | None = None) -> None:
        job = "stream" if stream else "photo"
        path = resolve_weights(weights, model, engine, job=job)
        assert path is not None  # every job has a packaged default
        if not path.is_file():
            raise GreenlessError(f"{path}: weights file not found")
        if engine == "onnx" and path.suffix != ".onnx":
            raise GreenlessError(f"{path}: the onnx engine needs an .onnx file (use --engine torch, or greenless export)")
        if engine == "torch" and path.suffix == ".onnx":
            raise GreenlessError(f"{path}: the torch engine needs .safetensors or an official .ckpt, not .onnx")
        self.weights = path
        #: The device asked for (None: the engine's own pick); streams take the batched device path when one is.
        self.requested_device = device
        self.engine: Engine = make_engine(engine, path, threads=threads, device=device)
        #: The steps from pixels to matte (reference size, preprocessing, hint, guide view, bounding): the
        #: registry's for this job and these weights, overridden by the arguments given.
        self.recipe: Recipe = recipe_for(self._card(), self.engine.in_channels, job, ref_size=ref_size, guide=guide,
                                         preprocess=preprocess, refine=refine, detail=detail, name=path.name)
        if self.recipe.guided:
            shared_segmenter()  # load the guide's model now: a broken install fails here, not on the first image

    @property
    def ref_size(self) -> int:
        """The short side the network sees."""
        return self.recipe.ref_size

    @ref_size.setter
    def ref_size(self, value: int) -> None:
        """Run at another reference size from now on (the server's per-request ``ref_size`` on a copy)."""
        if int(value) < 32:
            raise GreenlessError("--ref-size must be at least 32")
        self.recipe = dataclasses.replace(self.recipe, ref_size=int(value))

    @property
    def refine(self) -> str:
        """The detail stage this matter runs: ``band`` or ``none``."""
        return "none" if self.recipe.detail is None else "band"

    @refine.setter
    def refine(self, value: str) -> None:
        """Run with (``band``, default settings) or without (``none``) the detail stage from now on (the server's
        per-request ``refine`` on a copy)."""
        detail = DetailSettings() if check_refiner(value) == "band" else None
        self.recipe = dataclasses.replace(self.recipe, detail=detail)

    @property
    def preprocess(self) -> str:
        """How an image becomes the network input (``greenless.registry.PREPROCESS_RULES``)."""
        return self.recipe.preprocess

    @property
    def hint(self) -> str:
        """What the 4th input channel carries (``greenless.registry.RECIPE_HINTS``)."""
        return self.recipe.hint

    @property
    def guide(self) -> str:
        """The ``--guide`` this matter runs with: ``selfie`` when the hint is the guide, else ``none``."""
        return "selfie" if self.recipe.guided else "none"

    @property
    def guide_view(self) -> str:
        """How the segmenter sees an image (``SelfieSegmenter`` modes)."""
        return self.recipe.guide_view

    def _card(self) -> dict[str, Any]:
        """The weights' card: the engine's own (torch files, ONNX metadata), else the JSON file beside an ONNX
        file (may be empty)."""
        card = getattr(self.engine, "card", None)
        if card is None and self.weights.suffix == ".onnx":
            card = read_card(card_path(self.weights))
        return card or {}

    def stream(self, temporal: str | None = None, ofd: bool = True, ofd_tol: float = DEFAULT_OFD_TOL) -> MatteStream:
        """A ``MatteStream`` over this matter: push frames in order, get their mattes with the temporal policy
        applied (``temporal``: ``prev-alpha``, ``ofd`` or ``none``; default: the registry's for these weights;
        OFD on top unless ``ofd`` is False). Build the matter with ``stream=True`` for the stream defaults
        (reference size), as video and webcam do. Frame by frame on this matter: ``open_stream`` (the factory this
        calls) picks the batched device path, its renderer and batch size for the video and webcam commands."""
        return open_stream(self, device_path=False, temporal=temporal, ofd=ofd, ofd_tol=ofd_tol).stream

    def matte(self, image: Any, prev_alpha: np.ndarray | None = None) -> np.ndarray:
        """Alpha matte of one image as float32 HxW in [0, 1], at the image's own resolution."""
        return self.matte_batch([image], None if prev_alpha is None else [prev_alpha])[0]

    def matte_batch(self, images: list[Any], prev_alphas: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Mattes for several images; same-size images share one engine call (video frames)."""
        return self.recipe.matte(self.engine.run, [as_rgb_array(im) for im in images], prev_alphas)
