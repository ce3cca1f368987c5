"""Picture grid for quality comparisons: per image a row of image, ground truth, ours, reference and error maps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from greenless.errors import GreenlessError

TILE_HEIGHT = 300
MAX_BYTES = 2_000_000
HEADER = 36
GAP = 6
BACKGROUND = (255, 255, 255)


def _thumb(rgb: np.ndarray, height: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    width = max(1, round(w * height / h))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def _grey(alpha: np.ndarray) -> np.ndarray:
    a = (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(a[:, :, None], 3, axis=2)


def _error_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """|pred - gt| as an inferno heat map (black = no error, yellow = error 1)."""
    err = (np.abs(pred - gt) * 255 + 0.5).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(err, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def grid_row(rgb: np.ndarray, gt: np.ndarray, ours: np.ndarray, reference: np.ndarray | None = None,
             height: int = TILE_HEIGHT) -> dict[str, np.ndarray]:
    """Thumbnails (``height`` px tall) for one image: labelled panels in display order."""
    panels = {"image": rgb, "ground truth": _grey(gt), "ours": _grey(ours)}
    if reference is not None:
        panels["reference"] = _grey(reference)
    panels["|error| ours"] = _error_map(ours, gt)
    if reference is not None:
        panels["|error| reference"] = _error_map(reference, gt)
    return {name: _thumb(img, height) for name, img in panels.items()}


def compose_grid(rows: list[dict[str, np.ndarray]]) -> np.ndarray:
    """One RGB picture: a header of column names, then one row of panels per image."""
    if not rows:
        raise GreenlessError("no images for the picture grid")
    names = list(rows[0])
    tile_h = rows[0][names[0]].shape[0]
    cell_w = max(img.shape[1] for row in rows for img in row.values())
    width = len(names) * cell_w + (len(names) + 1) * GAP
    height = HEADER + len(rows) * (tile_h + GAP) + GAP
    canvas = np.full((height, width, 3), BACKGROUND, np.uint8)
    for c, name in enumerate(names):
        x0 = GAP + c * (cell_w + GAP)
        scale = 0.6
        (tw, th), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.putText(canvas, name, (x0 + max(0, (cell_w - tw) // 2), (HEADER + th) // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (0, 0, 0), 1, cv2.LINE_AA)
        for r, row in enumerate(rows):
            img = row[name]
            y0 = HEADER + r * (tile_h + GAP)
            xoff = x0 + (cell_w - img.shape[1]) // 2
            canvas[y0:y0 + img.shape[0], xoff:xoff + img.shape[1]] = img
    return canvas


def write_grid(path: Path, rows: list[dict[str, np.ndarray]], max_bytes: int = MAX_BYTES) -> Path:
    """Write the grid as PNG at ``path``, shrinking it until the file is under ``max_bytes``."""
    from greenless.media.images import encode_png, write_bytes_atomic

    if path.suffix.lower() != ".png":
        raise GreenlessError(f"{path}: the picture grid is written as PNG; use a .png name")
    canvas = compose_grid(rows)
    while True:
        data = encode_png(canvas, 9)
        if len(data) < max_bytes or canvas.shape[1] < 200:
            break
        canvas = cv2.resize(canvas, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    write_bytes_atomic(path, data)
    return path
