"""PyTorch datasets: foregrounds composited on many backgrounds, real labelled images, unlabelled frames.

Composition follows MODNet/DIM background replacement: each foreground yields ``composites_per_fg``
samples per epoch, each a different random crop on a different random background, blended in linear
light (sRGB decoded with gamma 2.2) so soft edges mix like a camera would record them.
Randomness is derived from (seed, epoch, index), so every process of a distributed run sees the same
sample for the same index and a resumed run replays the same stream.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from greenless.data.augment import (
    add_lighting,
    colour_jitter,
    corrupt_guide,
    degrade,
    face_blur,
    harmonise,
    maybe_greyscale,
    random_crop_scale,
)
from greenless.data.folders import Pair
from greenless.data.targets import semantic_target, transition_band
from greenless.errors import GreenlessError
from greenless.media.images import load_rgb, read_alpha
from greenless.registry import RECIPE_HINTS as HINTS

FACE_BLUR_P = 0.1  # privacy-blurred faces, as in P3M-10k and the validation portraits
HARMONISE_P = 0.5  # foreground colour and lighting pulled towards the new background's

GAMMA = 2.2
# HINTS, what a 4th input channel carries, is the recipe's word (greenless.registry.RECIPE_HINTS); in training:
# nothing (3-channel networks), the previous frame's alpha (jittered true alpha), or the semantic guide (the
# packaged segmentation model's mask, corrupted).


@lru_cache(maxsize=4096)
def _read_rgb(path: Path) -> np.ndarray:
    """An image as HxWx3 uint8 RGB, by the package's one reader (``media.images.load_rgb``: EXIF-rotated, any
    mode), cached: a run reads each file once per worker."""
    return load_rgb(path)


@lru_cache(maxsize=4096)
def _read_alpha(path: Path) -> np.ndarray:
    """An alpha matte as HxW float32 in [0, 1] by the rule ``greenless eval`` reads ground truth with
    (``media.images.read_alpha``: 16-bit, an RGBA cut-out's alpha, an RGB matte's luminance), so training,
    its validation and evaluation score the same numbers; cached."""
    return read_alpha(path).astype(np.float32)


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """(RGB float32 [0,1], alpha float32 [0,1]) of a pair; sizes must match."""
    rgb, alpha = _read_rgb(pair.image), _read_alpha(pair.alpha)
    if rgb.shape[:2] != alpha.shape[:2]:
        raise GreenlessError(f"{pair.alpha}: size {alpha.shape[1]}x{alpha.shape[0]} does not match "
                             f"{pair.image.name} ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb.astype(np.float32) / 255.0, alpha


def jitter_prev_alpha(rng: np.random.Generator, alpha: np.ndarray, blank_p: float = 0.3) -> np.ndarray:
    """A plausible previous-frame alpha: blanked with ``blank_p``, else shifted, rotated, scaled and eroded/dilated.

    The jitter keeps the 4-channel model from copying its input instead of looking at the image.
    """
    if rng.random() < blank_p:
        return np.zeros_like(alpha)
    h, w = alpha.shape
    angle = rng.uniform(-5, 5)
    scale = rng.uniform(0.95, 1.05)
    matrix: np.ndarray = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * (w, h)
    prev = cv2.warpAffine(alpha, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    k = int(rng.integers(0, 4))
    if k:
        kernel = np.ones((2 * k + 1, 2 * k + 1), np.uint8)
        prev = cv2.dilate(prev, kernel) if rng.random() < 0.5 else cv2.erode(prev, kernel)
    return prev


def make_hint(rng: np.random.Generator, hint: str, image: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """The 4th input channel for one training sample (None for 3-channel networks).

    ``guide``: the packaged segmentation model run on the training image itself (so the guide carries the
    mistakes that model really makes on this picture), then corrupted; one sample in six instead gets a
    jittered true alpha, as a video's previous frame would give, so guided networks take that hint too.
    """
    if hint == "none":
        return None
    if hint == "prev-alpha":
        return jitter_prev_alpha(rng, alpha)
    if hint != "guide":
        raise GreenlessError(f"unknown hint {hint!r}; choose from {', '.join(HINTS)}")
    if rng.random() < 1 / 6:
        return jitter_prev_alpha(rng, alpha, blank_p=0.0)
    from greenless.pipeline.guide import shared_segmenter

    rgb = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return corrupt_guide(rng, shared_segmenter()(rgb, mode="pad"))


def to_sample(image: np.ndarray, alpha: np.ndarray, fg: np.ndarray | None = None, bg: np.ndarray | None = None,
              prev: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Tensors the trainer needs: normalised image (+ previous alpha), alpha, semantic target, band, fg/bg."""
    x = image.transpose(2, 0, 1) * 2.0 - 1.0
    if prev is not None:
        x = np.concatenate([x, (prev * 2.0 - 1.0)[None]], axis=0)
    sample = {
        "image": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
        "alpha": torch.from_numpy(alpha[None].astype(np.float32)),
        "semantic": torch.from_numpy(semantic_target(alpha)[None].astype(np.float32)),
        "band": torch.from_numpy(transition_band(alpha)[None]),
        "has_comp": torch.tensor(1.0 if fg is not None else 0.0),
    }
    zeros = np.zeros_like(image)
    sample["fg"] = torch.from_numpy(np.ascontiguousarray((fg if fg is not None else zeros).transpose(2, 0, 1)))
    sample["bg"] = torch.from_numpy(np.ascontiguousarray((bg if bg is not None else zeros).transpose(2, 0, 1)))
    return sample


