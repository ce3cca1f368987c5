"""The one interface every encoder offers to MODNet."""

from __future__ import annotations

import abc

import torch
from torch import nn


class Encoder(nn.Module, abc.ABC):
    """An image encoder returning five feature maps at strides 2, 4, 8, 16 and 32.

    ``channels`` lists their widths in that order; MODNet uses the first two for the detail branch
    and the last for the semantic branch.
    """

    channels: tuple[int, int, int, int, int]

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the five feature maps, finest first."""

    def load_imagenet(self) -> bool:
        """Load ImageNet-pretrained weights when an offline source exists; return whether it did."""
        return False
