"""Score training checkpoints (``last.pt``) of different encoders on a labelled folder, side by side.

    python scripts/compare_encoders.py runs/cmp/effnet_60.pt:efficientnet-lite0 runs/cmp/mobilenetv2_60.pt:mobilenetv2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from greenless.model import build_model
from greenless.train.validate import validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="PATH:ENCODER pairs")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits")
    parser.add_argument("--ref-size", type=int, default=512)
    args = parser.parse_args()
    rows = {}
    for spec in args.checkpoints:
        path, encoder = spec.rsplit(":", 1)
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model({"encoder": encoder})
        model.load_state_dict(state["model"])
        rows[encoder] = {"step": state["step"], **validate(model, args.data, args.ref_size)}
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
