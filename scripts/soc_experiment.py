"""Does SOC help? Adapt weights on some clips, score held-out clips and the labelled portraits.

SOC runs with the official recipe (``SOCConfig`` defaults: loss weights, lr 1e-5); frames are adapted
and scored at ``--size`` (default: the weights' reference size).

Adapts on the first half of the ASL clips (every n-th frame) plus the portrait video, then reports:
- inconsistency (mean |semantic - blurred 1/16 matte|) on frames of the held-out ASL clips, before/after;
- MSE and MAD on ../shared/data/portraits (full resolution, the weights' reference size), before/after.

    python scripts/soc_experiment.py --weights src/greenless/weights/modnet.safetensors -o runs/soc
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from greenless.cli.script import need_path, progress, run_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/soc"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=None, help="default: SOCConfig's (the official recipe's)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: SOCConfig's")
    parser.add_argument("--size", type=int, default=0, help="Square crop side (default: the weights' ref_size).")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    need_path(args.weights, "the weights, --weights", "file")
    data = need_path(args.shared / "data", "the shared data, --shared", "dir")
    need_path(data / "portraits", "the validation portraits", "dir")
    portrait_video = need_path(data / "videos" / "thoughtful-35590.mp4", "the portrait video", "file")
    clips = sorted(need_path(data / "videos" / "asl", "the ASL clips", "dir").glob("*.mkv"))

    import torch  # after the checks, so a mistyped path is answered at once

    from greenless.model.checkpoint import load_weights
    from greenless.train.soc import SOCConfig, adapt, inconsistency, iter_frames
    from greenless.train.validate import validate

    if args.threads:
        torch.set_num_threads(args.threads)
    defaults = SOCConfig()
    lr = defaults.lr if args.lr is None else args.lr
    batch_size = defaults.batch_size if args.batch_size is None else args.batch_size
    adapt_clips, held_out = clips[: len(clips) // 2], clips[len(clips) // 2:]
    unlabelled = args.output / "unlabelled"
    if unlabelled.exists():
        shutil.rmtree(unlabelled)
    unlabelled.mkdir(parents=True)
    for clip in adapt_clips + [portrait_video]:
        (unlabelled / clip.name).symlink_to(clip.resolve())
    test_frames = [f for clip in progress(held_out, "reading held-out clips") for f in iter_frames(clip, every=15, limit=4)]

    before_model, card = load_weights(args.weights)
    ref_size = int(card.get("ref_size", 512))
    size = args.size or ref_size
    hint = card.get("hint", "prev-alpha")
    guided = hint == "guide"
    print("scoring the weights before adaptation ...", file=sys.stderr, flush=True)
    before = {"inconsistency": inconsistency(before_model, test_frames, size, guided),
              **validate(before_model, data / "portraits", ref_size, hint=hint)}
    adapted = args.output / "adapted.safetensors"
    cfg = SOCConfig(steps=args.steps, lr=lr, size=size, batch_size=batch_size, frame_every=6)
    result = adapt(args.weights, unlabelled, adapted, cfg)
    after_model, _ = load_weights(adapted)
    print("scoring the adapted weights ...", file=sys.stderr, flush=True)
    after = {"inconsistency": inconsistency(after_model, test_frames, size, guided),
             **validate(after_model, data / "portraits", ref_size, hint=hint)}
    report = {"adapt_clips": [c.name for c in adapt_clips], "held_out_clips": [c.name for c in held_out],
              "held_out_frames": len(test_frames), "adapt_frames": result["frames"], "epochs": result["epochs"],
              "soc": asdict(cfg), "ref_size": ref_size,
              "before": before, "after": after}
    (args.output / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    run_script(main)
