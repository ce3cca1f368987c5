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
    """Convolution, optional normalisation, optional ReLU; attribute names follow the official checkpoint.

    ``norm="ibn"`` is MODNet's IBNorm; ``norm="bn"`` is plain BatchNorm, which an export folds into the
    convolution (no per-image statistics at run time). ``separable=True`` splits a k x k convolution into
    a depthwise k x k and a pointwise 1 x 1 (the real-time variant); 1 x 1 convolutions stay as they are.
    """

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
        norm: str = "ibn",
        separable: bool = False,
    ) -> None:
        super().__init__()
        if separable and kernel_size > 1 and groups == 1:
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                          dilation=dilation, groups=in_channels, bias=False),
                nn.Conv2d(in_channels, out_channels, 1, bias=bias),
            ]
        else:
            layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                dilation=dilation, groups=groups, bias=bias)]
        if with_ibn:
            layers.append(make_norm(norm, out_channels))
        if with_relu:
            layers.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


NORMS = ("ibn", "bn")


def make_norm(norm: str, channels: int) -> nn.Module:
    """The normalisation layer a branch uses: IBNorm (paper) or BatchNorm (foldable at export)."""
    if norm == "ibn":
        return IBNorm(channels)
    if norm == "bn":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {norm!r} (choose from {', '.join(NORMS)})")


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
