"""Weights on disk: our safetensors + JSON card, and the official MODNet checkpoint layout.

Our files keep the model config inside the safetensors metadata (and beside it as ``<name>.json``), so
a weights file always rebuilds its own network. Official checkpoints are pickled state dicts saved
from ``nn.DataParallel`` (``module.`` prefix) that also hold a duplicate of the backbone under
``lr_branch.backbone``; ``official_to_ours`` strips both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from greenless.card import CARD_KEY, card_path, parse_card, read_card
from greenless.errors import GreenlessError, first_line
from greenless.model.modnet import ModelConfig, MODNet, build_model


def save_weights(model: MODNet, path: str | Path, card: dict[str, Any] | None = None, half: bool = True) -> Path:
    """Write ``model`` as safetensors (fp16 by default, to keep shipped files small) plus its JSON card."""
    from safetensors.torch import save_file

    path = Path(path)
    card = dict(card or {})
    card["model"] = model.config.to_dict()
    tensors = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={CARD_KEY: json.dumps(card)})
    tmp.chmod(0o644)  # safetensors writes 0600; weights are meant to be read by everyone (packaging)
    tmp.replace(path)
    tmp_card = card_path(path).with_name(card_path(path).name + ".tmp")
    tmp_card.write_text(json.dumps(card, indent=2) + "\n")
    tmp_card.replace(card_path(path))
    return path


def load_weights(path: str | Path, map_location: str = "cpu") -> tuple[MODNet, dict[str, Any]]:
    """Rebuild the network a weights file describes and load it (fp32); returns (model, card).

    Accepts our safetensors files and official ``.ckpt``/``.pth`` checkpoints.
    """
    path = Path(path)
    refuse_torchscript(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        card = read_card(path)
        model = build_model(card.get("model"))
        state = load_file(str(path), device=map_location)
    else:
        card = {"model": ModelConfig().to_dict(), "source": f"official checkpoint {path.name}"}
        model = build_model(card["model"])
        state = official_to_ours(load_pickle(path, map_location))
    reference = model.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.eval(), card


def load_pickle(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """A pickled checkpoint's state dict, loaded with ``weights_only`` (tensors and plain containers only).

    A pickle that holds anything else could run code when loaded, so it is refused in one line (PyTorch's
    own message suggests turning the guard off); PyTorch's warnings about pickle protocols are not shown.
    """
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(str(path), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(str(exc))
        if "GLOBAL" in detail:  # a pickle naming a class or function (os.system, ...): refused, never run
            raise GreenlessError(f"{path}: refused: this pickle holds Python objects besides tensors, which could run "
                                 f"code when loaded ({detail}); greenless loads only plain state dicts (or use "
                                 f".safetensors)") from None
        raise GreenlessError(f"{path}: not a checkpoint greenless can load safely ({detail})") from None
    except (EOFError, RuntimeError, ValueError, OSError, KeyError, IndexError) as exc:  # empty, cut short, not a pickle
        raise GreenlessError(f"{path}: not a PyTorch checkpoint ({first_line(exc)})") from None
    if not isinstance(state, dict):
        raise GreenlessError(f"{path}: not a MODNet checkpoint (a pickled {type(state).__name__}, not a state dict)")
    return state


def _unpickler_detail(message: str) -> str:
    """The line of PyTorch's weights-only refusal that says what stopped it (its message is a dozen lines of
    advice, including turning the guard off), else the message's first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for marker in ("GLOBAL", "Unsupported operand", "WeightsUnpickler error:"):
        for line in lines:
            if marker in line and not line.endswith("error:"):
                return line[:200]
    return lines[0][:200] if lines else "unreadable pickle"


def refuse_torchscript(path: Path) -> None:
    """One error line when ``path`` is a TorchScript export: it holds a traced network, not weights to rebuild."""
    if is_torchscript(path):
        raise GreenlessError(f"{path}: a TorchScript export holds a traced network, not weights to rebuild; "
                             f"run it with --engine torch, or start from the .safetensors it was exported from")


def is_torchscript(path: str | Path) -> bool:
    """True for a TorchScript archive (``greenless export --torchscript``): a zip holding compiled code and
    ``constants.pkl``, which a plain ``torch.save`` checkpoint never has."""
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except OSError:
        return False


def load_torchscript(path: str | Path, map_location: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a TorchScript export and the card saved inside it; returns (module in eval mode, card).

    The module is the traced network (image batch in, matte out), so it runs where a rebuilt MODNet
    runs for inference (the torch engine) but cannot be trained or exported again.
    """
    extra = {f"{CARD_KEY}.json": ""}
    try:
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
    except Exception as exc:
        raise GreenlessError(f"{path}: cannot load TorchScript ({first_line(exc)})") from None
    return module.eval(), parse_card(extra[f"{CARD_KEY}.json"], path)


def official_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official MODNet state dict onto ours: drop ``module.`` and the duplicated backbone copy."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module."):]
        if key.startswith("lr_branch.backbone."):
            continue
        out[key] = value
    return out
