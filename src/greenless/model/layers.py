"""Building blocks shared by the MODNet branches: IBNorm, Conv-IBNorm-ReLU, SE attention, e-ASPP."""

from __future__ import annotations

import torch
from torch import nn


class IBNorm(nn.Module):
    """BatchNorm on the first half of the channels, InstanceNorm on the rest (MODNet's normalisation).

    The BatchNorm half keeps dataset-level statistics; the InstanceNorm half normalises each image,
    which helps with lighting and colour shifts between photos.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bnorm_channels = channels // 2
        self.inorm_channels = channels - self.bnorm_channels
        self.bnorm = nn.BatchNorm2d(self.bnorm_channels, affine=True)
        self.inorm = nn.InstanceNorm2d(self.inorm_channels, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn_x = self.bnorm(x[:, : self.bnorm_channels].contiguous())
        in_x = self.inorm(x[:, self.bnorm_channels :].contiguous())
        return torch.cat((bn_x, in_x), 1)


class Conv2dIBNormRelu(nn.Module):
    """Convolution, optional IBNorm, optional ReLU; attribute names follow the official checkpoint."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        with_ibn: bool = True,
        with_relu: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, groups=groups, bias=bias)
        ]
        if with_ibn:
            layers.append(IBNorm(out_channels))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SEBlock(nn.Module):
    """Squeeze-and-excitation channel attention on the lowest-resolution encoder feature."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.pool(x).flatten(1)
        w = self.fc(w)
        return x * w[:, :, None, None]


class EASPP(nn.Module):
    """Efficient ASPP (MODNet v2 / AAAI 2022 notes): depthwise dilated convolutions per rate.

    Each rate runs a 1x1 channel reduction, a depthwise 3x3 dilated convolution and a 1x1 expansion;
    a global-pooling branch adds image-level context. Much cheaper than classic ASPP on 1280 channels.
    """

    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...] = (1, 2, 4, 8),
                 reduction: int = 4) -> None:
        super().__init__()
        mid = max(in_channels // reduction, 16)
        self.branches = nn.ModuleList()
        for rate in rates:
            self.branches.append(nn.Sequential(
                Conv2dIBNormRelu(in_channels, mid, 1),
                Conv2dIBNormRelu(mid, mid, 3, padding=rate, dilation=rate, groups=mid),
                Conv2dIBNormRelu(mid, mid, 1),
            ))
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, mid, 1), nn.ReLU(inplace=True))
        self.project = Conv2dIBNormRelu(mid * (len(rates) + 1), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.image_pool(x).expand(-1, -1, x.shape[2], x.shape[3])
        return self.project(torch.cat(outs + [pooled], dim=1))
