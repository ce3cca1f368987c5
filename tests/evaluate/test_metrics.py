"""Matting metrics on small cases computed by hand, and Grad/Conn against their published definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from greenless.errors import GreenlessError
from greenless.evaluate import metrics as M

PRED = np.array([[0.0, 0.5], [1.0, 1.0]])
GT = np.array([[0.0, 1.0], [1.0, 0.0]])


def test_mse_mad_sad_by_hand() -> None:
    """|diff| = [0, .5, 0, 1]: MSE = (.25 + 1) / 4, MAD = 1.5 / 4, SAD = 1.5 / 1000."""
    assert M.mse(PRED, GT) == pytest.approx(0.3125)
    assert M.mad(PRED, GT) == pytest.approx(0.375)
    assert M.sad(PRED, GT) == pytest.approx(0.0015)


def test_mask_restricts_the_region() -> None:
    """Only the masked pixels count: here the two right-hand pixels with errors .5 and 1."""
    mask = np.array([[False, True], [False, True]])
    assert M.mad(PRED, GT, mask) == pytest.approx(0.75)
    assert M.mse(PRED, GT, mask) == pytest.approx(0.625)
    assert M.sad(PRED, GT, mask) == pytest.approx(0.0015)


def test_integer_alphas_are_scaled() -> None:
    """uint8 255 and uint16 65535 both mean alpha 1."""
    assert M.mad(np.full((2, 2), 255, np.uint8), np.ones((2, 2))) == 0.0
    assert M.mad(np.full((2, 2), 65535, np.uint16), np.ones((2, 2))) == 0.0
    assert M.mad(np.full((2, 2), 51, np.uint8), np.zeros((2, 2))) == pytest.approx(0.2)


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(GreenlessError, match="3x2 but ground truth is 2x2"):
        M.mse(np.zeros((2, 3)), np.zeros((2, 2)))


def test_gradient_kernel_follows_dim_convention() -> None:
    """DIM evaluation: half size ceil(s*sqrt(-2 ln(sqrt(2 pi) s 0.01))) = 4 for s = 1.4, 2-D kernel of unit L2 norm."""
    g, dg = M.gaussian_derivative_kernels(1.4)
    assert len(g) == len(dg) == 9
    assert np.linalg.norm(np.outer(g, dg)) == pytest.approx(1.0)
    assert np.allclose(dg, -dg[::-1]) and dg[0] < 0 < dg[-1]  # antisymmetric, positive slope response
    assert np.allclose(g, g[::-1])


def test_grad_is_zero_for_perfect_and_constant_offset() -> None:
    """Gradients ignore a constant offset: Grad is 0 where MAD is 0.2."""
    rng = np.random.default_rng(1)
    gt = rng.uniform(0.2, 0.6, (20, 24))
    assert M.grad(gt, gt) == 0.0
    flat_gt, flat_pred = np.full((16, 16), 0.3), np.full((16, 16), 0.5)
    assert M.grad(flat_pred, flat_gt) == pytest.approx(0.0, abs=1e-12)
    assert M.mad(flat_pred, flat_gt) == pytest.approx(0.2)


def test_grad_on_a_ramp_matches_the_closed_form() -> None:
    """For alpha = a*x the x-gradient away from the border is a * sum(g) * sum(x * dg), the y-gradient 0.

    With gt = 0, Grad over the interior mask is n_interior * (a * K)^2 / 1000.
    """
    a = 0.01
    alpha = np.tile(np.arange(40) * a, (30, 1))
    g, dg = M.gaussian_derivative_kernels(1.4)
    x = np.arange(-4, 5)
    k = g.sum() * (x * dg).sum()
    mag = M.gradient_magnitude(alpha)
    interior = np.zeros(alpha.shape, bool)
    interior[4:-4, 4:-4] = True
    assert np.allclose(mag[interior], a * k)
    assert M.grad(alpha, np.zeros_like(alpha), interior) == pytest.approx(interior.sum() * (a * k) ** 2 / 1000)


def test_gradient_magnitude_equals_dim_convolution() -> None:
    """Reference: the DIM code convolves with the 2-D kernel G(y) * dG/dx(x) (borders replicated); OpenCV must agree."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    alpha = ndimage.gaussian_filter(rng.uniform(0, 1, (37, 41)), 2.0)
    g, dg = M.gaussian_derivative_kernels(1.4)
    hx = np.outer(g, -dg)  # G(y) * dG/dx(x), the unflipped derivative kernel, applied as a true convolution
    gx = ndimage.convolve(alpha, hx, mode="nearest")
    gy = ndimage.convolve(alpha, hx.T, mode="nearest")
    assert np.allclose(M.gradient_magnitude(alpha), np.hypot(gx, gy), atol=1e-12)


