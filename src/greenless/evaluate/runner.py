"""``greenless eval`` logic: score the model (or a folder of predictions) and optionally a reference model on a dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from greenless.errors import GreenlessError, first_line
from greenless.evaluate.dataset import EvalSet, find_prediction, load_eval_set, read_alpha, read_rgb
from greenless.evaluate.metrics import all_metrics, mean_metrics
from greenless.media.images import save_image_atomic


@dataclass
class Scores:
    """Per-image metrics of one method and their mean."""

    per_image: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def mean(self) -> dict[str, float]:
        return mean_metrics(list(self.per_image.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"per_image": self.per_image, "mean": self.mean}


@dataclass
class EvalResult:
    """Scores of our model (or the given predictions) and, when asked, of the reference model."""

    layout: str
    ours: Scores
    reference: Scores | None = None
    grid: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"per_image": {stem: {mse, mad, sad, grad, conn}}, "mean": {...}}`` plus ``reference`` if compared."""
        out: dict[str, Any] = self.ours.to_dict()
        if self.reference is not None:
            out["reference"] = self.reference.to_dict()
        return out


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """[0, 1] float alpha -> uint8 0..255 (rounded)."""
    return (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _check_size(path: Path, what: str, arr: np.ndarray, gt: np.ndarray, gt_path: Path) -> None:
    if arr.shape[:2] != gt.shape:
        raise GreenlessError(
            f"{path}: {what} is {arr.shape[1]}x{arr.shape[0]} but the ground truth {gt_path.name} is {gt.shape[1]}x{gt.shape[0]}"
        )


def evaluate(
    data_dir: str | Path,
    *,
    predictions: str | Path | None = None,
    weights: str | Path | None = None,
    engine: str = "onnx",
    ref_size: int | None = None,
    guide: str | None = None,
    refine: str | None = None,
    save_dir: str | Path | None = None,
    reference: str | Path | None = None,
    grid: str | Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_image: Callable[[str], None] | None = None,
) -> EvalResult:
    """Score every image of ``data_dir`` (PPM-100, P3M-500 or AIM-500 layout).

    Predictions come from ``predictions`` (alpha PNGs with the images' stems) or, without it, from
    :class:`greenless.Matter` with ``weights``/``engine``/``ref_size``/``guide``/``refine`` (the photo recipe:
    what ``greenless matte`` gives). ``reference`` (an ONNX selfie
    segmentation model, scored in ``squash`` mode) adds a second set of scores; ``grid`` writes a picture
    grid PNG; ``save_dir`` writes the model's alphas. ``on_start(n)``/``on_image(stem)`` report progress.
    """
    evalset: EvalSet = load_eval_set(data_dir)
    pred_dir = Path(predictions) if predictions is not None else None
    if pred_dir is not None and not pred_dir.is_dir():
        raise GreenlessError(f"{pred_dir}: predictions folder not found")
    if grid is not None and Path(grid).suffix.lower() != ".png":
        raise GreenlessError(f"{grid}: the picture grid is written as PNG; use a .png name")
    if pred_dir is not None and save_dir is not None:
        raise GreenlessError("--save-dir saves the model's predictions; it cannot be combined with --predictions")
    if pred_dir is not None:  # fail before any work if a prediction is missing
        for sample in evalset.samples:
            find_prediction(pred_dir, sample.stem)

    matter = None
    if pred_dir is None:
        from greenless.matter import Matter

        matter = Matter(weights, engine=engine, ref_size=ref_size, guide=guide, refine=refine)
    segmenter = None
    if reference is not None:
        segmenter = load_reference(Path(reference))
    out_dir = Path(save_dir) if save_dir is not None else None
    grid_rows: list[dict[str, np.ndarray]] = []

    ours, ref_scores = Scores(), (Scores() if segmenter is not None else None)
    if on_start:
        on_start(len(evalset.samples))
    for sample in evalset.samples:
        gt = read_alpha(sample.alpha)
        rgb = None
        if matter is not None or segmenter is not None or grid is not None:
            rgb = read_rgb(sample.image)
            _check_size(sample.image, "the image", rgb, gt, sample.alpha)
        if pred_dir is not None:
            pred_path = find_prediction(pred_dir, sample.stem)
            pred = read_alpha(pred_path)
            _check_size(pred_path, "the prediction", pred, gt, sample.alpha)
        else:
            pred = matter.matte(rgb).astype(np.float64)  # type: ignore[union-attr]
            if out_dir is not None:
                save_image_atomic(out_dir / f"{sample.stem}.png", alpha_to_uint8(pred), "PNG")  # the one writer
        ours.per_image[sample.stem] = all_metrics(pred, gt)
        ref_pred = None
        if segmenter is not None:
            ref_pred = segmenter(rgb, mode="squash").astype(np.float64)
            ref_scores.per_image[sample.stem] = all_metrics(ref_pred, gt)  # type: ignore[union-attr]
        if grid is not None:
            from greenless.evaluate.grid import grid_row

            grid_rows.append(grid_row(rgb, gt, pred, ref_pred))  # type: ignore[arg-type]
        if on_image:
            on_image(sample.stem)

    grid_path = None
    if grid is not None:
        from greenless.evaluate.grid import write_grid

        grid_path = write_grid(Path(grid), grid_rows)
    return EvalResult(evalset.layout, ours, ref_scores, grid_path)


def load_reference(path: Path) -> Any:
    """The reference segmenter at ``path`` (never shipped: always passed by the user)."""
    from greenless.evaluate.reference import ReferenceSegmenter

    if not path.is_file():
        raise GreenlessError(f"{path}: reference model not found")
    try:
        return ReferenceSegmenter(path)
    except Exception as exc:  # onnxruntime raises several unrelated types for unreadable models
        raise GreenlessError(f"{path}: cannot load the reference model ({first_line(exc)})") from exc
