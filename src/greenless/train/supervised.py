"""The supervised MODNet trainer: single CPU, one GPU, or many through ``torchrun`` (DistributedDataParallel).

Progress is checkpointed every ``checkpoint_every`` steps (model, optimiser, schedule, step, training
seconds) to ``out_dir/last.pt``; starting again with the same ``out_dir`` resumes from there, replaying the
same data order, so an interrupted run loses at most ``checkpoint_every`` steps.

One data loader serves the whole run (its workers start once, not every epoch), and on CUDA the steps
never wait for the device (bf16 needs no loss scaling; losses are read a step late), so the GPU is fed
as long as the workers keep up: ``log.jsonl`` says, per step, how long the step waited for data.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader, Dataset, default_collate

from greenless.data.datasets import CompositionDataset, LabelledDataset
from greenless.data.folders import find_backgrounds, find_foregrounds, find_labelled
from greenless.errors import GreenlessError
from greenless.model import build_model
from greenless.model.checkpoint import load_weights, save_weights
from greenless.model.modnet import ModelConfig, MODNet
from greenless.train.config import TrainConfig
from greenless.train.leaks import check_validation_apart
from greenless.train.losses import modnet_loss_terms
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
                                        d.composites_per_fg, seed, d.lighting_p, hint, d.edge_crop_p))
    for folder in d.labelled:
        parts.append(LabelledDataset(find_labelled(cfg.resolve(folder)), d.size, d.labelled_repeats, seed + 1,
                                     d.lighting_p, hint, d.edge_crop_p))
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


class EpochIndexed(Dataset):
    """The training samples addressed by ``(epoch, index)``.

    The datasets draw their randomness from (seed, epoch, index) and learn the epoch through
    ``set_epoch``. Loader workers that live for the whole run hold their own copies of the datasets, so
    an epoch set in the main process would never reach them: the epoch travels with each index instead.
    """

    def __init__(self, dataset: ConcatDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        for part in self.dataset.datasets:
            cast(CompositionDataset | LabelledDataset, part).set_epoch(epoch)
        return self.dataset[index]


class StepBatches:
    """Batch sampler of a whole run: this rank's batch for every step from ``start`` on, epoch after epoch.

    Step s is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch`` (``epoch_batches``), each index
    paired with its epoch for ``EpochIndexed``; a resumed run starting at step s therefore sees the same
    data as the uninterrupted one. ``stop=None`` runs on until the trainer stops asking (wall-clock budgets).
    One sampler for the whole run means one loader iterator, so the workers start once, not every epoch.
    """

    def __init__(self, n: int, batch: int, seed: int, rank: int = 0, world: int = 1, start: int = 0,
                 stop: int | None = None) -> None:
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self.start, self.stop = start, stop
        self.steps_per_epoch = len(epoch_batches(n, batch, 0, seed, rank, world))
        if self.steps_per_epoch == 0:
            raise GreenlessError(f"{n} samples are fewer than one batch of {batch * world}")

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start
        while self.stop is None or step < self.stop:
            epoch, offset = divmod(step, self.steps_per_epoch)
            for indices in epoch_batches(self.n, self.batch, epoch, self.seed, self.rank, self.world)[offset:]:
                if self.stop is not None and step >= self.stop:
                    return
                yield [(epoch, i) for i in indices]
                step += 1


def compact_sample(sample: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A sample in half the bytes for the trip to the GPU: images and targets in fp16, the 0/1 band in uint8.

    At 512 px a float32 sample is about 12 MB (image, alpha, band, foreground, background); a batch of 32
    then moves 380 MB through shared memory, pinning and the bus per step. The network runs in fp16/bf16
    anyway, and the targets lose nothing that matters (alpha to within 2.5e-4); ``to_device`` turns them
    back into float32 on the GPU.
    """
    out = {}
    for key, value in sample.items():
        if key == "band":
            out[key] = value.to(torch.uint8)
        elif value.is_floating_point() and value.ndim >= 2:
            out[key] = value.half()
        else:
            out[key] = value
    return out


