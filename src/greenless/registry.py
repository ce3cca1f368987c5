"""The model registry: what each packaged weight set is, and what every job runs a set of weights with.

One place answers "which file, which reference size, which inputs, which hint, which temporal method,
which preprocessing" for the packaged models (by name) and for any other weights file (through its card,
the JSON the weights carry), and turns a model name or a weights file into a path (``resolve_weights``).
``greenless.pipeline.recipe.recipe_for`` builds the one matte recipe from these answers; ``Matter``, its
streams, training validation, the export check and the benchmarks all run that recipe.

Jobs: ``photo`` (one still at a time: the API, ``greenless matte``, batch, the server, evaluation) and
``stream`` (frames in order: ``greenless video``, ``greenless webcam``, ``Matter.stream()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, overload

from greenless.card import HINTS, card_path, in_channels, read_card
from greenless.errors import GreenlessError

JOBS = ("photo", "stream")
#: Reference size for weights whose card names none: MODNet's own.
FALLBACK_REF_SIZE = 512
#: What a recipe's 4th input channel carries (the card's, the training config's, the recipe's and ``Matter``'s
#: word for it): the card's hints (``guide``: the packaged segmentation model's mask, which also bounds the
#: matte; ``prev-alpha``: the previous frame's matte, blank for a still or a stream's first frame) or ``none``
#: (3-channel weights: no 4th channel).
RECIPE_HINTS = (*HINTS, "none")


@dataclass(frozen=True)
class JobDefaults:
    """What a job runs a set of weights with when the caller does not say."""

    ref_size: int  # short side the network sees
    hint: str  # what the 4th input channel carries, one of RECIPE_HINTS
    temporal: str  # what a stream does between frames unless told: "prev-alpha" (feed back the matte) or "ofd"
    preprocess: str  # one of greenless.card.PREPROCESS_RULES
    guide_view: str = "pad"  # how the segmenter sees the image (SelfieSegmenter modes): "both" for photos, "pad" for streams
    refine: str = "none"  # the full-resolution detail stage (greenless.pipeline.detail.REFINERS): "band" for photos


#: The one command that rebuilds a named weight set from its recipe (data, warm start, training, shipping).
REBUILD_COMMAND = "python scripts/rebuild_weights.py {name}"


@dataclass(frozen=True)
class PackagedModel:
    """A weight set known by name: ``<name>.json`` (its card) ships inside the package, and with it
    ``<name>.onnx`` and ``<name>.safetensors`` unless ``in_wheel`` is False: then only the card and the
    recipe ship (the weights cost more wheel than they earn), and the files appear where the card is once
    ``scripts/rebuild_weights.py NAME`` has rebuilt them in a clone (an editable install)."""

    name: str
    summary: str
    in_wheel: bool = True

    def path(self, engine: str = "onnx") -> Path:
        """The file the ``engine`` loads (``.onnx`` for onnx, ``.safetensors`` for torch)."""
        file = f"{self.name}.onnx" if engine == "onnx" else f"{self.name}.safetensors"
        path = _weights_dir() / file
        if not path.is_file():
            if not self.in_wheel:
                raise GreenlessError(
                    f"{self.name} is not in the package, only its card is ({self.name}.json); rebuild it from a "
                    f"clone with `{REBUILD_COMMAND.format(name=self.name)}`, or pass --weights FILE")
            raise GreenlessError(f"the packaged weights {file} are missing; reinstall greenless")
        return path

    def card(self) -> dict[str, Any]:
        """The card shipped beside the weights (reference sizes, hint, model config, training record)."""
        return read_card(card_path(_weights_dir() / f"{self.name}.onnx"))

    @property
    def in_channels(self) -> int:
        """Input channels of the network: 3 (RGB) or 4 (RGB + guide or previous alpha)."""
        return in_channels(self.card())

    def defaults(self, job: str) -> JobDefaults:
        """What ``job`` runs this model with by default."""
        return job_defaults(self.card(), self.in_channels, job)


def _weights_dir() -> Path:
    return Path(str(resources.files("greenless") / "weights"))


PACKAGED: dict[str, PackagedModel] = {m.name: m for m in (
    PackagedModel("modnet", "real-time MODNet (BatchNorm, separable convolutions, half-resolution semantics) guided by "
                            "the packaged segmentation model's mask in a 4th input channel; the default for every job"),
    PackagedModel("modnet-paper", "the paper's architecture (IBNorm, full convolutions) on EfficientNet-Lite0, "
                                  "unguided; MAD 0.113 on the shared portraits, so only its card ships: "
                                  "`python scripts/rebuild_weights.py modnet-paper` rebuilds the weights", in_wheel=False),
)}
#: Packaged model names and one-line summaries, the names ``--model`` takes.
MODELS = {name: m.summary for name, m in PACKAGED.items()}
#: The packaged model each job runs when neither ``--weights`` nor ``--model`` is given: the guided
#: real-time network for every job; photos run it at its card's ``photo_ref_size`` (384: better mattes, a
#: still has time), streams at its ``ref_size`` (288: real time on 2 cores). See the README, "Models".
DEFAULT_MODEL = {"photo": "modnet", "stream": "modnet"}


def packaged(name: str) -> PackagedModel:
    """The packaged model called ``name``; one error line naming the choices when there is none."""
    if name not in PACKAGED:
        raise GreenlessError(f"unknown model {name!r}; choose from {', '.join(PACKAGED)}")
    return PACKAGED[name]


def check_job(job: str) -> str:
    """``job`` if it is one of JOBS, else a one-line error."""
    if job not in JOBS:
        raise GreenlessError(f"unknown job {job!r}; choose from {', '.join(JOBS)}")
    return job


@overload
def resolve_weights(weights: str | Path | None, model: str | None, engine: str = ..., job: str = ...) -> Path: ...
@overload
def resolve_weights(weights: str | Path | None, model: str | None, engine: str, job: None) -> Path | None: ...
@overload
def resolve_weights(weights: str | Path | None, model: str | None, engine: str = ..., *, job: None) -> Path | None: ...


def resolve_weights(weights: str | Path | None, model: str | None, engine: str = "onnx",
                    job: str | None = "photo") -> Path | None:
    """The one way from a model name or a file to a weights path: ``--weights`` wins; else the packaged
    ``--model`` (``engine`` picks its ``.onnx`` or ``.safetensors``); else the packaged default of ``job``
    (``job=None``: None, so ``Matter`` later applies the default of the job it runs)."""
    if weights is not None and model is not None:
        raise GreenlessError("give --weights or --model, not both")
    if weights is not None:
        return Path(weights)
    name = model if model is not None else (DEFAULT_MODEL[check_job(job)] if job is not None else None)
    return packaged(name).path(engine) if name is not None else None


def is_official(card: dict[str, Any]) -> bool:
    """True for converted official MODNet checkpoints (and the ``.ckpt`` files themselves): their card says
    ``preprocess = "modnet-demo"`` (``greenless convert`` writes it) or comes from ``official checkpoint``."""
    return card.get("preprocess") == "modnet-demo" or str(card.get("source", "")).startswith("official checkpoint")


def default_temporal(hint: str) -> str:
    """The temporal method a stream uses unless told, for weights running with ``hint``: ``prev-alpha`` (feed
    the previous matte back through the 4th channel) for 4-channel weights running without their guide, else
    ``ofd`` (guided weights get the guide on every frame: measured steadier than feedback,
    ``benchmarks/temporal_compare.py --guided``). OFD runs on top of either unless turned off
    (``Matter.stream(ofd=False)``, ``--no-ofd``)."""
    return "prev-alpha" if hint == "prev-alpha" else "ofd"


def check_hint(hint: str) -> str:
    """``hint`` if it is one of RECIPE_HINTS, else a one-line error."""
    if hint not in RECIPE_HINTS:
        raise GreenlessError(f"unknown hint {hint!r}; choose from {', '.join(RECIPE_HINTS)}")
    return hint


def default_hint(card: dict[str, Any], in_channels: int) -> str:
    """The hint weights run with unless told: ``guide`` for 4-channel weights trained with it (card
    ``hint = "guide"``), ``prev-alpha`` for other 4-channel weights, ``none`` for 3-channel ones (so 3-channel
    weights and official checkpoints run unguided as the paper does)."""
    if in_channels != 4:
        return "none"
    return "guide" if card.get("hint") == "guide" else "prev-alpha"


def job_defaults(card: dict[str, Any], in_channels: int, job: str, hint: str | None = None) -> JobDefaults:
    """Defaults of ``job`` for weights with this ``card`` and this many input channels (``hint``: the caller's
    choice of 4th channel, which the temporal default follows; None: ``default_hint``).

    Reference size: the card's ``ref_size`` for streams, its ``photo_ref_size`` (else ``ref_size``) for
    photos, else 512. Temporal: ``default_temporal`` of the hint. Preprocessing: the official demo's for
    official checkpoints, greenless's otherwise. Guide view: photos run the segmenter letterboxed and squashed
    and keep the minimum (``SelfieSegmenter`` mode ``both``: what only one view takes in is dropped), streams
    letterboxed only (a second run would cost real time). Detail stage: photos refine the edge band at full
    resolution (``band``: MAD 0.0187 -> 0.0132 on the four validation portraits, 1-2 s a photo), except
    official checkpoints, whose users get the demo's mattes; streams do not (it is far from real time).
    """
    check_job(job)
    own = card.get("ref_size") if job == "stream" else card.get("photo_ref_size", card.get("ref_size"))
    hint = check_hint(hint) if hint is not None else default_hint(card, in_channels)
    preprocess = "modnet-demo" if is_official(card) else "greenless"
    refine = "band" if job == "photo" and preprocess == "greenless" else "none"
    return JobDefaults(int(own or FALLBACK_REF_SIZE), hint, default_temporal(hint), preprocess,
                       guide_view="pad" if job == "stream" else "both", refine=refine)
