"""The one matte recipe: the steps from pixels to matte, for every path that makes or measures a matte.

A ``Recipe`` is built from the registry for a job and a set of weights (``recipe_for``): the reference size,
the preprocessing rule, the network's input channels, the hint (what the 4th channel carries), how the
segmenter sees the image, and whether the guide bounds the matte. It has two halves around the network, so
any runner fits between them (onnxruntime, PyTorch, a traced or exported model, the batched device path):

    prepared = recipe.prepare(rgbs)              # same-size HxWx3 uint8 images -> network input + state
    out = run(prepared.x)                        # N x C x h x w float32 in [-1, 1] -> N x 1 x h x w matte
    alphas = recipe.finish(out, prepared)        # -> full-size float32 mattes in [0, 1]

``recipe.matte(run, images)`` does the three for any images (same-size images share one call). ``Matter``,
``DeviceMatter`` (which runs the same steps on a torch device), training validation, the export check, the
benchmarks and ``greenless eval`` (through ``Matter``) all call it, so every figure measured is a matte users
get. ``finish`` keeps the full-size images and the guides at hand (``Prepared``) so a step after upsampling
can use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from greenless.card import PREPROCESS_RULES, network_stride
from greenless.errors import GreenlessError
from greenless.pipeline.detail import DetailSettings, check_refiner, refine_matte
from greenless.pipeline.guide import bound_by_guide, check_guide, guide_bounds, shared_segmenter
from greenless.pipeline.preprocess import inference_size, matte_to_size, prev_alpha_channel, to_network_input
from greenless.registry import FALLBACK_REF_SIZE, job_defaults

#: A network between ``prepare`` and ``finish``: N x C x h x w float32 in [-1, 1] -> N x 1 x h x w mattes.
Runner = Callable[[np.ndarray], np.ndarray]


def group_by_size(rgbs: Sequence[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    """Indices of the images by (height, width): same-size images share one network call."""
    groups: dict[tuple[int, int], list[int]] = {}
    for idx, rgb in enumerate(rgbs):
        groups.setdefault(rgb.shape[:2], []).append(idx)
    return groups


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` made of same-size images: the network input and what ``finish`` needs besides it."""

    x: np.ndarray  # N x C x h x w float32 in [-1, 1]
    rgbs: list[np.ndarray]  # the full-size HxWx3 uint8 images
    guides: list[np.ndarray | None]  # each image's guide at the network size (None: no guide in its 4th channel)

    @property
    def size(self) -> tuple[int, int]:
        """The network size (h, w)."""
        return int(self.x.shape[2]), int(self.x.shape[3])

    @property
    def full_size(self) -> tuple[int, int]:
        """The images' own size (H, W)."""
        return int(self.rgbs[0].shape[0]), int(self.rgbs[0].shape[1])


