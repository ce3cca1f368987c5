"""Pluggable encoders: each returns the 1/2, 1/4, 1/8, 1/16 and 1/32 features and lists their widths."""

from __future__ import annotations

from torch import nn

from greenless.model.encoders.base import Encoder
from greenless.model.encoders.efficientnet_lite import EfficientNetLite0Encoder
from greenless.model.encoders.mobilenetv2 import MobileNetV2Encoder

ENCODERS: dict[str, type[Encoder]] = {
    "mobilenetv2": MobileNetV2Encoder,
    "efficientnet-lite0": EfficientNetLite0Encoder,
}


def build_encoder(name: str, in_channels: int = 3) -> Encoder:
    """Make the encoder called ``name``; unknown names raise ValueError listing the known ones."""
    try:
        cls = ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}") from None
    return cls(in_channels=in_channels)


__all__ = ["Encoder", "ENCODERS", "build_encoder", "MobileNetV2Encoder", "EfficientNetLite0Encoder", "nn"]
