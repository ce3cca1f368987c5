"""Self-supervised sub-objectives consistency (SOC) adaptation on unlabelled images or video frames.

What is implemented is the SOC step of the official MODNet trainer (``soc_adaptation_iter``), which
differs from the formulas in the paper (a comment there says the paper's formulas for the detail
terms give similar results); we follow the code because its loss weights are the ones that were run:

- a frozen copy of the model, refreshed at the start of every epoch (one pass over the frames in a
  fresh random order, the last incomplete batch dropped), labels each batch; the model being adapted
  trains with its BatchNorm layers in eval mode, so their statistics stay as trained (only a few
  unlabelled frames are seen; InstanceNorm keeps none);
- semantic consistency, weighted ``semantic_weight`` (100): MSE of the 1/16 semantic output against
  its own fused matte downsampled 16x and blurred, plus the reverse (that downsampled matte against
  the semantic output); each pseudo-target is detached and zeroed below ``pseudo_floor`` (0.01);
- detail and matte consistency, weighted ``detail_weight`` and ``matte_weight`` (1 each): L1 between
  the detail (and fused matte) and the frozen copy's, inside a boundary band, normalised by the band's
  pixels per sample. The band is dilation minus erosion of the predicted foreground (matte > 0.1 and
  upsampled semantic > 0.1) with a square of side 5 % of the mean image side;
- Adam at lr 1e-5, betas (0.9, 0.99).

Departures from the official step, each for a reason: the matte is area-downsampled to the semantic
output's size and blurred with the 3x3 Gaussian the supervised semantic target uses (the official
bilinear 1/16 resize samples rather than averages); the band's square side is rounded up to an odd
number (at least 3) so it is centred and at least one pixel wide on each side of the edge; a sample
with no band pixels contributes 0 (the official code divides by zero); frames are square crops at
``size``, and each batch is mirrored with probability 0.5 (``flip``). Networks with extra input
channels get, for the frozen copy and the adapted model alike, what they get at run time: guided
weights (card ``hint = "guide"``) the packaged segmentation model's mask of each crop, so SOC adapts the
network as it is used; previous-frame-alpha weights a blank hint (-1), so SOC adapts the image path.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from greenless.card import stride_for_scale
from greenless.data.folders import IMAGE_SUFFIXES, find_unlabelled
from greenless.errors import GreenlessError
from greenless.model.checkpoint import load_weights, save_weights
from greenless.model.modnet import MODNet
from greenless.train.norms import freeze_batchnorm

BLANK_HINT = -1.0  # an extra input channel with no information (zero alpha in [-1, 1]), as training blanks it


@dataclass
class SOCConfig:
    """SOC settings; the loss weights, thresholds and lr default to the official SOC step's."""

    steps: int = 200
    batch_size: int = 2
    lr: float = 1e-5
    size: int = 256  # square crop side the frames are adapted at
    semantic_weight: float = 100.0
    detail_weight: float = 1.0
    matte_weight: float = 1.0
    pseudo_floor: float = 0.01  # pseudo-targets below this are set to 0
    fg_threshold: float = 0.1  # matte and semantic above this count as foreground for the band
    band_fraction: float = 0.05  # band square side as a fraction of the mean image side
    flip: bool = True  # mirror a batch with probability 0.5
    frame_every: int = 5  # take every n-th frame of a video
    max_frames: int = 2000
    seed: int = 0
    threads: int = 0


