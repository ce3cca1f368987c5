"""MODNet: a low-resolution semantic branch, a high-resolution detail branch and a fusion branch.

Module names follow the official release (``lr_branch``, ``hr_branch``, ``f_branch``) so that its
checkpoints load after stripping the ``module.`` prefix (see ``checkpoint.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from greenless.model.encoders import Encoder, build_encoder
from greenless.model.layers import EASPP, Conv2dIBNormRelu, SEBlock, make_norm


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; saved next to its weights."""

    encoder: str = "mobilenetv2"
    hr_channels: int = 32
    in_channels: int = 3  # 4 for the previous-frame-alpha variant
    easpp: bool = False
    norm: str = "ibn"  # "ibn" (paper) or "bn" (folds into the convolutions at export)
    separable: bool = False  # depthwise-separable k x k convolutions in the three branches
    semantic_scale: float = 1.0  # the encoder and semantic branch see the image scaled by this
    fusion_channels: int = 0  # channels carried up to full resolution in the fusion branch; 0: hr_channels
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _up(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class LRBranch(nn.Module):
    """Semantic estimation: SE attention (and optional e-ASPP) on the 1/32 feature, prediction at 1/8."""

    def __init__(self, channels: tuple[int, ...], easpp: bool, conv: Any = Conv2dIBNormRelu) -> None:
        super().__init__()
        self.se_block = SEBlock(channels[4], reduction=4)
        self.easpp = EASPP(channels[4], channels[4], reduction=8) if easpp else None
        self.conv_lr16x = conv(channels[4], channels[3], 5, padding=2)
        self.conv_lr8x = conv(channels[3], channels[2], 5, padding=2)
        self.conv_lr = Conv2dIBNormRelu(channels[2], 1, 3, stride=2, padding=1, with_ibn=False, with_relu=False)

    def forward(self, enc32x: torch.Tensor, with_semantic: bool,
                size8x: tuple[Any, Any] | None = None) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``size8x`` (the image's 1/8 size) is given when the encoder saw a scaled-down image."""
        x = self.se_block(enc32x)
        if self.easpp is not None:
            x = self.easpp(x)
        lr16x = self.conv_lr16x(_up(x, 2))
        if size8x is None:
            lr8x = self.conv_lr8x(_up(lr16x, 2))
        else:
            lr8x = self.conv_lr8x(F.interpolate(lr16x, size=size8x, mode="bilinear", align_corners=False))
        semantic = torch.sigmoid(self.conv_lr(lr8x)) if with_semantic else None
        return semantic, lr8x


class HRBranch(nn.Module):
    """Detail prediction at 1/2 and 1/4 from the image, low-level features and the semantic features."""

    def __init__(self, hr: int, channels: tuple[int, ...], img_ch: int, conv: Any = Conv2dIBNormRelu) -> None:
        super().__init__()
        self.tohr_enc2x = conv(channels[0], hr, 1)
        self.conv_enc2x = conv(hr + img_ch, hr, 3, stride=2, padding=1)
        self.tohr_enc4x = conv(channels[1], hr, 1)
        self.conv_enc4x = conv(2 * hr, 2 * hr, 3, padding=1)
        self.conv_hr4x = nn.Sequential(
            conv(2 * hr + channels[2] + img_ch, 2 * hr, 3, padding=1),
            conv(2 * hr, 2 * hr, 3, padding=1),
            conv(2 * hr, hr, 3, padding=1),
        )
        self.conv_hr2x = nn.Sequential(
            conv(2 * hr, 2 * hr, 3, padding=1),
            conv(2 * hr, hr, 3, padding=1),
            conv(hr, hr, 3, padding=1),
            conv(hr, hr, 3, padding=1),
        )
        self.conv_hr = nn.Sequential(
            conv(hr + img_ch, hr, 3, padding=1),
            conv(hr, 1, 1, with_ibn=False, with_relu=False),
        )

    def forward(self, img: torch.Tensor, enc2x: torch.Tensor, enc4x: torch.Tensor, lr8x: torch.Tensor,
                with_detail: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        img2x = _up(img, 0.5)
        img4x = _up(img, 0.25)
        enc2x = self.tohr_enc2x(enc2x)
        hr4x = self.conv_enc2x(torch.cat((img2x, enc2x), dim=1))
        hr4x = self.conv_enc4x(torch.cat((hr4x, self.tohr_enc4x(enc4x)), dim=1))
        hr4x = self.conv_hr4x(torch.cat((hr4x, _up(lr8x, 2), img4x), dim=1))
        hr2x = self.conv_hr2x(torch.cat((_up(hr4x, 2), enc2x), dim=1))
        detail = None
        if with_detail:
            detail = torch.sigmoid(self.conv_hr(torch.cat((_up(hr2x, 2), img), dim=1)))
        return detail, hr2x


class FusionBranch(nn.Module):
    """Combines the semantic and detail features into the full-resolution matte."""

    def __init__(self, hr: int, channels: tuple[int, ...], img_ch: int, conv: Any = Conv2dIBNormRelu,
                 fusion_channels: int = 0, norm: str = "ibn") -> None:
        super().__init__()
        self.conv_lr4x = conv(channels[2], hr, 5, padding=2)
        self.fast = bool(fusion_channels)
        if self.fast:
            # Real-time variant: the feature half of the last convolution runs at 1/2 resolution and only
            # ``fusion_channels // 2`` channels are upsampled; at full resolution a small convolution
            # of the image is added to them. Full-resolution memory traffic dominates on CPUs.
            mid = fusion_channels // 2
            self.conv_f2x = conv(2 * hr, fusion_channels, 3, padding=1)
            self.conv_f_feat = conv(fusion_channels, mid, 3, padding=1, with_ibn=False, with_relu=False)
            self.conv_f_img = nn.Conv2d(img_ch, mid, 3, padding=1, bias=False)
            self.conv_f = nn.Sequential(make_norm(norm, mid), nn.ReLU(inplace=True), nn.Conv2d(mid, 1, 1))
        else:
            self.conv_f2x = conv(2 * hr, hr, 3, padding=1)
            self.conv_f = nn.Sequential(
                conv(hr + img_ch, hr // 2, 3, padding=1),
                conv(hr // 2, 1, 1, with_ibn=False, with_relu=False),
            )

    def forward(self, img: torch.Tensor, lr8x: torch.Tensor, hr2x: torch.Tensor) -> torch.Tensor:
        lr4x = self.conv_lr4x(_up(lr8x, 2))
        f2x = self.conv_f2x(torch.cat((_up(lr4x, 2), hr2x), dim=1))
        if self.fast:
            return torch.sigmoid(self.conv_f(_up(self.conv_f_feat(f2x), 2) + self.conv_f_img(img)))
        return torch.sigmoid(self.conv_f(torch.cat((_up(f2x, 2), img), dim=1)))


class MODNet(nn.Module):
    """The trimap-free matting network; input NCHW in [-1, 1] with H and W multiples of 32.

    ``forward`` returns ``(semantic, detail, matte)`` while training (or with ``all_outputs=True``)
    and the matte alone in inference, which is what exports see.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.backbone: Encoder = build_encoder(self.config.encoder, self.config.in_channels)
        ch = self.backbone.channels
        hr, img_ch = self.config.hr_channels, self.config.in_channels
        conv = partial(Conv2dIBNormRelu, norm=self.config.norm, separable=self.config.separable)
        self.lr_branch = LRBranch(ch, self.config.easpp, conv)
        self.hr_branch = HRBranch(hr, ch, img_ch, conv)
        self.f_branch = FusionBranch(hr, ch, img_ch, conv, self.config.fusion_channels, self.config.norm)

    def forward(self, img: torch.Tensor, all_outputs: bool | None = None):
        want_all = self.training if all_outputs is None else all_outputs
        scale = self.config.semantic_scale
        if scale == 1.0:
            enc2x, enc4x, _, _, enc32x = self.backbone(img)
            semantic, lr8x = self.lr_branch(enc32x, want_all)
        else:
            # Lower-resolution semantics: the encoder sees a smaller image; its low-level features are
            # brought back to the sizes the detail branch expects.
            h, w = img.shape[2], img.shape[3]
            small = F.interpolate(img, scale_factor=scale, mode="bilinear", align_corners=False)
            enc2x, enc4x, _, _, enc32x = self.backbone(small)
            enc2x = F.interpolate(enc2x, size=(h // 2, w // 2), mode="bilinear", align_corners=False)
            enc4x = F.interpolate(enc4x, size=(h // 4, w // 4), mode="bilinear", align_corners=False)
            semantic, lr8x = self.lr_branch(enc32x, want_all, size8x=(h // 8, w // 8))
        detail, hr2x = self.hr_branch(img, enc2x, enc4x, lr8x, want_all)
        matte = self.f_branch(img, lr8x, hr2x)
        if want_all:
            return semantic, detail, matte
        return matte


def build_model(config: ModelConfig | dict[str, Any] | None = None) -> MODNet:
    """Make a MODNet from a config object or its dict form (as stored in a weights card)."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    return MODNet(config)
