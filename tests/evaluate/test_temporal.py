"""Temporal metrics on tiny sequences worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from greenless.evaluate.temporal import dtssd, flicker


def test_dtssd_zero_when_prediction_moves_like_truth() -> None:
    truth = [np.full((2, 2), v) for v in (0.0, 0.5, 1.0)]
    pred = [t + 0.2 for t in truth]  # constant offset: same temporal derivative
    assert dtssd(pred, truth) == pytest.approx(0.0)


def test_dtssd_by_hand() -> None:
    truth = [np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2))]
    pred = [np.array([[0.0, 0.0]]), np.array([[0.4, 0.0]]), np.array([[0.4, 0.0]])]
    # t=1: diff = [0.4, 0] -> RMS sqrt((0.16 + 0)/2) = 0.28284; t=2: diff 0 -> 0; mean over 2 transitions
    assert dtssd(pred, truth) == pytest.approx(np.sqrt(0.08) / 2)


def test_dtssd_accepts_uint8_and_checks_lengths() -> None:
    pred = [np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8)]
    truth = [np.zeros((2, 2)), np.zeros((2, 2))]
    assert dtssd(pred, truth) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        dtssd(pred, truth[:1])


def test_flicker_counts_only_static_pixels() -> None:
    frames = [np.zeros((1, 3, 3), np.uint8) for _ in range(3)]
    frames[1][0, 2] = 200  # pixel 2 changes between frame 0->1 and 1->2
    alphas = [np.array([[0.0, 0.5, 0.0]]), np.array([[0.2, 0.5, 1.0]]), np.array([[0.2, 0.4, 0.0]])]
    value, static = flicker(alphas, frames, threshold=4)
    # static pixels: (t=1) px0, px1; (t=2) px0, px1 -> |0.2|, 0, 0, |0.1| summed = 0.3 over 4
    assert value == pytest.approx(0.3 / 4)
    assert static == pytest.approx(4 / 6)


def test_flicker_small_noise_counts_as_static() -> None:
    frames = [np.full((2, 2, 3), 100, np.uint8), np.full((2, 2, 3), 103, np.uint8)]
    alphas = [np.zeros((2, 2)), np.ones((2, 2))]
    assert flicker(alphas, frames, threshold=4) == (pytest.approx(1.0), pytest.approx(1.0))
    assert flicker(alphas, frames, threshold=3) == (0.0, 0.0)
