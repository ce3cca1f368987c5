"""Score training checkpoints (``last.pt``) of different encoders on a labelled folder, side by side.

    python scripts/compare_encoders.py runs/cmp/effnet_60.pt:efficientnet-lite0 runs/cmp/mobilenetv2_60.pt:mobilenetv2

Needs the torch extra; the checkpoints come from ``greenless train`` runs (``runs/NAME/last.pt``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="PATH:ENCODER pairs")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits")
    parser.add_argument("--ref-size", type=int, default=512)
    args = parser.parse_args()
    specs = []
    for spec in args.checkpoints:
        if ":" not in spec:
            raise GreenlessError(f"{spec}: give PATH:ENCODER, e.g. runs/cmp/last.pt:efficientnet-lite0")
        path, encoder = spec.rsplit(":", 1)
        specs.append((need_path(Path(path), "the checkpoint", "file"), encoder))
    need_path(args.data, "the labelled folder, --data", "dir")

    import torch  # after the checks: a mistyped path is answered at once

    from greenless.model import build_model
    from greenless.train.validate import validate

    rows = {}
    for path, encoder in progress(specs, "scoring checkpoints"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model({"encoder": encoder})
        model.load_state_dict(state["model"])
        rows[encoder] = {"step": state["step"], **validate(model, args.data, args.ref_size)}
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    run_script(main)
