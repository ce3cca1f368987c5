"""Self-supervised sub-objectives consistency (SOC) adaptation on unlabelled images or video frames.

As in the MODNet paper: a frozen copy of the trained model labels each unlabelled image; the model
being adapted is pushed to (1) keep its 1/16 semantic output consistent with its own fused matte
(both ways, the other side detached), and (2) keep its detail and matte consistent with the frozen
copy inside the boundary band, so adaptation fixes semantic disagreements without washing out detail.
BatchNorm statistics stay frozen during adaptation (only a few unlabelled images are seen).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from greenless.data.folders import IMAGE_SUFFIXES, find_unlabelled
from greenless.data.targets import transition_band
from greenless.errors import GreenlessError
from greenless.model.checkpoint import load_weights, save_weights
from greenless.train.norms import freeze_batchnorm


@dataclass
class SOCConfig:
    steps: int = 200
    batch_size: int = 2
    lr: float = 1e-5
    size: int = 256
    detail_weight: float = 10.0
    matte_weight: float = 1.0
    frame_every: int = 5  # take every n-th frame of a video
    max_frames: int = 2000
    seed: int = 0
    threads: int = 0


def blur_down16(matte: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The semantic view of a matte: area-downsampled to ``size`` (1/16) and Gaussian-blurred (3x3)."""
    small = F.interpolate(matte, size=size, mode="area")
    kernel = torch.tensor([1.0, 2.0, 1.0], device=matte.device)
    kernel = (kernel[:, None] * kernel[None, :]) / 16.0
    return F.conv2d(F.pad(small, (1, 1, 1, 1), mode="replicate"), kernel[None, None])


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


def _video_frames(path: Path, every: int) -> Iterator[np.ndarray]:
    """Every ``every``-th frame (upright, RGB) through the project's video reader."""
    from greenless.media.video import open_video

    with open_video(path) as reader:
        for idx, frame in enumerate(reader):
            if idx % every == 0:
                yield frame.image


def to_tensor(rgb: np.ndarray, size: int) -> torch.Tensor:
    """Short side to ``size`` then centre crop to size x size, normalised to [-1, 1]."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    img = cv2.resize(rgb, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_AREA)
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    img = img[y:y + size, x:x + size].astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(img.transpose(2, 0, 1).copy())


def soc_losses(outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
               frozen: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cfg: SOCConfig) -> tuple[torch.Tensor, dict]:
    """SOC objective for one batch: semantic<->matte consistency plus detail/matte kept near the frozen copy."""
    semantic, detail, matte = outputs
    _, frozen_detail, frozen_matte = frozen
    sem_of_matte = blur_down16(matte, semantic.shape[-2:])
    consistency = F.mse_loss(semantic, sem_of_matte.detach()) + F.mse_loss(sem_of_matte, semantic.detach())
    band = torch.stack([torch.from_numpy(transition_band((m[0] > 0.5).float().cpu().numpy()))
                        for m in frozen_matte])[:, None].to(matte.device)
    denom = band.sum().clamp_min(1.0)
    keep_detail = (torch.abs(detail - frozen_detail) * band).sum() / denom
    keep_matte = (torch.abs(matte - frozen_matte) * band).sum() / denom
    total = consistency + cfg.detail_weight * keep_detail + cfg.matte_weight * keep_matte
    return total, {"consistency": float(consistency.detach()), "detail": float(keep_detail.detach()),
                   "matte": float(keep_matte.detach())}


@torch.no_grad()
def inconsistency(model: torch.nn.Module, frames: list[np.ndarray], size: int = 256) -> float:
    """Mean |semantic - blurred 1/16 matte| of ``model`` over frames: what SOC is meant to lower."""
    model.eval()
    values = []
    for frame in frames:
        semantic, _, matte = model(to_tensor(frame, size)[None], all_outputs=True)
        values.append(float(torch.abs(semantic - blur_down16(matte, semantic.shape[-2:])).mean()))
    return float(np.mean(values))


def adapt(weights: Path, source: Path, output: Path, cfg: SOCConfig = SOCConfig(), progress: bool = True) -> dict:
    """Adapt ``weights`` to the unlabelled images/videos in ``source``; write the result to ``output``."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model, card = load_weights(weights)
    frozen_model, _ = load_weights(weights)
    frozen_model.eval()
    frames = list(iter_frames(source, cfg.frame_every, cfg.max_frames))
    if len(frames) < cfg.batch_size:
        raise GreenlessError(f"{source}: {len(frames)} frame(s) found, need at least {cfg.batch_size}")
    data = torch.stack([to_tensor(f, cfg.size) for f in frames])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    rng = np.random.default_rng(cfg.seed)
    from rich.progress import Progress

    history = []
    start = time.time()
    with Progress(disable=not progress) as bar:
        task = bar.add_task("SOC adaptation", total=cfg.steps)
        for step in range(cfg.steps):
            model.train()
            freeze_batchnorm(model)
            idx = rng.choice(len(data), cfg.batch_size, replace=False)
            batch = data[idx]
            if rng.random() < 0.5:
                batch = batch.flip(-1)
            with torch.no_grad():
                frozen = frozen_model(batch, all_outputs=True)
            loss, parts = soc_losses(model(batch, all_outputs=True), frozen, cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append({"step": step + 1, "loss": float(loss), **parts})
            bar.update(task, advance=1)
    card = dict(card)
    card["soc"] = {"source": str(source), "frames": len(frames), "steps": cfg.steps, "lr": cfg.lr,
                   "seconds": round(time.time() - start, 1), "parent": Path(weights).name}
    save_weights(model.eval(), output, card, half=False)
    return {"frames": len(frames), "history": history}


def save_history(path: Path, history: list[dict]) -> None:
    """Write the per-step SOC losses as JSON lines."""
    path.write_text("".join(json.dumps(h) + "\n" for h in history))
