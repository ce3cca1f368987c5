"""Each job's figures (greenless.evaluate.jobs, what a shipped card records) are the mattes users get."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenless.evaluate.jobs import score_jobs
from greenless.matter import Matter
from greenless.media.images import load_rgb, read_alpha
from greenless.registry import packaged


def test_each_job_is_scored_on_the_matte_that_job_gives(data: Path) -> None:
    stem = "p_bac3c1ff"
    rgb = load_rgb(data / "portraits" / "image" / f"{stem}.jpg")
    truth = read_alpha(data / "portraits" / "alpha" / f"{stem}.png")
    scores = score_jobs(packaged("modnet").path("onnx"), [(stem, rgb, truth)])
    assert list(scores) == ["stream", "photo", "photo, network alone"]
    for job, matter in (("stream", Matter(stream=True)), ("photo", Matter()), ("photo, network alone",
                                                                                Matter(refine="none"))):
        mad = float(np.mean(np.abs(matter.matte(rgb) - truth)))
        assert scores[job]["per_image"][stem]["mad"] == pytest.approx(mad, abs=1e-6), job
        assert scores[job]["mean"]["mad"] == scores[job]["per_image"][stem]["mad"]
    # sizes given for a training run's card (no photo size) replace the card's
    at_256 = score_jobs(packaged("modnet").path("onnx"), [(stem, rgb, truth)], stream_ref=256, photo_ref=256)
    plain_256 = float(np.mean(np.abs(Matter(refine="none", ref_size=256).matte(rgb) - truth)))
    assert at_256["photo, network alone"]["mean"]["mad"] == pytest.approx(plain_256, abs=1e-6)
