"""Validation during training: full-resolution MSE and MAD on a PPM-100 style folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from greenless.data.datasets import load_pair
from greenless.data.folders import find_labelled
from greenless.pipeline.preprocess import inference_size, matte_to_size, to_network_input


@torch.no_grad()
def predict_full(model: torch.nn.Module, rgb_uint8: np.ndarray, ref_size: int = 512,
                 device: torch.device | None = None) -> np.ndarray:
    """The matte a deployed model would give for one image (same resizing as ``Matter``)."""
    h, w = rgb_uint8.shape[:2]
    x = torch.from_numpy(to_network_input(rgb_uint8, inference_size(h, w, ref_size)))
    if device is not None:
        x = x.to(device)
    if model.config.in_channels == 4:
        x = torch.cat([x, torch.full_like(x[:, :1], -1.0)], dim=1)
    matte = model(x, all_outputs=False)
    return matte_to_size(matte[0, 0].float().cpu().numpy(), h, w)


def validate(model: torch.nn.Module, folder: str | Path, ref_size: int = 512,
             device: torch.device | None = None) -> dict[str, float]:
    """Mean MSE and MAD of ``model`` over a labelled folder; restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    mse, mad = [], []
    for pair in find_labelled(Path(folder)):
        rgb, alpha = load_pair(pair)
        pred = predict_full(model, (rgb * 255 + 0.5).astype(np.uint8), ref_size, device)
        mse.append(float(np.mean((pred - alpha) ** 2)))
        mad.append(float(np.mean(np.abs(pred - alpha))))
    model.train(was_training)
    return {"mse": float(np.mean(mse)), "mad": float(np.mean(mad))}
