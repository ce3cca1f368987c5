"""Pictures for the README: the before/after hero and a hair-edge comparison with the reference model.

    python scripts/make_readme_pictures.py            # writes docs/hero.png and docs/hair_compare.png
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from greenless import Matter
from greenless.evaluate.reference import ReferenceSegmenter
from greenless.pipeline.compose import composite

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


def save(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> None:
    matter = Matter()
    astronaut = read_rgb(REPO / "examples" / "astronaut.jpg")
    alpha = matter.matte(astronaut)
    hero = np.hstack([label(astronaut, "photo"),
                      label(composite(astronaut, alpha, checkerboard(*astronaut.shape[:2])), "greenless cut-out"),
                      label(composite(astronaut, alpha, "#2e7d32"), "new background")])
    save(REPO / "docs" / "hero.png", cv2.resize(hero, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA))

    reference = ReferenceSegmenter(SHARED / "models" / "selfie_segmentation.onnx")
    rows = []
    for photo in sorted((SHARED / "data" / "photos").glob("*.jpg")):
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
    save(REPO / "docs" / "hair_compare.png", np.vstack(rows))


if __name__ == "__main__":
    main()
