"""BatchNorm handling shared by the trainers: freezing statistics for small batches and adaptation."""

from __future__ import annotations

import torch


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Put every BatchNorm layer in eval mode: use (and keep) running statistics while the rest trains."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