def collate_compact(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``default_collate`` of compacted samples (run in the workers, so the main process gets the small batch)."""
    return default_collate([compact_sample(s) for s in samples])


def to_device(batch: dict[str, torch.Tensor], device: torch.device, channels_last: bool = False) -> dict[str, torch.Tensor]:
    """Move a batch to the device (asynchronously from pinned memory), back to float32, the image NHWC if asked."""
    out = {}
    for key, value in batch.items():
        value = value.to(device, non_blocking=True)
        if value.dtype in (torch.float16, torch.uint8):
            value = value.float()
        if key == "image" and channels_last:
            value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out


def _worker_init(worker_id: int) -> None:
    """One thread per loader worker: many workers each starting a full OpenCV/torch thread pool thrash the CPU."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(dataset: ConcatDataset, cfg: TrainConfig, start_step: int, rank: int = 0, world: int = 1,
                cuda: bool = False) -> DataLoader:
    """The one loader of a run, from ``start_step`` on: to ``steps``, or without end under a time budget.

    On CUDA the batches are pinned and travel compact (``compact_sample``); workers prepare
    ``prefetch_factor`` batches each ahead of the GPU. Workers are spawned, not forked: a fork copies
    locks held by the threads of the parent (the guide's ONNX Runtime session after a validation, CUDA,
    OpenMP) without the threads that would release them, and such a worker waits forever (seen: the
    second run of the throughput benchmark in one process hung on a futex). They start once per run.
    """
    t = cfg.train
    stop = None if t.minutes > 0 else t.steps
    sampler = StepBatches(len(dataset), t.batch_size, t.seed, rank, world, start_step, stop)
    workers = t.num_workers
    return DataLoader(EpochIndexed(dataset), batch_sampler=sampler, num_workers=workers,
                      prefetch_factor=t.prefetch_factor if workers > 0 else None,
                      worker_init_fn=_worker_init if workers > 0 else None, pin_memory=cuda,
                      multiprocessing_context="spawn" if workers > 0 else None,
                      collate_fn=collate_compact if cuda and t.amp else default_collate)


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