@dataclass(frozen=True)
class Recipe:
    """The steps from pixels to matte for one set of weights and one job (see the module docstring).

    ``ref_size``: the short side the network sees; ``preprocess``: how an image becomes the network input and
    the matte comes back (``greenless.pipeline.preprocess``); ``channels``: the network's input channels;
    ``hint``: what a 4th channel carries (``greenless.registry.RECIPE_HINTS``; a given previous matte always wins);
    ``guide_view``: how the segmenter sees the image (``SelfieSegmenter`` modes); ``bound``: whether the guide
    bounds the matte (``greenless.pipeline.guide.guide_bounds``); ``temporal``: what a stream of these weights
    does between frames unless told (``greenless.pipeline.stream``); ``detail``: the full-resolution detail
    stage's settings (``greenless.pipeline.detail``; None: the network's matte as it comes back); ``stride``:
    the multiple both network sides are rounded to (``greenless.card.network_stride``: 64 for the packaged modnet).
    """

    ref_size: int = FALLBACK_REF_SIZE
    preprocess: str = "greenless"
    channels: int = 3
    hint: str = "none"
    guide_view: str = "both"
    bound: bool = True
    temporal: str = "ofd"
    detail: DetailSettings | None = None
    stride: int = 32

    @property
    def guided(self) -> bool:
        """True when the 4th channel carries the segmentation guide (unless a previous matte is given)."""
        return self.hint == "guide"

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The size (h, w) the network sees for a ``height`` x ``width`` image."""
        return inference_size(height, width, self.ref_size, self.preprocess, self.stride)

    # -- prepare -----------------------------------------------------------------------------------------------
    def hint_channel(self, rgb: np.ndarray, prev_alpha: np.ndarray | None, size: tuple[int, int],
                     segmenter: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The 4th input of one image, 1x1xhxw in [-1, 1]: ``prev_alpha`` when given, else the guide (hint
        ``guide``), else blank (zero alpha); and the guide when it was used, else None. ``segmenter`` replaces
        the process's shared one (a thread of the batched device path holds its own)."""
        if prev_alpha is None and self.guided:
            guide = (segmenter or shared_segmenter())(rgb, mode=self.guide_view, size=size)
            return prev_alpha_channel(guide, size), guide
        return prev_alpha_channel(prev_alpha, size), None

    def prepare(self, rgbs: Sequence[np.ndarray], prev_alphas: Sequence[np.ndarray | None] | None = None,
                segmenter: Any = None) -> Prepared:
        """Network input for same-size HxWx3 uint8 images (``prev_alphas``: each one's previous matte, for
        streams that feed it back), with the images and their guides for ``finish``."""
        rgbs = list(rgbs)
        if not rgbs or len(group_by_size(rgbs)) != 1:
            raise ValueError("prepare takes one or more images of one size")
        size = self.network_size(*rgbs[0].shape[:2])
        x = np.concatenate([to_network_input(rgb, size, self.preprocess) for rgb in rgbs])
        guides: list[np.ndarray | None] = [None] * len(rgbs)
        if self.channels == 4:
            hints = []
            for i, rgb in enumerate(rgbs):
                hint, guides[i] = self.hint_channel(rgb, None if prev_alphas is None else prev_alphas[i], size,
                                                    segmenter)
                hints.append(hint)
            x = np.concatenate([x, np.concatenate(hints)], axis=1)
        return Prepared(x, rgbs, guides)

    # -- finish ------------------------------------------------------------------------------------------------
    def bounds(self, guide: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
        """``(keep, solid)`` the guide bounds a network-size matte with (``max(matte * keep, solid)``), or None
        when there is no guide or the recipe does not bound."""
        if guide is None or not self.bound:
            return None
        return guide_bounds(np.asarray(guide, np.float32))

    def finish(self, out: np.ndarray, prepared: Prepared) -> list[np.ndarray]:
        """Full-size float32 HxW mattes in [0, 1] from the network's N x 1 x h x w output for ``prepared``."""
        out = np.asarray(out)
        return [self.finish_one(out[j, 0], prepared.rgbs[j], prepared.guides[j]) for j in range(len(prepared.rgbs))]

    def finish_one(self, matte: np.ndarray, rgb: np.ndarray, guide: np.ndarray | None) -> np.ndarray:
        """One network-size matte -> the full-size matte of ``rgb``: bounded by its ``guide`` (when it had one),
        then brought back to the image's size: by the detail stage when the recipe has one (its edge band
        re-solved from the full-size ``rgb``, the guide a second opinion), else by the preprocessing rule."""
        if guide is not None and self.bound:
            matte = bound_by_guide(np.clip(matte, 0.0, 1.0), guide)
        if self.detail is not None:  # it takes the network-size matte and guide: no full-size copies
            return refine_matte(rgb, np.clip(matte, 0.0, 1.0), guide, self.detail)
        return matte_to_size(matte, rgb.shape[0], rgb.shape[1], self.preprocess)

    # -- both halves -------------------------------------------------------------------------------------------
    def matte(self, run: Runner, rgbs: Sequence[np.ndarray], prev_alphas: Sequence[np.ndarray | None] | None = None,
              segmenter: Any = None) -> list[np.ndarray]:
        """Full-size mattes of HxWx3 uint8 images through ``run``; same-size images share one call."""
        results: list[np.ndarray | None] = [None] * len(rgbs)
        for idxs in group_by_size(rgbs).values():
            prepared = self.prepare([rgbs[i] for i in idxs],
                                    None if prev_alphas is None else [prev_alphas[i] for i in idxs], segmenter)
            for i, alpha in zip(idxs, self.finish(run(prepared.x), prepared), strict=True):
                results[i] = alpha
        return results  # type: ignore[return-value]


def recipe_for(card: dict[str, Any], channels: int, job: str = "photo", *, ref_size: int | None = None,
               guide: str | None = None, preprocess: str | None = None, refine: str | None = None,
               detail: DetailSettings | None = None, name: str = "these weights") -> Recipe:
    """The recipe ``job`` (``photo`` or ``stream``) runs weights with this ``card`` and ``channels`` input
    channels with: the registry's defaults (``greenless.registry.job_defaults``), overridden by what the
    caller says. ``guide`` is the ``--guide`` option: ``selfie`` (the hint is the guide; needs 4 channels) or
    ``none`` (4-channel weights then get a previous matte, blank for a still). ``refine`` is ``--refine``:
    ``band`` (the detail stage, with ``detail``'s settings or the defaults) or ``none``. Bad values are one
    error line (``name`` names the weights in it)."""
    hint = None
    if guide is not None:
        check_guide(guide)
        if guide == "selfie" and channels != 4:
            raise GreenlessError(f"{name} takes no guide ({channels} input channels); use --guide none")
        hint = "guide" if guide == "selfie" else ("prev-alpha" if channels == 4 else "none")
    defaults = job_defaults(card, channels, job, hint)
    size = int(ref_size or defaults.ref_size)
    if size < 32:
        raise GreenlessError("--ref-size must be at least 32")
    if preprocess is not None and preprocess not in PREPROCESS_RULES:
        raise GreenlessError(f"unknown preprocessing {preprocess!r}; choose from {', '.join(PREPROCESS_RULES)}")
    refine = check_refiner(refine) if refine is not None else defaults.refine
    return Recipe(ref_size=size, preprocess=preprocess or defaults.preprocess, channels=channels, hint=defaults.hint,
                  guide_view=defaults.guide_view, temporal=defaults.temporal,
                  detail=(detail or DetailSettings()) if refine == "band" else None, stride=network_stride(card))
