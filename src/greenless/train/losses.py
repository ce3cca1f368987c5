"""MODNet's supervised losses: semantic L2, detail L1 in the transition band, fusion L1 + composition."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Weights of the three sub-objectives (the paper: semantic 1, detail 10, matte 1)."""

    semantic: float = 1.0
    detail: float = 10.0
    matte: float = 1.0


def semantic_loss(pred_semantic: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the 1/16 semantic prediction and the blurred 16x-down alpha."""
    if pred_semantic.shape[-2:] != target.shape[-2:]:
        target = F.interpolate(target, size=pred_semantic.shape[-2:], mode="bilinear", align_corners=False)
    return F.mse_loss(pred_semantic, target)


def detail_loss(pred_detail: torch.Tensor, alpha: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the transition band only (0 when a batch has no band pixels)."""
    return (torch.abs(pred_detail - alpha) * band).sum() / band.sum().clamp_min(1.0)


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
               has_comp: torch.Tensor) -> torch.Tensor:
    """Fusion-branch loss: L1 to the alpha plus the composition loss."""
    return F.l1_loss(pred_matte, alpha) + composition_loss(pred_matte, fg, bg, has_comp, alpha)


def modnet_loss_terms(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor],
                      weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the three losses and each term, all as tensors.

    Nothing here waits for the device, so a GPU trainer can read the terms a step later instead of
    stalling the queue of kernels on every step.
    """
    semantic, detail, matte = outputs
    l_s = semantic_loss(semantic, batch["semantic"])
    l_d = detail_loss(detail, batch["alpha"], batch["band"])
    l_m = matte_loss(matte, batch["alpha"], batch["fg"], batch["bg"], batch["has_comp"])
    total = weights.semantic * l_s + weights.detail * l_d + weights.matte * l_m
    return total, {"semantic": l_s.detach(), "detail": l_d.detach(), "matte": l_m.detach()}


def modnet_loss(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor],
                weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the three losses for a batch; also returns each term for logging."""
    total, terms = modnet_loss_terms(outputs, batch, weights)
    return total, {name: float(value) for name, value in terms.items()}