class _Seeded(Dataset):
    """Per-index, per-epoch random generators so runs are reproducible and identical across processes."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])


class CompositionDataset(_Seeded):
    """Foregrounds + alphas composited on random backgrounds, ``composites_per_fg`` times each per epoch."""

    def __init__(self, pairs: list[Pair], backgrounds: list[Path], size: int = 256, composites_per_fg: int = 4,
                 seed: int = 0, lighting_p: float = 0.15, hint: str = "none", edge_crop_p: float = 0.0) -> None:
        super().__init__(seed)
        if not pairs:
            raise GreenlessError("no foregrounds to compose")
        if not backgrounds:
            raise GreenlessError("no backgrounds to compose on")
        self.pairs, self.backgrounds = pairs, backgrounds
        self.size, self.per_fg = size, composites_per_fg
        self.lighting_p, self.hint, self.edge_crop_p = lighting_p, hint, edge_crop_p

    def __len__(self) -> int:
        return len(self.pairs) * self.per_fg

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.rng(index)
        fg, alpha = load_pair(self.pairs[index // self.per_fg])
        if rng.random() < FACE_BLUR_P:
            fg = face_blur(rng, fg, alpha)
        bg: np.ndarray = _read_rgb(self.backgrounds[int(rng.integers(len(self.backgrounds)))]).astype(np.float32) / 255.0
        if rng.random() < 0.5:
            fg, alpha = fg[:, ::-1], alpha[:, ::-1]
        fg, alpha = random_crop_scale(rng, [fg, alpha], self.size, (0.5, 1.2), self.edge_crop_p)
        bg = random_crop_scale(rng, [bg], self.size, (1.0, 2.0))[0]
        if rng.random() < 0.5:
            bg = bg[:, ::-1]
        fg = colour_jitter(rng, fg, 0.15)
        bg = colour_jitter(rng, bg, 0.3)
        if rng.random() < HARMONISE_P:
            fg = harmonise(rng, fg, bg, alpha)
        if rng.random() < 0.3:
            bg = cv2.GaussianBlur(bg, (0, 0), rng.uniform(1, 6))
        alpha = np.clip(alpha, 0.0, 1.0)  # resampling can overshoot 1 by an ulp; negative powers give NaN
        a = alpha[..., None]
        image = np.maximum(a * fg ** GAMMA + (1 - a) * bg ** GAMMA, 0.0) ** (1 / GAMMA)
        if rng.random() < self.lighting_p:
            image = add_lighting(rng, image)
        image = maybe_greyscale(rng, degrade(rng, image.astype(np.float32)))
        prev = make_hint(rng, self.hint, image, alpha)
        return to_sample(image.astype(np.float32), np.ascontiguousarray(alpha), np.ascontiguousarray(fg),
                         np.ascontiguousarray(bg), prev)


class LabelledDataset(_Seeded):
    """Real images with alphas. ``size=None`` gives whole images (validation); else augmented square crops."""

    def __init__(self, pairs: list[Pair], size: int | None = 256, repeats: int = 1, seed: int = 0,
                 lighting_p: float = 0.15, hint: str = "none", edge_crop_p: float = 0.0) -> None:
        super().__init__(seed)
        if not pairs:
            raise GreenlessError("no labelled images")
        self.pairs, self.size, self.repeats = pairs, size, repeats
        self.lighting_p, self.hint, self.edge_crop_p = lighting_p, hint, edge_crop_p

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image, alpha = load_pair(self.pairs[index // self.repeats])
        rng = self.rng(index)
        if self.size is None:  # whole images, as at run time: no hint for prev-alpha, the guide as it comes
            if self.hint == "guide":
                from greenless.pipeline.guide import shared_segmenter

                prev: np.ndarray | None = shared_segmenter()((image * 255.0 + 0.5).astype(np.uint8), mode="pad")
            else:
                prev = np.zeros_like(alpha) if self.hint == "prev-alpha" else None
            return to_sample(image, alpha, prev=prev)
        if rng.random() < FACE_BLUR_P:
            image = face_blur(rng, image, alpha)
        if rng.random() < 0.5:
            image, alpha = image[:, ::-1], alpha[:, ::-1]
        image, alpha = random_crop_scale(rng, [image, alpha], self.size, (0.5, 1.2), self.edge_crop_p)
        image = colour_jitter(rng, image, 0.2)
        if rng.random() < self.lighting_p:
            image = add_lighting(rng, image)
        image = maybe_greyscale(rng, degrade(rng, image.astype(np.float32)))
        prev = make_hint(rng, self.hint, image, alpha)
        return to_sample(image.astype(np.float32), np.ascontiguousarray(alpha), prev=prev)
