"""Model exports: ONNX with dynamic batch, height and width (opset 17), input ``input`` in [-1, 1], output ``matte``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ONNX_OPSET = 17


def export_onnx(model: Any, path: str | Path, card: dict[str, Any] | None = None, opset: int = ONNX_OPSET) -> Path:
    """Trace ``model`` (eval mode) to ONNX at ``path``, storing the card as model metadata."""
    import onnx
    import torch

    path = Path(path)
    model = model.eval().float()
    channels = model.config.in_channels
    dummy = torch.zeros(1, channels, 256, 256)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, (dummy,), str(tmp), input_names=["input"], output_names=["matte"], opset_version=opset,
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "matte": {0: "batch", 2: "height", 3: "width"}},
        dynamo=False,
    )
    proto = onnx.load(str(tmp))
    if card:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "greenless_card", json.dumps(card)
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    return path
