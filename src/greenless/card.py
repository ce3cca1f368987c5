"""The weights card: what it may hold, and the one reader for every place a card lives.

A card is the JSON object a set of weights carries: its reference sizes, what its fourth input channel
holds, its preprocessing rule and the network's config (plus free-form records: training, validation,
checks). It lives beside the weights as ``<name>.json``, inside a safetensors file's metadata, inside an
ONNX file's metadata and inside a TorchScript archive, all under ``CARD_KEY``. Every reader goes through
:func:`parse_card`, so a card that is not JSON, not an object, or holds a wrong type or an out-of-range
value is one error line naming the file and the key, wherever it was found, instead of a traceback deep
in the code that used the value.

A leaf module (it imports nothing of greenless but ``errors``) so the model layer can read cards too.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from greenless.errors import GreenlessError, first_line

#: The metadata key the card is stored under (safetensors, ONNX) and the TorchScript extra file's stem.
CARD_KEY = "greenless_card"
#: Reference sizes a card, ``--ref-size`` and the server's ``ref_size`` accept. Below 32 the network has no
#: 1/32 feature; above 2048 a 4:3 photo is already a 2048x2720 input, 16 times the pixels of the 512 the
#: networks were trained at: larger values only cost memory and time.
MIN_REF_SIZE = 32
MAX_REF_SIZE = 2048
#: How an image becomes the network input (see ``greenless.pipeline.preprocess``): ``greenless`` rounds
#: sizes to the nearest multiple of 32 and resizes linearly up / by area down; ``modnet-demo`` is the
#: official MODNet demo's rule (truncate to multiples of 32, area resizing both ways), for converted
#: official checkpoints so their users get the mattes they know.
PREPROCESS_RULES = ("greenless", "modnet-demo")
#: What a 4-channel network's fourth input holds: the segmentation guide or the previous frame's matte.
HINTS = ("guide", "prev-alpha")
#: Input channels a network may take: RGB, or RGB plus the hint.
IN_CHANNELS = (3, 4)


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (JSON ``288`` or ``288.0``), else None (bools excluded)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _check_ref_size(card: dict[str, Any], key: str, source: str) -> None:
    if key not in card or card[key] is None:
        return
    size = _whole(card[key])
    if size is None or not MIN_REF_SIZE <= size <= MAX_REF_SIZE:
        raise GreenlessError(f"{source}: card {key} must be a whole number from {MIN_REF_SIZE} to {MAX_REF_SIZE}, "
                             f"not {card[key]!r}")
    card[key] = size


def _check_choice(card: dict[str, Any], key: str, choices: tuple[str, ...], source: str) -> None:
    if key in card and card[key] is not None and card[key] not in choices:
        raise GreenlessError(f"{source}: card {key} must be one of {', '.join(choices)}, not {card[key]!r}")


def validate_card(card: Any, source: str) -> dict[str, Any]:
    """``card`` (decoded JSON) checked: an object whose ``ref_size``/``photo_ref_size`` are whole numbers in
    [MIN_REF_SIZE, MAX_REF_SIZE], ``hint`` one of HINTS, ``preprocess`` one of PREPROCESS_RULES, ``model`` an
    object with ``in_channels`` 3 or 4, ``source``/``name`` strings. Returns a copy (sizes as ints); raises
    ``GreenlessError`` naming ``source`` (the file) and the key otherwise. Other keys are records, kept as-is."""
    if not isinstance(card, dict):
        raise GreenlessError(f"{source}: the weights card must be a JSON object, not {type(card).__name__}")
    card = dict(card)
    for key in ("ref_size", "photo_ref_size"):
        _check_ref_size(card, key, source)
    _check_choice(card, "hint", HINTS, source)
    _check_choice(card, "preprocess", PREPROCESS_RULES, source)
    for key in ("source", "name"):
        if key in card and not isinstance(card[key], str):
            raise GreenlessError(f"{source}: card {key} must be a string, not {card[key]!r}")
    model = card.get("model")
    if model is not None:
        if not isinstance(model, dict):
            raise GreenlessError(f"{source}: card model must be an object, not {type(model).__name__}")
        channels = _whole(model.get("in_channels", 3))
        if channels not in IN_CHANNELS:
            raise GreenlessError(f"{source}: card model.in_channels must be 3 or 4, not {model.get('in_channels')!r}")
        card["model"] = {**model, "in_channels": channels}
    return card


def parse_card(text: str | bytes | None, source: str | Path) -> dict[str, Any]:
    """The validated card in JSON ``text`` (empty when ``text`` is None or blank); one error line naming
    ``source`` when it is not JSON or not a valid card."""
    if text is None or not text.strip():
        return {}
    try:
        card = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, absurd nesting
        reason = first_line(exc)
        raise GreenlessError(f"{source}: the weights card is not valid JSON ({reason[:120]})") from None
    return validate_card(card, str(source))


@lru_cache(maxsize=16)
def _read_cached(path: str, mtime: float, size: int) -> dict[str, Any]:
    file = Path(path)
    if file.suffix == ".safetensors":
        try:
            from safetensors import safe_open

            with safe_open(path, framework="numpy") as handle:
                meta = handle.metadata() or {}
        except Exception as exc:  # safetensors raises its own error type for unreadable headers
            raise GreenlessError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None
        return parse_card(meta.get(CARD_KEY), path)
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise GreenlessError(f"{path}: cannot read the weights card ({exc.strerror or exc})") from None
    return parse_card(text, path)


def read_card(path: str | Path) -> dict[str, Any]:
    """The validated card at ``path``: a ``.safetensors`` file's own (its metadata), else the JSON file at
    ``path``; empty when there is none. Cached while the file is unchanged; callers get their own copy."""
    path = Path(path)
    if not path.is_file():
        return {}
    stat = path.stat()
    return json.loads(json.dumps(_read_cached(str(path), stat.st_mtime, stat.st_size)))


def card_path(weights: str | Path) -> Path:
    """Where the human-readable card of a weights file lives: ``<name>.json`` beside it."""
    return Path(weights).with_suffix(".json")


def in_channels(card: dict[str, Any]) -> int:
    """Input channels of the network a (validated) card describes: 3 when it does not say."""
    return int((card.get("model") or {}).get("in_channels", 3))


#: MODNet's encoder halves the image five times: its deepest feature is 1/32 of what it sees.
ENCODER_STRIDE = 32


def stride_for_scale(semantic_scale: float) -> int:
    """The multiple of which both sides of the network's input must be for its features to line up with the
    image: 32 (the encoder's stride), times 1 / ``semantic_scale`` when the encoder sees the image scaled down
    by a whole factor (packaged modnet: 0.5, so 64). Off that grid the last feature row and column cover
    padding, and the semantic features, stretched back over the image, sit up to half a cell off the person;
    the networks never saw that in training (their crops are multiples of 64)."""
    scale = float(semantic_scale or 1.0)
    factor = round(1.0 / scale) if 0.0 < scale <= 1.0 else 1
    return ENCODER_STRIDE * factor if abs(factor * scale - 1.0) < 1e-6 else ENCODER_STRIDE


def network_stride(card: dict[str, Any]) -> int:
    """``stride_for_scale`` of the network a card describes (its model's ``semantic_scale``; 1 when unsaid)."""
    return stride_for_scale((card.get("model") or {}).get("semantic_scale", 1.0))
