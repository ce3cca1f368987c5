"""Re-label the training people with the photo pipeline itself (self-training): the teacher of issue 17.

The pseudo-labels of scripts/build_training_data.py and build_extra_data.py come from the segmentation
model's mask: a trimap drawn around a hard-edged silhouette, closed-form matting inside. The photo default
(the guided network at 384, its matte bounded by the guide, then the full-resolution detail stage of
greenless.pipeline.detail) draws its band from a soft matte and the guide together, and is what users get;
this script runs it on every real picture (``image/``) of a labelled folder and writes a copy of the
folder with its alphas and foreground colours (greenless.pipeline.compose.estimate_foreground) in their
place, for the real-time network to learn from.

Kept as they are (the teacher would only add its own error): pictures whose label came from a background
plate (openpeople's studio shots against a fitted backdrop, the room video against its clean plate;
``--keep`` prefixes, or ``method: studio`` in the folder's manifest), and pictures where the teacher and
the old label disagree about the person itself (IoU of their ``alpha > 0.5`` masks below ``--min-iou``:
a missed arm or a taken-in object is a mistake of one of them, not edge detail). The counts are printed
and written to OUT/manifest.json, last (a rebuild takes it for "done"; a stopped run continues).

    python scripts/relabel_training_data.py runs/data runs/data-extra -o runs/teacher \
        --weights runs/init/modnet-c56e4ff.safetensors --ref-size 384   # modnet of git c56e4ff, as shipped
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.errors import GreenlessError
from greenless.media.images import load_rgb, read_alpha, save_image_atomic, write_bytes_atomic

#: Name prefixes whose labels came from a background plate (exact enough to keep).
PLATE_PREFIXES = ("room_",)


def plate_labelled(folder: Path) -> set[str]:
    """Stems whose label a background plate gave (the manifest's ``method: studio`` samples)."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return set()
    people = json.loads(manifest.read_text()).get("people", {})
    return {s["name"] for s in people.get("samples", []) if isinstance(s, dict) and s.get("method") == "studio"}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the ``> 0.5`` masks of two mattes."""
    ma, mb = a > 0.5, b > 0.5
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 1.0


def relabel(teacher: Any, data: Path, out: Path, min_iou: float, keep_prefixes: tuple[str, ...]) -> dict[str, Any]:
    """Write ``data`` re-labelled by ``teacher`` (a Matter) into ``out``; returns the counts."""
    from greenless.pipeline.compose import estimate_foreground

    images = sorted((need_path(data / "image", "its image/ folder", "dir")).glob("*.jpg"))
    if not images:
        raise GreenlessError(f"{data}/image: no pictures")
    for sub in ("fg", "alpha", "image"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    keep = plate_labelled(data)
    counts = {"relabelled": 0, "plate": 0, "disagree": 0, "done_before": 0}
    changes: list[float] = []
    for image_path in progress(images, f"re-labelling {data.name}"):
        stem = image_path.stem
        if (out / "alpha" / f"{stem}.png").exists():
            counts["done_before"] += 1
            continue  # finished by an earlier run: the alpha is written last
        shutil.copyfile(image_path, out / "image" / image_path.name)
        old_alpha = data / "alpha" / f"{stem}.png"
        kept = "plate" if stem in keep or stem.startswith(keep_prefixes) else None
        if kept is None:
            rgb = load_rgb(image_path)
            alpha = teacher.matte(rgb)
            old = read_alpha(old_alpha)
            kept = "disagree" if mask_iou(alpha, old) < min_iou else None
        if kept is not None:  # the old label stands: its foreground, then its alpha (last)
            counts[kept] += 1
            for sub in ("fg", "alpha"):
                shutil.copyfile(data / sub / f"{stem}.png", out / sub / f"{stem}.png")
            continue
        counts["relabelled"] += 1
        changes.append(float(np.abs(alpha - old).mean()))
        fg = estimate_foreground(rgb, alpha)
        save_image_atomic(out / "fg" / f"{stem}.png", fg)
        save_image_atomic(out / "alpha" / f"{stem}.png", np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8))
    return {**counts, "mean_abs_change": round(float(np.mean(changes)), 5) if changes else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="labelled training folders (fg/, alpha/, image/)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="each folder is written to OUTPUT/its name")
    parser.add_argument("--weights", type=Path, default=None,
                        help="the teacher's weights, .onnx or .safetensors (default: the packaged modnet)")
    parser.add_argument("--ref-size", type=int, default=None,
                        help="the teacher network's reference size (default: its card's photo size, 384 for modnet)")
    parser.add_argument("--min-iou", type=float, default=0.9)
    parser.add_argument("--keep", nargs="*", default=list(PLATE_PREFIXES), help="name prefixes kept as labelled")
    args = parser.parse_args()
    from greenless.matter import Matter

    folders = [need_path(folder, "the labelled folder", "dir") for folder in args.folders]
    engine = "torch" if args.weights is not None and args.weights.suffix != ".onnx" else "onnx"
    teacher = Matter(weights=args.weights, engine=engine, ref_size=args.ref_size)
    report: dict[str, Any] = {"teacher": {"weights": str(teacher.weights), "engine": engine,
                                          "recipe": "the photo default: guide (both views), network at "
                                                    f"{teacher.ref_size}, detail stage {teacher.refine}"},
                              "min_iou": args.min_iou, "keep_prefixes": args.keep}
    for folder in folders:
        report[folder.name] = relabel(teacher, folder, args.output / folder.name, args.min_iou, tuple(args.keep))
        print(f"{folder.name}: {report[folder.name]}", file=sys.stderr)
    write_bytes_atomic(args.output / "manifest.json", (json.dumps(report, indent=1) + "\n").encode())


if __name__ == "__main__":
    run_script(main)
