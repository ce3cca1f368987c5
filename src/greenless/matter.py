"""``Matter``: the one object every entry point (API, CLI, video, server, batch) uses to get a matte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from greenless.card import PREPROCESS_RULES, card_path, read_card
from greenless.engines import Engine, make_engine
from greenless.errors import GreenlessError
from greenless.pipeline.guide import bound_by_guide, check_guide, shared_segmenter
from greenless.pipeline.stream import DEFAULT_OFD_TOL, MatteStream
from greenless.pipeline.preprocess import inference_size, matte_to_size, to_network_input
from greenless.registry import DEFAULT_MODEL as _REGISTRY_DEFAULT
from greenless.registry import MODELS, job_defaults, packaged
from greenless.registry import resolve_weights as _resolve_weights

# What each packaged model is and what every job runs by default live in the registry; these names stay
# importable from here for existing code.
REALTIME_MODEL = DEFAULT_MODEL = _REGISTRY_DEFAULT["stream"]
DEFAULT_ONNX = f"{DEFAULT_MODEL}.onnx"
DEFAULT_SAFETENSORS = f"{DEFAULT_MODEL}.safetensors"


def packaged_weights(model: str = DEFAULT_MODEL, engine: str = "onnx") -> Path:
    """Path of a weight set that ships inside the package (``model`` from MODELS) for ``engine``."""
    return packaged(model).path(engine)


def default_weights(engine: str = "onnx") -> Path:
    """Path of the default weights that ship inside the package for ``engine``."""
    return packaged_weights(DEFAULT_MODEL, engine)


def resolve_weights(weights: str | Path | None, model: str | None, engine: str = "onnx",
                    default: str | None = None) -> Path | None:
    """``--weights`` wins; else the packaged ``--model``; else the packaged ``default`` (None: no path, the
    caller's own default applies)."""
    if default is not None and weights is None and model is None:
        model = default
    return _resolve_weights(weights, model, engine, job=None)


def as_rgb_array(image: Any) -> np.ndarray:
    """PIL image or ndarray (HxW, HxWx3, HxWx4; uint8, uint16 or float in [0,1]) -> HxWx3 uint8 RGB."""
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL.Image without importing PIL eagerly
        from greenless.media.images import pil_to_rgb

        return pil_to_rgb(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise GreenlessError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[:, :, :3]
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def group_by_size(rgbs: list[np.ndarray]) -> dict[tuple[int, int], list[int]]:
    """Indices of the images by (height, width): same-size images share one network call."""
    groups: dict[tuple[int, int], list[int]] = {}
    for idx, rgb in enumerate(rgbs):
        groups.setdefault(rgb.shape[:2], []).append(idx)
    return groups


class Matter:
    """Loads a matting engine once and turns images into full-resolution alpha mattes.

    ``weights`` (a file) or ``model`` (a packaged set from MODELS) default to the registry's default model;
    ``engine`` is ``onnx`` (default) or ``torch``. Everything left unsaid comes from the registry's defaults
    for the job (``stream`` set: video, webcam; else photos): ``ref_size``, the short side the network sees
    (the card's ``photo_ref_size`` for stills, its ``ref_size`` for streams, else 512); ``guide``; and
    ``preprocess``, how an image becomes the network input (``modnet-demo`` for official checkpoints, else
    ``greenless``; see ``greenless.pipeline.preprocess``).
    """

    def __init__(self, weights: str | Path | None = None, engine: str = "onnx", ref_size: int | None = None,
                 threads: int | None = None, device: str | None = None, model: str | None = None,
                 guide: str | None = None, stream: bool = False, preprocess: str | None = None) -> None:
        job = "stream" if stream else "photo"
        path = _resolve_weights(weights, model, engine, job=job)
        if not path.is_file():
            raise GreenlessError(f"{path}: weights file not found")
        if engine == "onnx" and path.suffix != ".onnx":
            raise GreenlessError(f"{path}: the onnx engine needs an .onnx file (use --engine torch, or greenless export)")
        if engine == "torch" and path.suffix == ".onnx":
            raise GreenlessError(f"{path}: the torch engine needs .safetensors or an official .ckpt, not .onnx")
        self.weights = path
        self.engine: Engine = make_engine(engine, path, threads=threads, device=device)
        defaults = job_defaults(self._card(), self.engine.in_channels, job)
        self.ref_size = int(ref_size or defaults.ref_size)
        if self.ref_size < 32:
            raise GreenlessError("--ref-size must be at least 32")
        self.guide = self._resolve_guide(guide, defaults.guide)
        if preprocess is not None and preprocess not in PREPROCESS_RULES:
            raise GreenlessError(f"unknown preprocessing {preprocess!r}; choose from {', '.join(PREPROCESS_RULES)}")
        self.preprocess = preprocess or defaults.preprocess
        self.guide_view = defaults.guide_view
        self._segmenter = None
        if self.guide == "selfie":
            self._segmenter = shared_segmenter()

    def _card(self) -> dict[str, Any]:
        """The weights' card: the engine's own (torch files, ONNX metadata), else the JSON file beside an ONNX
        file (may be empty)."""
        card = getattr(self.engine, "card", None)
        if card is None and self.weights.suffix == ".onnx":
            card = read_card(card_path(self.weights))
        return card or {}

    def _resolve_guide(self, guide: str | None, default: str) -> str:
        """``selfie`` (the packaged segmentation model's mask in the 4th input channel) or ``none``; ``default``
        (the registry's) when not given. Asking for the guide with 3-channel weights is one error line."""
        if guide is None:
            return default
        check_guide(guide)
        if guide == "selfie" and self.engine.in_channels != 4:
            raise GreenlessError(f"{self.weights.name} takes no guide (3 input channels); use --guide none")
        return guide

    def stream(self, temporal: str | None = None, ofd: bool = True, ofd_tol: float = DEFAULT_OFD_TOL) -> MatteStream:
        """A ``MatteStream`` over this matter: push frames in order, get their mattes with the temporal policy
        applied (``temporal``: ``prev-alpha``, ``ofd`` or ``none``; default: the registry's for these weights;
        OFD on top unless ``ofd`` is False). Build the matter with ``stream=True`` for the stream defaults
        (reference size), as video and webcam do."""
        return MatteStream(self, temporal=temporal, ofd=ofd, ofd_tol=ofd_tol)

    def matte(self, image: Any, prev_alpha: np.ndarray | None = None) -> np.ndarray:
        """Alpha matte of one image as float32 HxW in [0, 1], at the image's own resolution."""
        return self.matte_batch([image], None if prev_alpha is None else [prev_alpha])[0]

    def matte_batch(self, images: list[Any], prev_alphas: list[np.ndarray | None] | None = None) -> list[np.ndarray]:
        """Mattes for several images; same-size images share one engine call (video frames)."""
        rgbs = [as_rgb_array(im) for im in images]
        results: list[np.ndarray | None] = [None] * len(rgbs)
        for (h, w), idxs in group_by_size(rgbs).items():
            size = inference_size(h, w, self.ref_size, self.preprocess)
            batch = np.concatenate([to_network_input(rgbs[i], size, self.preprocess) for i in idxs])
            guides: dict[int, np.ndarray] = {}
            if self.engine.in_channels == 4:
                batch = np.concatenate([batch, self._hint_channel(rgbs, prev_alphas, idxs, size, guides)], axis=1)
            out = self.engine.run(batch)
            for j, i in enumerate(idxs):
                matte = out[j, 0] if i not in guides else bound_by_guide(np.clip(out[j, 0], 0.0, 1.0), guides[i])
                results[i] = matte_to_size(matte, h, w, self.preprocess)
        return results  # type: ignore[return-value]

    def hint_input(self, rgb: np.ndarray, prev_alpha: np.ndarray | None, size: tuple[int, int],
                   segmenter: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The 4th input for one image, 1x1xhxw in [-1, 1]: a given previous alpha, else the guide, else blank
        (zero alpha); and the guide when it was used (to bound the matte with), else None. ``segmenter``
        replaces the shared one (a thread of a batched path may hold its own)."""
        from greenless.pipeline.preprocess import prev_alpha_channel

        if prev_alpha is None and self._segmenter is not None:
            guide = (segmenter or self._segmenter)(rgb, mode=self.guide_view, size=size)
            return prev_alpha_channel(guide, size), guide
        return prev_alpha_channel(prev_alpha, size), None

    def _hint_channel(self, rgbs: list[np.ndarray], prev_alphas: list[np.ndarray | None] | None, idxs: list[int],
                      size: tuple[int, int], guides: dict[int, np.ndarray]) -> np.ndarray:
        """``hint_input`` for the images ``idxs``, concatenated; the guides used are kept in ``guides`` by index."""
        hints = []
        for i in idxs:
            hint, guide = self.hint_input(rgbs[i], None if prev_alphas is None else prev_alphas[i], size)
            if guide is not None:
                guides[i] = guide
            hints.append(hint)
        return np.concatenate(hints)
