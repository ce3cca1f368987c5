"""The supervised MODNet trainer: single CPU, one GPU, or many through ``torchrun`` (DistributedDataParallel).

Progress is checkpointed every ``checkpoint_every`` steps (model, optimiser, schedule, step) to
``out_dir/last.pt``; starting again with the same ``out_dir`` resumes from there, replaying the same
data order, so an interrupted run loses at most ``checkpoint_every`` steps.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader

from greenless.data.datasets import CompositionDataset, LabelledDataset
from greenless.data.folders import find_backgrounds, find_foregrounds, find_labelled
from greenless.errors import GreenlessError
from greenless.model import build_model
from greenless.model.modnet import ModelConfig
from greenless.model.checkpoint import load_weights, save_weights
from greenless.train.config import TrainConfig
from greenless.train.losses import LossWeights, modnet_loss
from greenless.train.norms import freeze_batchnorm
from greenless.train.validate import validate


def build_dataset(cfg: TrainConfig) -> ConcatDataset:
    """All training samples of a config: composites of every foreground folder plus real labelled images."""
    d, seed = cfg.data, cfg.train.seed
    hint = cfg.hint
    parts: list[Any] = []
    backgrounds = [bg for src in d.backgrounds for bg in find_backgrounds(cfg.resolve(src))]
    for folder in d.foregrounds:
        parts.append(CompositionDataset(find_foregrounds(cfg.resolve(folder)), backgrounds, d.size,
                                        d.composites_per_fg, seed, d.lighting_p, hint))
    for folder in d.labelled:
        parts.append(LabelledDataset(find_labelled(cfg.resolve(folder)), d.size, d.labelled_repeats, seed + 1,
                                     d.lighting_p, hint))
    if not parts:
        raise GreenlessError("the config names no training data ([data] foregrounds or labelled)")
    return ConcatDataset(parts)


def epoch_batches(n: int, batch: int, epoch: int, seed: int, rank: int, world: int) -> list[list[int]]:
    """This rank's batches of one epoch: one shared permutation, global batches split across ranks."""
    perm = np.random.default_rng([seed, epoch, 12345]).permutation(n)
    global_batch = batch * world
    usable = (n // global_batch) * global_batch
    out = []
    for start in range(0, usable, global_batch):
        chunk = perm[start:start + global_batch]
        out.append(chunk[rank::world].tolist())
    return out


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    t = cfg.train
    enc = [p for n, p in model.named_parameters() if n.startswith("backbone.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("backbone.")]
    groups = [{"params": enc, "lr": t.lr * t.encoder_lr_scale}, {"params": rest, "lr": t.lr}]
    if t.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    raise GreenlessError(f"unknown optimizer {t.optimizer!r}; use adamw or sgd")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine, step decay or constant."""
    t = cfg.train
    if t.warmup_steps and step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    if t.schedule == "cosine":
        progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if t.schedule == "step":
        return t.gamma ** (step // t.step_size)
    if t.schedule == "constant":
        return 1.0
    raise GreenlessError(f"unknown schedule {t.schedule!r}; use cosine, step or constant")


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def model_config(cfg: TrainConfig) -> dict[str, Any]:
    """The network a config's [model] section describes, in ModelConfig's dict form."""
    return {f.name: getattr(cfg.model, f.name) for f in fields(ModelConfig) if hasattr(cfg.model, f.name)}


def warm_start(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy every tensor of ``state`` that fits ``model``: same name and shape, or same name with more
    input channels in the model (the extra ones start at zero, so a 4-channel network begins as the
    3-channel one). Returns (tensors copied, tensors in the model)."""
    own = model.state_dict()
    copied = 0
    with torch.no_grad():
        for key, target in own.items():
            source = state.get(key)
            if source is None or source.ndim != target.ndim:
                continue
            if source.shape == target.shape:
                target.copy_(source.to(target.dtype))
            elif (source.ndim == 4 and source.shape[0] == target.shape[0] and source.shape[2:] == target.shape[2:]
                  and source.shape[1] < target.shape[1]):
                target.zero_()
                target[:, : source.shape[1]].copy_(source.to(target.dtype))
            else:
                continue
            copied += 1
    return copied, len(own)


def init_model(cfg: TrainConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fresh network for a config's [model] section: ImageNet encoder if asked, then ``init_weights``
    (loaded whole when the architecture matches, else warm-started tensor by tensor)."""
    m = cfg.model
    wanted = model_config(cfg)
    if m.init_weights:
        source, source_card = load_weights(cfg.resolve(m.init_weights))
        if {k: v for k, v in source.config.to_dict().items() if k in wanted} == wanted:
            return source.train(), source_card
    model = build_model(wanted)
    pretrained = model.backbone.load_imagenet() if m.pretrained else False
    card: dict[str, Any] = {"encoder_init": "imagenet" if pretrained else "random"}
    if m.init_weights:
        copied, total = warm_start(model, source.state_dict())
        if copied == 0:
            raise GreenlessError(f"{m.init_weights}: no tensor fits the [model] section's network")
        card["warm_start"] = {"weights": m.init_weights, "tensors": f"{copied} of {total}"}
    return model.train(), card


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    """Atomically write everything needed to resume."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Run (or resume) supervised training; returns the path of the final safetensors weights."""
    rank, world, local_rank = _dist_info()
    t = cfg.train
    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if t.threads:
        torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    out_dir = cfg.resolve(t.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = build_dataset(cfg)
    steps_per_epoch = len(epoch_batches(len(dataset), t.batch_size, 0, t.seed, 0, world))
    if steps_per_epoch == 0:
        raise GreenlessError(f"{len(dataset)} samples are fewer than one batch of {t.batch_size * world}")

    model, card = init_model(cfg)
    model = model.to(device, memory_format=torch.channels_last).train()
    if t.freeze_norm:
        freeze_batchnorm(model)
    optimizer = make_optimizer(model, cfg)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    step = 0
    last = out_dir / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
    net: torch.nn.Module = model
    if world > 1:
        if use_cuda and not t.freeze_norm:  # batch statistics over all ranks (PyTorch has no CPU SyncBatchNorm)
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda and t.amp)
    weights = LossWeights(t.semantic_weight, t.detail_weight, t.matte_weight)
    is_main = rank == 0
    log_path = out_dir / "log.jsonl"
    if is_main:
        (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.2f} step/s"),
                   TimeElapsedColumn(), TimeRemainingColumn(), disable=not (progress and is_main))
    start_time, start_step = time.time(), step
    with bar:
        task = bar.add_task("train", total=t.steps, completed=step, loss=float("nan"), rate=0.0)
        while step < t.steps:
            epoch, offset = divmod(step, steps_per_epoch)
            for part in dataset.datasets:
                part.set_epoch(epoch)
            batches = epoch_batches(len(dataset), t.batch_size, epoch, t.seed, rank, world)[offset:]
            loader = DataLoader(dataset, batch_sampler=batches, num_workers=t.num_workers,
                                persistent_workers=False, pin_memory=use_cuda)
            for batch in loader:
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
                for group, base in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = base * lr_factor(step, cfg)
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_cuda and t.amp):
                    outputs = net(batch["image"], all_outputs=True)
                loss, parts = modnet_loss(tuple(o.float() for o in outputs), batch, weights)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if t.grad_clip:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                rate = (step - start_step) / max(1e-6, time.time() - start_time)
                bar.update(task, completed=step, loss=float(loss.detach()), rate=rate)
                if is_main:
                    with log_path.open("a") as log:
                        log.write(json.dumps({"step": step, "loss": float(loss.detach()), **parts,
                                              "lr": optimizer.param_groups[1]["lr"], "time": time.time()}) + "\n")
                    if step % t.checkpoint_every == 0 or step == t.steps:
                        save_checkpoint(last, model, optimizer, step)
                    if t.val_every and cfg.data.val and step % t.val_every == 0 and step != t.steps:
                        _log_val(model, cfg, device, step, log_path)
                        if t.freeze_norm:
                            freeze_batchnorm(model)
                if step >= t.steps:
                    break
    final = out_dir / "final.safetensors"
    if is_main:
        card.update({"ref_size": cfg.data.val_ref_size, "hint": cfg.hint, "training": {"config": cfg.to_dict(), "steps": step}})
        if cfg.data.val:
            card["validation"] = _log_val(model, cfg, device, step, log_path)
        save_weights(model, final, card, half=False)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return final


def _log_val(model: torch.nn.Module, cfg: TrainConfig, device: torch.device, step: int, log_path: Path) -> dict:
    scores = validate(model, cfg.resolve(cfg.data.val), cfg.data.val_ref_size, device, hint=cfg.hint)
    with log_path.open("a") as log:
        log.write(json.dumps({"step": step, "val": scores}) + "\n")
    return scores
