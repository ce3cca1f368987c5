"""A set of weights scored as each job runs it: the stream default, the photo default, the photo network alone.

Users meet a set of weights through a job's recipe (``greenless.pipeline.recipe``): streams (video, webcam) at the
card's ``ref_size`` with one guide view and no detail stage, photos at its ``photo_ref_size`` with both guide
views and the detail stage. A figure measured any other way (a training validation at some reference size) is
not a matte anyone gets, so the card ``scripts/ship_weights.py`` writes and ``benchmarks/jobs_compare.py``
both score the three recipes here: mean MSE, MAD and Band MAD (``greenless.evaluate.metrics.band_mad``) and
the same per image, so a mean carried by one picture shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from greenless.evaluate.metrics import band_mad
from greenless.matter import Matter

#: The recipes scored: (job name, ``Matter`` arguments).
JOBS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("stream", {"stream": True}),
    ("photo", {}),
    ("photo, network alone", {"refine": "none"}),
)
#: A labelled picture: (name, HxWx3 uint8 image, HxW float alpha in [0, 1]).
Labelled = tuple[str, np.ndarray, np.ndarray]


def score_job(weights: Path, job: dict[str, Any], images: Sequence[Labelled]) -> dict[str, dict[str, float]]:
    """Per picture, MSE, MAD and Band MAD of the matte ``Matter(weights, **job)`` gives (``.onnx`` files by the
    onnx engine, others by torch)."""
    engine = "onnx" if weights.suffix == ".onnx" else "torch"
    matter = Matter(weights=weights, engine=engine, **job)
    out = {}
    for name, rgb, truth in images:
        pred = matter.matte(rgb)
        out[name] = {"mse": float(np.mean((pred - truth) ** 2)), "mad": float(np.mean(np.abs(pred - truth))),
                     "band": band_mad(pred, truth)}
    return out


def score_jobs(weights: Path, images: Sequence[Labelled], stream_ref: int | None = None, photo_ref: int | None = None,
               steps: Callable[[Iterable[Any]], Iterable[Any]] = iter) -> dict[str, dict[str, Any]]:
    """Each job of ``JOBS`` on ``images``: ``{job: {"mean": {mse, mad, band}, "per_image": {name: {...}}}}``.
    ``stream_ref`` and ``photo_ref`` replace the card's reference sizes (a training run's card has no
    ``photo_ref_size`` yet: shipping adds it); ``steps`` wraps the loop over the jobs (a progress display)."""
    result: dict[str, dict[str, Any]] = {}
    for job, kwargs in steps(JOBS):
        ref = stream_ref if kwargs.get("stream") else photo_ref
        per = score_job(weights, {**kwargs, "ref_size": ref} if ref else kwargs, images)
        mean = {k: float(np.mean([scores[k] for scores in per.values()])) for k in ("mse", "mad", "band")}
        result[job] = {"mean": mean, "per_image": per}
    return result