def lr_factor(step: int, cfg: TrainConfig, progress: float | None = None) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine, step decay or constant.

    ``progress`` (0..1) is where the run stands in its wall-clock budget; without one the cosine runs on
    steps. Either way the last step (``progress`` 1, or step ``steps - 1``) runs at the schedule's end,
    0.02 of the base rate for the cosine, even when the run is shorter than its warm-up.
    """
    t = cfg.train
    last = progress >= 1.0 if progress is not None else step + 1 >= t.steps
    if t.warmup_steps and step < t.warmup_steps and not last:
        return (step + 1) / t.warmup_steps
    if t.schedule == "cosine":
        if last:
            progress = 1.0
        elif progress is None:
            progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, progress))))
    if t.schedule == "step":
        return t.gamma ** (step // t.step_size)
    return 1.0  # constant (the config allows no other schedule)


class RunClock:
    """Training seconds of a run, carried over resumes, and the wall-clock budget's schedule.

    ``plan`` looks one step ahead with the median of the recent step times: the schedule's progress is
    taken at the end of the coming step, and the step after which another would not fit in the budget is
    the last one, run at the final learning rate, so a budgeted run ends where its cosine ends.
    """

    def __init__(self, budget_s: float = 0.0, carried_s: float = 0.0, window: int = 20) -> None:
        self.budget_s, self.carried_s = budget_s, carried_s
        self.started = time.perf_counter()
        self.recent: deque[float] = deque(maxlen=window)

    def elapsed(self) -> float:
        """Training seconds so far, earlier sessions of the run included."""
        return self.carried_s + time.perf_counter() - self.started

    def record(self, step_s: float) -> None:
        self.recent.append(step_s)

    def plan(self) -> tuple[float, bool]:
        """(schedule progress at the end of the coming step, whether it is the last step of the budget)."""
        estimate = float(np.median(self.recent)) if self.recent else 0.0
        now = self.elapsed()
        if now + 2 * estimate >= self.budget_s:
            return 1.0, True
        return min(1.0, (now + estimate) / self.budget_s), False


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
    (loaded whole when the architecture matches, else warm-started tensor by tensor).

    The card returned describes this run's start only: a warm start's own card (its training, its own
    warm start, its validation) is not carried over, it is named (``warm_start.from``).
    """
    m = cfg.model
    wanted = model_config(cfg)
    if m.init_weights:
        path = cfg.resolve(m.init_weights)
        if not path.is_file():
            raise GreenlessError(f"[model] init_weights {m.init_weights!r}: no such file ({path})")
        source, source_card = load_weights(path)
        start = {"weights": m.init_weights, "from": source_card.get("name", path.name)}
        if {k: v for k, v in source.config.to_dict().items() if k in wanted} == wanted:
            total = len(source.state_dict())
            return source.train(), {"encoder_init": "the warm start's",
                                    "warm_start": {**start, "tensors": f"{total} of {total}"}}
    model = build_model(wanted)
    pretrained = model.backbone.load_imagenet() if m.pretrained else False
    card: dict[str, Any] = {"encoder_init": "imagenet" if pretrained else "random"}
    if m.init_weights:
        copied, total = warm_start(model, source.state_dict())
        if copied == 0:
            raise GreenlessError(f"{m.init_weights}: no tensor fits the [model] section's network")
        card["warm_start"] = {**start, "tensors": f"{copied} of {total}"}
    return model.train(), card


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    extra: dict[str, Any] | None = None) -> None:
    """Atomically write everything needed to resume (``extra``: the clock, the loss scaler)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, **(extra or {})}, tmp)
    os.replace(tmp, path)


def _amp_dtype(name: str, cuda: bool) -> torch.dtype:
    """bf16 where the GPU has it (no loss scaling, so no wait for the device on every step), else fp16."""
    if name == "auto":
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    if name in ("bf16", "fp16"):
        return torch.bfloat16 if name == "bf16" else torch.float16
    raise GreenlessError(f"unknown amp_dtype {name!r}; use auto, bf16 or fp16")


def throughput(log_path: Path, images_per_step: int, warmup: int = 3) -> dict[str, float]:
    """Images/s and the share of each step spent waiting for data, from a run's log (first ``warmup`` skipped).

    ``data_wait_median``/``data_wait_mean``: median and mean over steps of data seconds / step seconds.
    """
    rows = [r for r in map(json.loads, log_path.read_text().splitlines()) if "step_s" in r]
    rows = rows[warmup:]
    if not rows:
        raise GreenlessError(f"{log_path}: no timed steps after the first {warmup}")
    shares = [r["data_s"] / max(r["step_s"], 1e-9) for r in rows]
    total = sum(r["step_s"] for r in rows)
    return {"steps": len(rows), "images_per_s": images_per_step * len(rows) / total,
            "step_s_median": float(np.median([r["step_s"] for r in rows])),
            "data_wait_median": float(np.median(shares)), "data_wait_mean": float(np.mean(shares))}


def preflight(cfg: TrainConfig, world: int = 1) -> ConcatDataset:
    """Everything that can refuse a run, checked before anything is written: the validation set apart from
    the training data, every data folder readable in its layout, at least one batch of samples. Returns the
    training samples."""
    check_validation_apart(cfg)
    _check_out_dir(cfg)
    dataset = build_dataset(cfg)
    if len(dataset) < cfg.train.batch_size * world:
        raise GreenlessError(f"{len(dataset)} samples are fewer than one batch of {cfg.train.batch_size * world}")
    if cfg.data.val:
        find_labelled(cfg.resolve(cfg.data.val))
    return dataset


def _check_out_dir(cfg: TrainConfig) -> None:
    """``[train] out_dir`` can be made or written: a folder, or a new one under a writable folder."""
    out = cfg.resolve(cfg.train.out_dir)
    if out.exists() and not out.is_dir():
        raise GreenlessError(f"[train] out_dir {out}: not a folder")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise GreenlessError(f"[train] out_dir {out}: cannot write in {existing}")


class TrainingRun:
    """One supervised run (or its resumed continuation): the model, optimiser, clock and log of ``out_dir``.

    Built only once :func:`preflight` passed and the network exists, so a refused run creates no folder.
    The steps of :func:`train` are its methods: ``restore`` (the checkpoint, or a fresh log), ``step`` (one
    optimisation step at the scheduled rate), ``checkpoint``, ``validate`` and ``finish`` (final weights
    and their card).
    """

    def __init__(self, cfg: TrainConfig, model: torch.nn.Module, card: dict[str, Any]) -> None:
        self.cfg, self.card = cfg, card
        t = cfg.train
        self.rank, self.world, local_rank = _dist_info()
        self.is_main = self.rank == 0
        self.cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local_rank}" if self.cuda else "cpu")
        self.use_amp = self.cuda and t.amp
        self.amp_dtype = _amp_dtype(t.amp_dtype, self.cuda)
        self.budget_s = t.minutes * 60.0
        self.loss_spec = cfg.loss()
        model = model.to(self.device).train()
        if t.channels_last:  # NHWC: faster on CUDA, and 3x faster training steps on this 2-core CPU
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # (torch's stubs lack it)
        #: the network itself (DDP wraps it in ``self.net``); .to() and SyncBatchNorm keep its class
        self.model: MODNet = cast(MODNet, model)
        if t.freeze_norm:
            freeze_batchnorm(model)
        self.optimizer = make_optimizer(model, cfg)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.out_dir = cfg.resolve(t.out_dir)
        self.last = self.out_dir / "last.pt"
        self.log_path = self.out_dir / "log.jsonl"
        self.step_no = 0
        self.clock = RunClock(self.budget_s)
        self.finished = False
        self.pending: dict[str, Any] | None = None
        self.net: torch.nn.Module = model
        if self.world > 1:
            if self.cuda and not t.freeze_norm:  # batch statistics over all ranks (PyTorch has no CPU SyncBatchNorm)
                self.model = model = cast(MODNet, torch.nn.SyncBatchNorm.convert_sync_batchnorm(model))
            self.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if self.cuda else None)

    def restore(self, resume: bool) -> None:
        """Continue from ``last.pt`` when asked and it exists; a run that starts at step 0 starts a fresh log."""
        state: dict[str, Any] = {}
        if resume and self.last.is_file():
            state = torch.load(self.last, map_location=self.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if "scaler" in state and self.scaler.is_enabled():
                self.scaler.load_state_dict(state["scaler"])
            self.step_no = int(state["step"])
        self.clock = RunClock(self.budget_s, float(state.get("elapsed_s", 0.0)))
        if self.budget_s:  # a finished budget stays finished; a larger one continues
            self.finished = bool(state.get("finished")) and state.get("budget_s") == self.budget_s
        else:
            self.finished = self.step_no >= self.cfg.train.steps
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not state:
                self.log_path.write_text("")
            (self.out_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))

    def schedule(self) -> bool:
        """Set the learning rate of the coming step; True when it is the run's last."""
        t = self.cfg.train
        if self.budget_s:
            progress, is_last = self.clock.plan()
            if self.world > 1:  # every rank must use rank 0's learning rate and stop at the same step
                shared = torch.tensor([progress, float(is_last)], dtype=torch.float64,
                                      device=self.device if self.cuda else "cpu")
                dist.broadcast(shared, 0)
                progress, is_last = float(shared[0]), bool(shared[1])
        else:
            progress, is_last = None, self.step_no + 1 >= t.steps
        factor = lr_factor(self.step_no, self.cfg, progress)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        return is_last

    def step(self, batch: dict[str, torch.Tensor], started: float) -> float:
        """One optimisation step on ``batch``; logs the previous step (a step late, so the GPU never waits).
        Returns the loss last read (NaN when none was)."""
        data_s = time.perf_counter() - started
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            outputs = self.net(batch["image"], all_outputs=True)
        loss, terms = modnet_loss_terms(tuple(o.float() for o in outputs), batch, self.loss_spec)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.train.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step_no += 1
        shown = self.flush()
        step_s = time.perf_counter() - started
        self.clock.record(step_s)
        if self.is_main:
            self.pending = {"step": self.step_no, "values": torch.stack([loss.detach(), *terms.values()]),
                            "lr": self.optimizer.param_groups[1]["lr"], "time": time.time(), "data_s": data_s,
                            "step_s": step_s, "elapsed_s": self.clock.elapsed()}
        return shown

    def flush(self) -> float:
        """Write the pending step's log line (its loss tensors read only now); returns its loss."""
        record, self.pending = self.pending, None
        if record is None:
            return float("nan")
        loss, *terms = record.pop("values").tolist()
        with self.log_path.open("a") as log:
            log.write(json.dumps({"step": record.pop("step"), "loss": loss,
                                  **dict(zip(("semantic", "detail", "matte"), terms, strict=False)), **record}) + "\n")
        return loss

    def checkpoint(self) -> None:
        """Atomically save everything a resume needs (rank 0)."""
        self.flush()
        extra: dict[str, Any] = {"elapsed_s": self.clock.elapsed(), "budget_s": self.budget_s, "finished": self.finished}
        if self.scaler.is_enabled():
            extra["scaler"] = self.scaler.state_dict()
        save_checkpoint(self.last, self.model, self.optimizer, self.step_no, extra)

    def validate(self) -> dict[str, float]:
        """MSE and MAD on ``[data] val`` now, logged (rank 0)."""
        self.flush()
        scores = _log_val(self.model, self.cfg, self.device, self.step_no, self.log_path)
        if self.cfg.train.freeze_norm:
            freeze_batchnorm(self.model)
        return scores

    def where(self) -> str:
        """The progress bar's position: ``step/steps``, or the step and the budget's minutes."""
        if not self.budget_s:
            return f"{self.step_no}/{self.cfg.train.steps}"
        spent, whole = (f"{int(x) // 60}:{int(x) % 60:02d}" for x in (self.clock.elapsed(), self.budget_s))
        return f"step {self.step_no}, {spent}/{whole}"

    def finish(self) -> Path:
        """Write ``final.safetensors`` with its card (the config, the loss, steps, time, validation)."""
        cfg = self.cfg
        final = self.out_dir / "final.safetensors"
        if self.is_main:
            self.flush()
            card = dict(self.card)
            card.update({"ref_size": cfg.data.val_ref_size,
                         "training": {"config": cfg.to_dict(), "loss": self.loss_spec.to_dict(),
                                      "steps": self.step_no}})
            if cfg.hint != "none":  # what the 4th channel carries; a 3-channel network's card names no hint
                card["hint"] = cfg.hint
            if cfg.data.val:
                card["validation"] = _log_val(self.model, cfg, self.device, self.step_no, self.log_path)
            card["training"]["elapsed_s"] = round(self.clock.elapsed(), 1)
            save_weights(self.model, final, card, half=False)
        return final


