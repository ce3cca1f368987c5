"""Pictures for the README: the before/after hero and a hair-edge comparison with the reference model.

    python scripts/make_readme_pictures.py            # writes docs/hero.png and docs/hair_compare.png
    python scripts/make_readme_pictures.py -o /tmp/pictures   # anywhere else (the tracked files stay as they are)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.media.images import save_png_atomic

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def checkerboard(h: int, w: int, cell: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    board = (((yy // cell) + (xx // cell)) % 2).astype(np.uint8)
    return np.where(board[..., None] == 1, 205, 245).astype(np.uint8).repeat(3, axis=2)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (8 + 11 * len(text), 26), (0, 0, 0), -1)
    cv2.putText(out, text, (5, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared folder (its photos and reference model)")
    parser.add_argument("-o", "--out", type=Path, default=REPO / "docs", help="folder for hero.png and hair_compare.png")
    args = parser.parse_args()
    model = need_path(args.shared / "models" / "selfie_segmentation.onnx", "the reference model, --shared", "file")
    photos = sorted(need_path(args.shared / "data" / "photos", "the shared photos", "dir").glob("*.jpg"))

    from greenless import Matter
    from greenless.evaluate.reference import ReferenceSegmenter
    from greenless.pipeline.compose import composite

    matter = Matter()
    astronaut = read_rgb(REPO / "examples" / "astronaut.jpg")
    alpha = matter.matte(astronaut)
    hero = np.hstack([label(astronaut, "photo"),
                      label(composite(astronaut, alpha, checkerboard(*astronaut.shape[:2])), "greenless cut-out"),
                      label(composite(astronaut, alpha, "#2e7d32"), "new background")])
    save_png_atomic(args.out / "hero.png", cv2.resize(hero, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA))

    reference = ReferenceSegmenter(model)
    rows = []
    for photo in progress(photos, "hair comparison"):
        rgb = read_rgb(photo)
        scale = 420 / rgb.shape[0]
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ours = matter.matte(rgb)
        ref = reference(rgb, mode="squash")
        bg = np.full_like(rgb, (46, 125, 50))
        rows.append(np.hstack([label(rgb, photo.stem.split("-")[0]), label(composite(rgb, ours, bg), "greenless"),
                               label(composite(rgb, ref, bg, fg_estimate=False), "reference (selfie seg.)")]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    save_png_atomic(args.out / "hair_compare.png", np.vstack(rows))
    print(f"wrote {args.out / 'hero.png'} and {args.out / 'hair_compare.png'}")


if __name__ == "__main__":
    run_script(main)
