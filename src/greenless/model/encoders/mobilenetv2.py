"""MobileNetV2 encoder with the module names of the official MODNet checkpoints.

Attribute paths (``model.features.N.conv.M``) mirror the official release so its state dicts load
without renaming; no ImageNet weights are reachable offline for it, so it starts from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

from greenless.model.encoders.base import Encoder

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# Index of the last feature block of each stride (2, 4, 8, 16, 32) in ``features``.
_STAGE_ENDS = (1, 3, 6, 13, 18)


def _conv_bn(inp: int, oup: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(inplace=True)
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion (skipped when t=1), depthwise 3x3, linear 1x1 projection."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class _MobileNetV2Features(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        features: list[nn.Module] = [_conv_bn(in_channels, 32, 3, 2)]
        inp = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        features.append(_conv_bn(inp, 1280, 1, 1))
        self.features = nn.Sequential(*features)


class MobileNetV2Encoder(Encoder):
    """The paper's encoder: widths 16, 24, 32, 96, 1280 at strides 2 to 32."""

    channels = (16, 24, 32, 96, 1280)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.model = _MobileNetV2Features(in_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        start = 0
        for end in _STAGE_ENDS:
            for idx in range(start, end + 1):
                x = self.model.features[idx](x)
            outs.append(x)
            start = end + 1
        return outs
