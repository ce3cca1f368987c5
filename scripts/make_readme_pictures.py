"""Pictures for the README: the before/after hero and zoomed hair crops compared with the reference model.

The hair comparison shows, for the four validation portraits and the `woman` photo (no model was trained on
any of them), the crop of the upper half with the most soft edge (the hair): the photo, the network's matte alone (``--refine none``),
with the detail stage (the default), the reference segmentation model, and the ground truth where there is
one, each as a cut-out on green.

    python scripts/make_readme_pictures.py            # writes docs/hero.png and docs/hair_compare.png
    python scripts/make_readme_pictures.py -o /tmp/pictures   # anywhere else (the tracked files stay as they are)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from greenless.cli.script import need_path, progress, run_script
from greenless.media.images import save_image_atomic

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


def edge_box(alpha: np.ndarray, side: float = 0.3) -> tuple[int, int, int]:
    """``(top, left, size)`` of the square crop (``side`` of the short side) in the upper half of the photo
    holding the most soft edge (0.05 < alpha < 0.95): where the hair is, found rather than picked by hand."""
    size = int(side * min(alpha.shape))
    soft = ((alpha > 0.05) & (alpha < 0.95)).astype(np.float32)
    density = cv2.boxFilter(soft, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)
    half = size // 2
    inner = density[half:max(half + 1, alpha.shape[0] // 2), half:alpha.shape[1] - half]  # crops that fit, upper half
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(y), int(x), size


def zoom(image: np.ndarray, box: tuple[int, int, int], out: int = 220) -> np.ndarray:
    """The square ``box`` of ``image`` at ``out`` pixels a side."""
    y0, x0, size = box
    return cv2.resize(image[y0:y0 + size, x0:x0 + size], (out, out), interpolation=cv2.INTER_AREA)


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
    save_image_atomic(args.out / "hero.png", cv2.resize(hero, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA))

    reference = ReferenceSegmenter(model)
    plain = Matter(refine="none")
    portraits = need_path(args.shared / "data" / "portraits", "the shared portraits", "dir")
    cases = [(p, portraits / "alpha" / f"{p.stem}.png") for p in sorted((portraits / "image").glob("*.jpg"))]
    cases += [(p, None) for p in photos if p.stem.startswith("woman")]
    rows = []
    for photo, truth in progress(cases, "hair crops"):
        rgb = read_rgb(photo)
        mattes = {"network alone": plain.matte(rgb), "with detail stage": matter.matte(rgb),
                  "reference": reference(rgb, mode="squash")}
        if truth is not None:
            mattes["ground truth"] = cv2.imread(str(truth), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        box = edge_box(mattes["with detail stage"])
        tiles = [label(zoom(rgb, box), photo.stem.split("-")[0])]
        for name, alpha in mattes.items():
            tiles.append(label(zoom(composite(rgb, alpha, (46, 125, 50), fg_estimate=name != "reference"), box), name))
        rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    save_image_atomic(args.out / "hair_compare.png", np.vstack(rows))
    print(f"wrote {args.out / 'hero.png'} and {args.out / 'hair_compare.png'}")


if __name__ == "__main__":
    run_script(main)