def _progress_bar(enabled: bool) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.fields[where]}"),
                    TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.2f} step/s"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled)


def run_steps(run: TrainingRun, dataset: ConcatDataset, progress: bool) -> None:
    """Step until the run's steps or budget are done, checkpointing and validating on the config's schedule."""
    t, cfg = run.cfg.train, run.cfg
    total = run.budget_s if run.budget_s else t.steps
    position = (lambda: min(total, run.clock.elapsed())) if run.budget_s else (lambda: min(total, run.step_no))
    start_time, start_step = time.time(), run.step_no
    with _progress_bar(progress and run.is_main) as bar:
        task = bar.add_task("train", total=total, completed=position(), loss=float("nan"), rate=0.0,
                            where=run.where())
        if run.finished:
            return
        batches = iter(make_loader(dataset, cfg, run.step_no, run.rank, run.world, run.cuda))
        while not run.finished:
            started = time.perf_counter()
            run.finished = run.schedule()
            shown = run.step(to_device(next(batches), run.device, t.channels_last), started)
            rate = (run.step_no - start_step) / max(1e-6, time.time() - start_time)
            bar.update(task, completed=total if run.finished else position(), rate=rate, where=run.where(),
                       **({} if math.isnan(shown) else {"loss": shown}))
            if run.is_main and (run.step_no % t.checkpoint_every == 0 or run.finished):
                run.checkpoint()
            if run.is_main and t.val_every and cfg.data.val and run.step_no % t.val_every == 0 and not run.finished:
                run.validate()
        del batches  # stops the loader's workers


