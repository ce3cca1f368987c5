"""The network: output shapes per mode, encoders, the official checkpoint layout, variants."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from greenless.model import build_model
from greenless.model.checkpoint import official_to_ours

TSV = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "modnet_official_state_dict.tsv"


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


REALTIME = {"encoder": "efficientnet-lite0", "norm": "bn", "separable": True, "semantic_scale": 0.5,
            "fusion_channels": 16}


@pytest.mark.parametrize("size", [(64, 96), (288, 512), (96, 160)])
def test_realtime_variant_shapes_at_sizes_the_half_encoder_does_not_divide(size: tuple[int, int]) -> None:
    # 288 / 2 = 144 is not a multiple of 32: the encoder features must still be resized to the right grid.
    model = build_model(REALTIME).train()
    h, w = size
    semantic, detail, matte = model(torch.randn(2, 3, h, w))
    assert semantic.shape == (2, 1, h // 16, w // 16)
    assert detail.shape == matte.shape == (2, 1, h, w)


def test_realtime_variant_has_no_instance_norm_and_fewer_weights() -> None:
    fast, paper = build_model(REALTIME), build_model({"encoder": "efficientnet-lite0"})
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.InstanceNorm2d) for m in paper.modules())
    depthwise = [m for m in fast.hr_branch.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels for m in depthwise)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(fast) < 0.6 * count(paper)


def test_semantic_scale_changes_what_the_encoder_sees() -> None:
    seen: list[tuple[int, ...]] = []
    model = build_model(REALTIME).eval()
    model.backbone.register_forward_hook(lambda mod, args, out: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        model(torch.randn(1, 3, 128, 192))
    assert seen == [(1, 3, 64, 96)]


def test_model_config_round_trips_new_fields_and_reads_old_cards() -> None:
    from greenless.model.modnet import ModelConfig

    cfg = ModelConfig.from_dict(REALTIME)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    old = ModelConfig.from_dict({"encoder": "mobilenetv2", "hr_channels": 32, "in_channels": 3, "easpp": False})
    assert (old.norm, old.separable, old.semantic_scale, old.fusion_channels) == ("ibn", False, 1.0, 0)