def test_grad_grows_with_blur_of_an_edge() -> None:
    """A softened step edge loses gradient energy: more blur, larger Grad."""
    from scipy import ndimage

    gt = np.zeros((32, 32))
    gt[:, 16:] = 1.0
    light, heavy = ndimage.gaussian_filter(gt, 1.0), ndimage.gaussian_filter(gt, 4.0)
    assert 0 < M.grad(light, gt) < M.grad(heavy, gt)


def test_conn_perfect_prediction_is_zero() -> None:
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 1, (15, 15))
    assert M.conn(gt, gt) == 0.0


def test_connection_levels_and_conn_by_hand() -> None:
    """A 1x5 strip, gt all 1, pred [1, 1, 1, .35, 1].

    Up to threshold .3 all five pixels are one component; at .4 pixel 3 drops out and the largest
    component is {0, 1, 2}, so pixels 3 and 4 get level .3 and pixels 0-2 level 1.
    phi: pixel 3 pred d = .05 < .15 -> 1, gt d = .7 -> .3 (error .7); pixel 4 d = .7 for both (error 0).
    Conn = .7 / 1000, more than SAD = .65 / 1000: phi jumps by theta when d crosses .15.
    """
    gt = np.ones((1, 5))
    pred = np.array([[1.0, 1.0, 1.0, 0.35, 1.0]])
    assert np.allclose(M.connection_levels(pred, gt), [[1, 1, 1, 0.3, 0.3]])
    assert M.conn(pred, gt) == pytest.approx(0.7 / 1000)
    assert M.sad(pred, gt) == pytest.approx(0.65 / 1000)


def test_conn_ignores_faint_haze_but_penalises_a_disconnected_blob() -> None:
    """Background pixels have level 0. Haze of .1 there gives d = .1 < .15 -> phi 1 = phi(gt): Conn 0, SAD not.

    A separate solid blob (alpha 1 where gt is 0) is outside the source region: d = 1 -> phi 0 vs 1,
    so each blob pixel costs 1, as in SAD; a blob at .5 costs .5 per pixel.
    """
    gt = np.zeros((12, 12))
    gt[2:10, 1:6] = 1.0
    haze = gt + 0.1 * (gt == 0)
    assert M.conn(haze, gt) == 0.0
    assert M.sad(haze, gt) == pytest.approx(0.1 * (gt == 0).sum() / 1000)
    blob = gt.copy()
    blob[4:6, 8:10] = 1.0
    assert M.conn(blob, gt) == pytest.approx(4 / 1000)
    blob[4:6, 8:10] = 0.5
    assert M.conn(blob, gt) == pytest.approx(4 * 0.5 / 1000)


def _conn_by_definition(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> float:
    """Straight transcription of Rhemann et al. 2009 / DIM with scipy.ndimage.label (4-connected)."""
    from scipy import ndimage

    levels = np.full(gt.shape, -1.0)
    n = round(1 / step)
    for i in range(1, n + 1):
        t, prev = round(i * step, 10), round((i - 1) * step, 10)
        labels, count = ndimage.label((pred >= t) & (gt >= t))  # default structure = 4-connectivity
        omega = np.zeros(gt.shape, bool)
        if count:
            sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
            omega = labels == 1 + int(np.argmax(sizes))
        levels[(levels == -1) & ~omega] = prev
    levels[levels == -1] = 1.0
    dp, dg = pred - levels, gt - levels
    phi_p = 1 - dp * (dp >= 0.15)
    phi_g = 1 - dg * (dg >= 0.15)
    return float(np.abs(phi_p - phi_g).sum() / 1000)


def test_conn_matches_the_definition_on_random_mattes() -> None:
    """Smooth random mattes (several components per threshold) agree with the transcription above."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    for _ in range(5):
        gt = np.clip(ndimage.gaussian_filter(rng.uniform(-1, 2, (40, 48)), 3) , 0, 1)
        pred = np.clip(gt + ndimage.gaussian_filter(rng.normal(0, 0.6, gt.shape), 2), 0, 1)
        expected = _conn_by_definition(pred, gt)
        assert expected > 0
        assert M.conn(pred, gt) == pytest.approx(expected)


def test_thresholds_are_exact_decimals() -> None:
    """153/255 == 0.6 must pass the 0.6 threshold (0.1 * 6 would be 0.6000000000000001)."""
    assert M._thresholds(0.1)[6] == 0.6
    assert np.array_equal(M.connection_levels(np.full((2, 2), 153 / 255), np.ones((2, 2))), np.full((2, 2), 0.6))
    assert math.isclose(float(M._thresholds(0.1)[-1]), 1.0)


def test_all_metrics_and_mean() -> None:
    row = M.all_metrics(PRED, GT)
    assert set(row) == set(M.METRIC_NAMES)
    mean = M.mean_metrics([row, {k: 0.0 for k in row}])
    assert mean["mad"] == pytest.approx(0.375 / 2)
