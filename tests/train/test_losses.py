"""MODNet losses against small cases computed by hand."""

from __future__ import annotations

import pytest
import torch

from greenless.train.losses import LOSS_PRESETS, LossSpec, composition_loss, detail_loss, loss_spec, modnet_loss, semantic_loss


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)[None, None]


def test_semantic_loss_is_mean_squared_error() -> None:
    # (0.5-1)^2 + (0-0)^2 + (1-0)^2 + (0.25-0.25)^2 = 0.25 + 1 -> mean 1.25/4
    assert semantic_loss(t([[0.5, 0.0], [1.0, 0.25]]), t([[1.0, 0.0], [0.0, 0.25]])).item() == pytest.approx(0.3125)


def test_detail_loss_counts_only_band_pixels() -> None:
    pred = t([[0.2, 0.9], [0.0, 1.0]])
    alpha = t([[0.0, 0.5], [1.0, 1.0]])
    band = t([[1.0, 1.0], [0.0, 0.0]])  # the big error at (1,0) lies outside the band
    assert detail_loss(pred, alpha, band).item() == pytest.approx((0.2 + 0.4) / 2)
    assert detail_loss(pred, alpha, torch.zeros_like(band)).item() == 0.0


def test_composition_loss_by_hand_and_skipped_without_foreground() -> None:
    alpha = t([[1.0, 0.0]])
    pred = t([[0.5, 0.0]])
    fg = torch.ones(1, 3, 1, 2)
    bg = torch.zeros(1, 3, 1, 2)
    # predicted composite: [0.5, 0]; true composite: [1, 0] -> mean |diff| over 6 values = 1.5/6
    assert composition_loss(pred, fg, bg, torch.tensor([1.0]), alpha).item() == pytest.approx(0.25)
    assert composition_loss(pred, fg, bg, torch.tensor([0.0]), alpha).item() == 0.0


def test_total_uses_the_configured_weights() -> None:
    alpha = t([[0.0, 1.0], [0.5, 1.0]])
    batch = {"alpha": alpha, "semantic": t([[0.75]]), "band": t([[0.0, 0.0], [1.0, 0.0]]),
             "fg": torch.zeros(1, 3, 2, 2), "bg": torch.zeros(1, 3, 2, 2), "has_comp": torch.tensor([0.0])}
    outputs = (t([[0.5]]), t([[0.0, 1.0], [0.0, 1.0]]), t([[0.0, 1.0], [1.0, 1.0]]))
    total, parts = modnet_loss(outputs, batch, LossSpec(semantic=2, detail=10, matte=3))
    assert parts["semantic"] == pytest.approx(0.0625)  # (0.5-0.75)^2
    assert parts["detail"] == pytest.approx(0.5)  # one band pixel off by 0.5
    assert parts["matte"] == pytest.approx(0.125)  # L1 0.5/4, no composition term
    assert total.item() == pytest.approx(2 * 0.0625 + 10 * 0.5 + 3 * 0.125)


def _case() -> tuple[tuple, dict]:
    """One 2x2 sample with one band pixel (the network's input image 0.5 grey, no known fg/bg)."""
    alpha = t([[0.0, 1.0], [0.5, 1.0]])
    batch = {"alpha": alpha, "semantic": t([[0.75]]), "band": t([[0.0, 0.0], [1.0, 0.0]]),
             "image": torch.full((1, 4, 2, 2), 0.5), "fg": torch.zeros(1, 3, 2, 2), "bg": torch.zeros(1, 3, 2, 2),
             "has_comp": torch.tensor([0.0])}
    outputs = (t([[0.5]]), t([[0.0, 1.0], [0.0, 1.0]]), t([[0.0, 1.0], [1.0, 1.0]]))
    return outputs, batch


def test_each_loss_preset_by_hand() -> None:
    """greenless: the detail error over the band's one pixel; paper: over all four; official: semantic x10,
    detail over all pixels, and the matte with the composition on the input image plus 4x the in-band terms."""
    outputs, batch = _case()
    total, parts = modnet_loss(outputs, batch, LOSS_PRESETS["greenless"])
    assert parts["detail"] == pytest.approx(0.5) and total.item() == pytest.approx(0.0625 + 10 * 0.5 + 0.125)
    total, parts = modnet_loss(outputs, batch, LOSS_PRESETS["paper"])
    assert parts["detail"] == pytest.approx(0.5 / 4) and total.item() == pytest.approx(0.0625 + 10 * 0.125 + 0.125)
    total, parts = modnet_loss(outputs, batch, LOSS_PRESETS["official"])
    # matte: L1 0.5/4 + composition |0.5 * 0.5| on 3 of 12 values + 4 x (in-band L1 0.125 + composition 0.0625)
    assert parts["matte"] == pytest.approx(0.125 + 0.0625 + 4 * (0.125 + 0.0625))
    assert total.item() == pytest.approx(10 * 0.0625 + 10 * 0.125 + 0.9375)


def test_loss_overrides_change_one_field_of_the_preset() -> None:
    spec = loss_spec("paper", detail_norm="band", semantic_weight=None)
    assert spec.detail_norm == "band" and spec.semantic == 1.0 and spec.name == "paper"
    outputs, batch = _case()
    assert modnet_loss(outputs, batch, spec)[1] == modnet_loss(outputs, batch, LOSS_PRESETS["greenless"])[1]
    assert loss_spec("official", boundary_weight=0.0).boundary_weight == 0.0