def blur_down16(matte: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """The semantic view of a matte: area-downsampled to ``size`` (1/16) and blurred with a 3x3 Gaussian.

    The kernel is OpenCV's default for 3x3 (sigma 0.8), the blur of the supervised semantic target.
    """
    small = F.interpolate(matte, size=size, mode="area")
    g = torch.as_tensor(cv2.getGaussianKernel(3, 0).ravel(), dtype=matte.dtype, device=matte.device)
    kernel = (g[:, None] * g[None, :]).expand(matte.shape[1], 1, 3, 3)
    mode = "reflect" if min(size) > 1 else "replicate"
    return F.conv2d(F.pad(small, (1, 1, 1, 1), mode=mode), kernel, groups=matte.shape[1])


def iter_frames(source: Path, every: int, limit: int) -> Iterator[np.ndarray]:
    """RGB uint8 frames of the unlabelled images and videos under ``source``."""
    count = 0
    for path in find_unlabelled(source):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise GreenlessError(f"{path}: cannot read image")
            frames: Iterator[np.ndarray] = iter([cv2.cvtColor(img, cv2.COLOR_BGR2RGB)])
        else:
            frames = _video_frames(path, every)
        for frame in frames:
            yield frame
            count += 1
            if count >= limit:
                return


def expected_frames(source: Path, every: int, limit: int) -> int:
    """How many frames ``iter_frames`` should yield (from container frame counts; 0 when unknown)."""
    from greenless.media.video import open_video

    total = 0
    for path in find_unlabelled(source):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            total += 1
        else:
            with open_video(path) as reader:
                if not reader.frame_count:
                    return 0
                total += math.ceil(reader.frame_count / every)
    return min(total, limit)


def _video_frames(path: Path, every: int) -> Iterator[np.ndarray]:
    """Every ``every``-th frame (upright, RGB) through the project's video reader."""
    from greenless.media.video import open_video

    with open_video(path) as reader:
        for idx, frame in enumerate(reader):
            if idx % every == 0:
                yield frame.image


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Short side to ``size`` then the centre size x size crop, still RGB uint8 (4x smaller than floats)."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    img = cv2.resize(rgb, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_AREA)
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def network_input(crops: torch.Tensor, in_channels: int, guided: bool = False) -> torch.Tensor:
    """uint8 NCHW RGB crops -> float input in [-1, 1] plus, past RGB, the guide of each crop (``guided``)
    or a blank hint (-1)."""
    img = crops.float() / 127.5 - 1.0
    extra = in_channels - img.shape[1]
    if extra > 0:
        hint = img.new_full((img.shape[0], extra, *img.shape[2:]), BLANK_HINT)
        if guided:
            from greenless.pipeline.guide import shared_segmenter

            segment = shared_segmenter()
            for i, crop in enumerate(crops.permute(0, 2, 3, 1).numpy()):
                hint[i, 0] = torch.from_numpy(segment(np.ascontiguousarray(crop)) * 2.0 - 1.0)
        img = torch.cat([img, hint], dim=1)
    return img


def to_tensor(rgb: np.ndarray, size: int, in_channels: int = 3, guided: bool = False) -> torch.Tensor:
    """One frame as a CHW network input: centre square crop at ``size``, [-1, 1], the hint as for training."""
    crop = torch.from_numpy(square_crop(rgb, size).transpose(2, 0, 1).copy())
    return network_input(crop[None], in_channels, guided)[0]


def boundary_band(matte: torch.Tensor, semantic: torch.Tensor, fraction: float = 0.05,
                  threshold: float = 0.1) -> torch.Tensor:
    """1 on the boundary of the predicted foreground: dilation minus erosion with a square of side
    ``fraction`` of the mean image side (odd, at least 3). Foreground: matte and upsampled semantic
    both above ``threshold``."""
    h, w = matte.shape[-2:]
    semantic_up = F.interpolate(semantic, size=(h, w), mode="bilinear", align_corners=False)
    fg = ((matte > threshold) & (semantic_up > threshold)).to(matte.dtype)
    side = max(3, int((h + w) / 2 * fraction)) | 1
    dilated = F.max_pool2d(fg, side, stride=1, padding=side // 2)
    eroded = -F.max_pool2d(-fg, side, stride=1, padding=side // 2)
    return (dilated - eroded > 0).to(matte.dtype)


def soc_losses(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               frozen: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               cfg: SOCConfig | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The SOC objective for one batch (see the module docstring); returns (total, detached parts).
    ``cfg`` None: the defaults."""
    cfg = cfg or SOCConfig()
    semantic, detail, matte = outputs
    _, frozen_detail, frozen_matte = frozen
    matte_down = blur_down16(matte, semantic.shape[-2:])
    target_semantic = matte_down.detach()
    target_semantic = target_semantic * (target_semantic > cfg.pseudo_floor)
    target_matte = semantic.detach()
    target_matte = target_matte * (target_matte > cfg.pseudo_floor)
    consistency = F.mse_loss(semantic, target_semantic) + F.mse_loss(matte_down, target_matte)

    band = boundary_band(matte.detach(), semantic.detach(), cfg.band_fraction, cfg.fg_threshold)
    pixels = band.sum(dim=(1, 2, 3)).clamp_min(1.0)
    keep_detail = ((torch.abs(detail - frozen_detail) * band).sum(dim=(1, 2, 3)) / pixels).mean()
    keep_matte = ((torch.abs(matte - frozen_matte) * band).sum(dim=(1, 2, 3)) / pixels).mean()
    total = cfg.semantic_weight * consistency + cfg.detail_weight * keep_detail + cfg.matte_weight * keep_matte
    return total, {"consistency": float(consistency.detach()), "detail": float(keep_detail.detach()),
                   "matte": float(keep_matte.detach()), "band": float(band.mean())}


@torch.no_grad()
def inconsistency(model: MODNet, frames: list[np.ndarray], size: int = 256, guided: bool = False) -> float:
    """Mean |semantic - blurred 1/16 matte| of ``model`` over frames: the disagreement SOC is meant to lower."""
    model.eval()
    values = []
    for frame in frames:
        semantic, _, matte = model(to_tensor(frame, size, model.config.in_channels, guided)[None], all_outputs=True)
        values.append(float(torch.abs(semantic - blur_down16(matte, semantic.shape[-2:])).mean()))
    return float(np.mean(values))


def load_for_adaptation(weights: str | Path) -> tuple[MODNet, dict[str, Any]]:
    """Load PyTorch weights to adapt, turning every way that can fail into one ``GreenlessError`` line."""
    path = Path(weights)
    if path.suffix.lower() == ".onnx":
        raise GreenlessError(f"{path}: adapt needs PyTorch weights (.safetensors or an official .ckpt), not ONNX")
    if not path.is_file():
        raise GreenlessError(f"{path}: weights file not found")
    try:
        return load_weights(path)
    except Exception as exc:  # safetensors header errors, unpickling errors, state-dict mismatches
        lines = str(exc).strip().splitlines()
        if isinstance(exc, pickle.UnpicklingError):  # torch's message is a paragraph about weights_only
            reason = "not a checkpoint torch.load can read with weights_only=True"
        else:
            reason = lines[0][:160] if lines else type(exc).__name__
        raise GreenlessError(f"{path}: cannot load as PyTorch weights (.safetensors or an official .ckpt): "
                             f"{reason}") from exc


def _progress(enabled: bool) -> Any:
    """A Rich progress bar on stderr (steps, elapsed, ETA), shown only when ``enabled``."""
    from rich import progress as rp
    from rich.console import Console

    return rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
                       rp.TimeElapsedColumn(), rp.TimeRemainingColumn(), console=Console(stderr=True),
                       disable=not enabled)


def load_frames(source: Path, cfg: SOCConfig, bar: Any = None) -> torch.Tensor:
    """The unlabelled frames as uint8 NCHW square crops at ``cfg.size``, ticking ``bar`` (Rich) per frame."""
    task = bar.add_task("loading frames", total=None) if bar is not None else None
    if bar is not None:
        bar.update(task, total=expected_frames(source, cfg.frame_every, cfg.max_frames) or None)
    crops = []
    for frame in iter_frames(source, cfg.frame_every, cfg.max_frames):
        crops.append(square_crop(frame, cfg.size))
        if bar is not None:
            bar.advance(task)
    if bar is not None:
        bar.update(task, total=len(crops))
    if not crops:
        return torch.empty((0, 3, cfg.size, cfg.size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy())


def adapt(weights: str | Path, source: Path, output: Path, cfg: SOCConfig | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Adapt ``weights`` to the unlabelled images/videos in ``source`` with SOC (``cfg`` None: the defaults);
    write the result to ``output``.

    Returns the frame and epoch counts and the per-step losses (``history``).
    """
    cfg = cfg or SOCConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model, card = load_for_adaptation(weights)
    stride = stride_for_scale(model.config.semantic_scale)
    if cfg.size % stride:  # off its grid the network's features do not line up with the crop
        raise GreenlessError(f"size {cfg.size}: must be a multiple of {stride} for these weights (their stride)")
    channels = model.config.in_channels
    guided = channels == 4 and card.get("hint") == "guide"
    rng = np.random.default_rng(cfg.seed)
    history: list[dict[str, float]] = []
    epochs = 0
    with _progress(progress) as bar:
        data = load_frames(source, cfg, bar)
        if len(data) < cfg.batch_size:
            raise GreenlessError(f"{source}: {len(data)} frame(s) found, need at least {cfg.batch_size}")
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        per_epoch = len(data) // cfg.batch_size
        start = time.time()
        task = bar.add_task("SOC adaptation", total=cfg.steps)
        while len(history) < cfg.steps:
            frozen_model = copy.deepcopy(model).eval()  # a fresh frozen copy every epoch
            frozen_model.requires_grad_(False)
            epochs += 1
            order = rng.permutation(len(data))
            for b in range(min(per_epoch, cfg.steps - len(history))):
                batch = network_input(data[order[b * cfg.batch_size:(b + 1) * cfg.batch_size]], channels, guided)
                if cfg.flip and rng.random() < 0.5:
                    batch = batch.flip(-1)
                model.train()
                freeze_batchnorm(model)
                with torch.no_grad():
                    frozen = frozen_model(batch, all_outputs=True)
                loss, parts = soc_losses(model(batch, all_outputs=True), frozen, cfg)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                history.append({"step": len(history) + 1, "epoch": epochs, "loss": float(loss.detach()), **parts})
                bar.advance(task)
    card = dict(card)
    card["soc"] = {"source": str(source), "frames": len(data), "steps": cfg.steps, "epochs": epochs,
                   "seconds": round(time.time() - start, 1), "parent": Path(weights).name,
                   "config": {k: v for k, v in asdict(cfg).items() if k not in ("threads", "max_frames")}}
    save_weights(model.eval(), output, card, half=False)
    return {"frames": len(data), "epochs": epochs, "history": history}


def save_history(path: Path, history: list[dict]) -> None:
    """Write the per-step SOC losses as JSON lines."""
    path.write_text("".join(json.dumps(h) + "\n" for h in history))
