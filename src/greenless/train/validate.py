"""Validation during training: full-resolution MSE and MAD on a labelled folder, through the one matte recipe.

The model under training is scored on the mattes users would get from its weights as a photo (the recipe
``Matter`` runs them with: the reference size, preprocessing rule, hint, guide views and bounding), so the
figures that choose weights are the ones ``greenless eval`` reports for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from greenless.data.datasets import load_pair
from greenless.data.folders import find_labelled
from greenless.engines.torch import module_runner
from greenless.model.modnet import MODNet
from greenless.pipeline.recipe import Recipe, recipe_for


def validation_recipe(model: MODNet, ref_size: int = 512, hint: str = "prev-alpha") -> Recipe:
    """The photo recipe for ``model``'s weights as training writes their card (``ref_size``, ``hint``)."""
    config: Any = model.config  # a MODNet's ModelConfig
    card = {"ref_size": ref_size, "hint": hint, "model": {"semantic_scale": float(config.semantic_scale)}}
    return recipe_for(card, int(config.in_channels), "photo")


def predict_full(model: MODNet, rgb_uint8: np.ndarray, ref_size: int = 512,
                 device: torch.device | None = None, hint: str = "prev-alpha") -> np.ndarray:
    """The matte a deployed model would give for one photo: ``validation_recipe`` around ``model`` (inputs
    sent to ``device``, default where the model's weights are)."""
    return validation_recipe(model, ref_size, hint).matte(module_runner(model, device), [rgb_uint8])[0]


def validate(model: MODNet, folder: str | Path, ref_size: int = 512,
             device: torch.device | None = None, hint: str = "prev-alpha") -> dict[str, float]:
    """Mean MSE and MAD of ``model`` over a labelled folder; restores the model's train/eval mode."""
    was_training = model.training
    model.eval()
    recipe, run = validation_recipe(model, ref_size, hint), module_runner(model, device)
    mse, mad = [], []
    for pair in find_labelled(Path(folder)):
        rgb, alpha = load_pair(pair)
        pred = recipe.matte(run, [(rgb * 255 + 0.5).astype(np.uint8)])[0]
        mse.append(float(np.mean((pred - alpha) ** 2)))
        mad.append(float(np.mean(np.abs(pred - alpha))))
    model.train(was_training)
    return {"mse": float(np.mean(mse)), "mad": float(np.mean(mad))}
