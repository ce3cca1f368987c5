"""Validation during training: full-resolution MSE and MAD on a PPM-100 style folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from greenless.data.datasets import load_pair
from greenless.data.folders import find_labelled
from greenless.pipeline.preprocess import inference_size, matte_to_size, prev_alpha_channel, to_network_input


@torch.no_grad()
def predict_full(model: torch.nn.Module, rgb_uint8: np.ndarray, ref_size: int = 512,
                 device: torch.device | None = None, hint: str = "prev-alpha") -> np.ndarray:
    """The matte a deployed model would give for one image (same resizing and hint channel as ``Matter``:
    the packaged guide for guided networks, which also bounds their matte; a blank previous alpha for the
    others)."""
    h, w = rgb_uint8.shape[:2]
    size = inference_size(h, w, ref_size)
    guide = None
    x = torch.from_numpy(to_network_input(rgb_uint8, size))
    if model.config.in_channels == 4:
        if hint == "guide":
            from greenless.pipeline.guide import shared_segmenter

            guide = shared_segmenter()(rgb_uint8, mode="pad", size=size)
        x = torch.cat([x, torch.from_numpy(prev_alpha_channel(guide, size))], dim=1)
    if device is not None:
        x = x.to(device)
    matte = np.clip(model(x, all_outputs=False)[0, 0].float().cpu().numpy(), 0.0, 1.0)
    if guide is not None:
        from greenless.pipeline.guide import bound_by_guide

        matte = bound_by_guide(matte, guide)
    return matte_to_size(matte, h, w)


def validate(model: torch.nn.Module, folder: str | Path, ref_size: int = 512,
             device: torch.device | None = None, hint: str = "prev-alpha") -> dict[str, float]:
    """Mean MSE and MAD of ``model`` over a labelled folder; restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    mse, mad = [], []
    for pair in find_labelled(Path(folder)):
        rgb, alpha = load_pair(pair)
        pred = predict_full(model, (rgb * 255 + 0.5).astype(np.uint8), ref_size, device, hint)
        mse.append(float(np.mean((pred - alpha) ** 2)))
        mad.append(float(np.mean(np.abs(pred - alpha))))
    model.train(was_training)
    return {"mse": float(np.mean(mse)), "mad": float(np.mean(mad))}
