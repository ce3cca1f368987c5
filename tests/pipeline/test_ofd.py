"""OFD: a one-frame spike is removed, a real change is kept, streaming equals offline, edges pass through."""

from __future__ import annotations

import numpy as np

from greenless.pipeline.video import OneFrameDelay, apply_ofd, ofd_step


def _seq(values: list[float], shape: tuple[int, int] = (4, 5)) -> list[np.ndarray]:
    return [np.full(shape, v, np.float32) for v in values]


def test_one_frame_spike_is_replaced_by_the_neighbours_mean() -> None:
    out = apply_ofd(_seq([0.2, 0.2, 0.9, 0.24, 0.24]), tol=0.1)
    np.testing.assert_allclose(out[2], 0.22, atol=1e-6)  # |0.2-0.24| <= tol, 0.9 differs from both
    for i in (0, 1, 3, 4):
        np.testing.assert_allclose(out[i], [0.2, 0.2, 0.9, 0.24, 0.24][i], atol=1e-6)


def test_real_step_change_is_kept() -> None:
    values = [0.0, 0.0, 1.0, 1.0, 1.0]
    out = apply_ofd(_seq(values), tol=0.1)
    for got, want in zip(out, values):
        np.testing.assert_allclose(got, want)


def test_small_jitter_within_tolerance_is_kept() -> None:
    values = [0.5, 0.55, 0.5]
    out = apply_ofd(_seq(values), tol=0.1)
    np.testing.assert_allclose(out[1], 0.55)


def test_filter_is_per_pixel() -> None:
    prev, cur, nxt = np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32)
    cur[0, 0] = 1.0  # spike at one pixel only
    cur[1, 1] = 1.0
    nxt[1, 1] = 1.0  # ... while this pixel really changes
    out = ofd_step(prev, cur, nxt, tol=0.1)
    assert out[0, 0] == 0.0 and out[1, 1] == 1.0 and out[0, 1] == 0.0


def test_streaming_keeps_order_items_and_one_frame_delay() -> None:
    alphas = _seq([0.1, 0.8, 0.1, 0.1])
    ofd = OneFrameDelay(tol=0.1)
    assert ofd.push(alphas[0], "f0") == []  # one frame of delay
    first = ofd.push(alphas[1], "f1")
    assert [item for _, item in first] == ["f0"]
    second = ofd.push(alphas[2], "f2")
    assert [item for _, item in second] == ["f1"]
    np.testing.assert_allclose(second[0][0], 0.1)  # the spike at f1 is gone
    rest = ofd.push(alphas[3], "f3") + ofd.flush()
    assert [item for _, item in rest] == ["f2", "f3"]


def test_filter_uses_raw_previous_frame_and_edges_pass() -> None:
    out = apply_ofd(_seq([0.9, 0.1, 0.9]), tol=0.1)
    np.testing.assert_allclose(out[0], 0.9)
    np.testing.assert_allclose(out[1], 0.9)
    np.testing.assert_allclose(out[2], 0.9)
    assert apply_ofd([]) == []
    assert len(apply_ofd(_seq([0.3]))) == 1
