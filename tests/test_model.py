"""The network: output shapes per mode, encoders, the official checkpoint layout, variants."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from greenless.model import build_model
from greenless.model.checkpoint import official_to_ours

TSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / "modnet_official_state_dict.tsv"


@pytest.mark.parametrize("encoder", ["mobilenetv2", "efficientnet-lite0"])
def test_outputs_in_training_and_inference(encoder: str) -> None:
    model = build_model({"encoder": encoder}).train()
    semantic, detail, matte = model(torch.randn(2, 3, 64, 96))
    assert semantic.shape == (2, 1, 4, 6)  # 1/16
    assert detail.shape == matte.shape == (2, 1, 64, 96)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 1, 64, 96)
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0


def test_mobilenetv2_matches_official_layout_exactly() -> None:
    rows = [line.rstrip("\n").split("\t") for line in TSV.read_text().splitlines() if not line.startswith("#")]
    official = {key: eval(shape) for key, shape, _ in rows}  # shapes are tuple literals like (32, 3, 3, 3)
    ours = build_model().state_dict()
    mapped = official_to_ours({k: torch.zeros(s) for k, s in official.items()})
    assert set(mapped) == set(ours)
    for key, tensor in mapped.items():
        assert tuple(tensor.shape) == tuple(ours[key].shape), key
    assert sum(p.numel() for p in build_model().parameters()) == 6_487_075  # as the TSV header states


def test_efficientnet_loads_imagenet_weights() -> None:
    model = build_model({"encoder": "efficientnet-lite0"})
    before = model.backbone._conv_stem.weight.clone()
    assert model.backbone.load_imagenet()
    assert not torch.equal(before, model.backbone._conv_stem.weight)
    # ImageNet features respond to an image far more than random init would to its own noise floor
    assert float(model.backbone._bn1.running_var.mean()) != 1.0


def test_previous_alpha_variant_takes_four_channels() -> None:
    model = build_model({"encoder": "efficientnet-lite0", "in_channels": 4})
    assert model.backbone.load_imagenet()
    assert torch.count_nonzero(model.backbone._conv_stem.weight[:, 3]) == 0
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 4, 64, 64)).shape == (1, 1, 64, 64)


def test_easpp_option_changes_the_semantic_branch() -> None:
    plain = build_model({"encoder": "mobilenetv2"})
    easpp = build_model({"encoder": "mobilenetv2", "easpp": True})
    assert any(k.startswith("lr_branch.easpp.") for k in easpp.state_dict())
    assert not any(k.startswith("lr_branch.easpp.") for k in plain.state_dict())
    easpp.train()
    semantic, _, matte = easpp(torch.randn(2, 3, 64, 64))
    assert semantic.shape == (2, 1, 4, 4) and matte.shape == (2, 1, 64, 64)