def train(cfg: TrainConfig, resume: bool = True, progress: bool = True) -> Path:
    """Run (or resume) supervised training; returns the path of the final safetensors weights.

    With ``[train] minutes`` the run trains for that much wall-clock time (resumes count what earlier
    sessions spent) on a cosine over the budget; else for ``steps`` steps. Each step's data wait and total
    time go into ``log.jsonl`` (``data_s``, ``step_s``). ``resume=False`` (``--no-resume``) starts over:
    step 0, a fresh log. Nothing is written before the data and the start weights are known to be usable.
    """
    t = cfg.train
    _, world, _ = _dist_info()
    dataset = preflight(cfg, world)
    torch.manual_seed(t.seed)
    if t.threads:
        torch.set_num_threads(t.threads)
    model, card = init_model(cfg)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest convolution once
    run = TrainingRun(cfg, model, card)
    run.restore(resume)
    run_steps(run, dataset, progress)
    final = run.finish()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return final


def _log_val(model: MODNet, cfg: TrainConfig, device: torch.device, step: int, log_path: Path) -> dict:
    scores = validate(model, cfg.resolve(cfg.data.val), cfg.data.val_ref_size, device, hint=cfg.hint)
    with log_path.open("a") as log:
        log.write(json.dumps({"step": step, "val": scores}) + "\n")
    return scores
