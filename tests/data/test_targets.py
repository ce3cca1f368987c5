"""Supervision targets: the 16x-down blurred semantic map and the transition band."""

from __future__ import annotations

import numpy as np

from greenless.data.targets import semantic_target, transition_band


def test_semantic_target_is_sixteen_times_smaller_and_smooth() -> None:
    alpha = np.zeros((128, 64), np.float32)
    alpha[:, 32:] = 1.0
    target = semantic_target(alpha)
    assert target.shape == (8, 4)
    assert target[:, 0].max() == 0.0 and target[:, 3].min() == 1.0
    assert 0.0 < target[4, 1] < target[4, 2] < 1.0  # the edge is blurred, not a step


def test_transition_band_covers_the_edge_only() -> None:
    alpha = np.zeros((100, 100), np.float32)
    alpha[:, 50:] = 1.0
    band = transition_band(alpha, fraction=0.05)  # kernel radius 5
    assert band[:, 45:55].all() and band[:, 50].all()
    assert not band[:, :40].any() and not band[:, 60:].any()


def test_band_scales_with_image_size() -> None:
    small = np.zeros((200, 200), np.float32)  # kernel radius 4 -> band 8 px wide
    small[:, 100:] = 1
    big = np.zeros((800, 800), np.float32)  # radius 16 -> 32 px
    big[:, 400:] = 1
    assert transition_band(small)[0].sum() == 8
    assert transition_band(big)[0].sum() == 4 * transition_band(small)[0].sum()
