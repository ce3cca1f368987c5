"""MODNet's supervised losses: semantic L2, detail L1 in the transition band, fusion L1 + composition.

How the three terms are weighted and normalised is a choice a training config makes explicitly
(``[train] loss``, see :data:`LOSS_PRESETS`), and the card of the weights records it:

- ``greenless`` (the recipe every shipped set was trained with): the paper's weights (semantic 1, detail
  10, matte 1), the detail L1 averaged over the band's pixels only, the matte's composition term on the
  sample's true foreground and background, no extra boundary terms.
- ``paper``: the paper's weights and terms, with the detail L1 averaged over the whole image (pixels
  outside the band count as zero error), so a thin band weighs less than a wide one.
- ``official``: the official trainer's (ZHKKKe/MODNet ``supervised_training_iter``): semantic 10, detail
  10 averaged over the whole image, matte 1 with four times the L1 inside the band added to the L1 over
  the image, and the composition taken on the network's input image (``image * alpha``), again plus four
  times its in-band part.

Any of the six numbers can be set on its own in the config (``semantic_weight``, ``detail_weight``,
``matte_weight``, ``detail_norm``, ``boundary_weight``, ``composition``) on top of the preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

#: How the detail L1 is averaged: over the band's pixels, or over every pixel of the image.
DETAIL_NORMS = ("band", "image")
#: What the composition term composes: the sample's true fg/bg (``fg-bg``, skipped for real photos), or the
#: network's input image times the matte (``image``, the official trainer's).
COMPOSITIONS = ("fg-bg", "image")


@dataclass(frozen=True)
class LossSpec:
    """The supervised objective: weights of the three sub-objectives and how each is measured."""

    semantic: float = 1.0
    detail: float = 10.0
    matte: float = 1.0
    detail_norm: str = "band"  # one of DETAIL_NORMS
    boundary_weight: float = 0.0  # extra L1 (and composition) inside the band, in the matte term; official: 4
    composition: str = "fg-bg"  # one of COMPOSITIONS
    name: str = "greenless"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The named objectives a config's ``[train] loss`` takes (module docstring).
LOSS_PRESETS: dict[str, LossSpec] = {
    "greenless": LossSpec(1.0, 10.0, 1.0, "band", 0.0, "fg-bg", "greenless"),
    "paper": LossSpec(1.0, 10.0, 1.0, "image", 0.0, "fg-bg", "paper"),
    "official": LossSpec(10.0, 10.0, 1.0, "image", 4.0, "image", "official"),
}
#: The config keys that override one field of the preset, and the field each sets.
LOSS_OVERRIDES = {"semantic_weight": "semantic", "detail_weight": "detail", "matte_weight": "matte",
                  "detail_norm": "detail_norm", "boundary_weight": "boundary_weight", "composition": "composition"}


def loss_spec(preset: str, **overrides: Any) -> LossSpec:
    """The preset ``preset`` with the config's overrides (config key -> value; None keeps the preset's)."""
    chosen = {LOSS_OVERRIDES[key]: value for key, value in overrides.items() if value is not None}
    spec = LOSS_PRESETS[preset]
    return replace(spec, **chosen) if chosen else spec


def semantic_loss(pred_semantic: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the 1/16 semantic prediction and the blurred 16x-down alpha."""
    if pred_semantic.shape[-2:] != target.shape[-2:]:
        target = F.interpolate(target, size=pred_semantic.shape[-2:], mode="bilinear", align_corners=False)
    return F.mse_loss(pred_semantic, target)


def detail_loss(pred_detail: torch.Tensor, alpha: torch.Tensor, band: torch.Tensor, norm: str = "band") -> torch.Tensor:
    """Absolute error inside the transition band only, averaged over the band's pixels (``band``; 0 when a
    batch has none) or over all pixels (``image``)."""
    error = (torch.abs(pred_detail - alpha) * band).sum()
    return error / (band.sum().clamp_min(1.0) if norm == "band" else band.numel())


def composition_loss(pred_matte: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, has_comp: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    """L1 between the image recomposed with the predicted matte and with the true one (per pixel, RGB).

    Samples without a known foreground/background (real photos) are skipped via ``has_comp``.
    """
    weight = has_comp.view(-1, 1, 1, 1).to(pred_matte.dtype)
    if weight.sum() == 0:
        return pred_matte.sum() * 0.0
    pred_img = pred_matte * fg + (1 - pred_matte) * bg
    true_img = alpha * fg + (1 - alpha) * bg
    per_sample = torch.abs(pred_img - true_img).mean(dim=(1, 2, 3), keepdim=True)
    return (per_sample * weight).sum() / weight.sum()


def matte_loss(pred_matte: torch.Tensor, alpha: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
               has_comp: torch.Tensor, spec: LossSpec = LossSpec(), image: torch.Tensor | None = None,
               band: torch.Tensor | None = None) -> torch.Tensor:
    """Fusion-branch loss: L1 to the alpha plus the composition loss (``spec.composition``), each plus
    ``spec.boundary_weight`` times its in-band part (the official trainer's boundary terms; the part outside
    the band, constant there, is left out: it has no gradient)."""
    loss = F.l1_loss(pred_matte, alpha)
    if spec.composition == "image":
        assert image is not None, "the image composition loss needs the image"
        rgb = image[:, :3]
        loss = loss + F.l1_loss(rgb * pred_matte, rgb * alpha)
    else:
        loss = loss + composition_loss(pred_matte, fg, bg, has_comp, alpha)
    if spec.boundary_weight:
        assert band is not None, "boundary terms need the transition band"
        inside = band.to(pred_matte.dtype)
        boundary = torch.mean(torch.abs(pred_matte - alpha) * inside)
        if spec.composition == "image":
            boundary = boundary + torch.mean(torch.abs(rgb * (pred_matte - alpha)) * inside)
        loss = loss + spec.boundary_weight * boundary
    return loss


def modnet_loss_terms(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor],
                      spec: LossSpec = LossSpec()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the three losses and each term (unweighted), all as tensors.

    Nothing here waits for the device, so a GPU trainer can read the terms a step later instead of
    stalling the queue of kernels on every step.
    """
    semantic, detail, matte = outputs
    l_s = semantic_loss(semantic, batch["semantic"])
    l_d = detail_loss(detail, batch["alpha"], batch["band"], spec.detail_norm)
    l_m = matte_loss(matte, batch["alpha"], batch["fg"], batch["bg"], batch["has_comp"], spec,
                     batch.get("image"), batch["band"])
    total = spec.semantic * l_s + spec.detail * l_d + spec.matte * l_m
    return total, {"semantic": l_s.detach(), "detail": l_d.detach(), "matte": l_m.detach()}


def modnet_loss(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor],
                spec: LossSpec = LossSpec()) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the three losses for a batch; also returns each term for logging."""
    total, terms = modnet_loss_terms(outputs, batch, spec)
    return total, {name: float(value) for name, value in terms.items()}
