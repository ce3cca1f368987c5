"""Typed training configuration read from TOML: every hyper-parameter in one file next to the run.

Every setting is checked (its type, then its range or its choices) when the file is read, before
anything is created, and a bad one is one error line naming ``[section] key``: a typo, a batch of 0,
a NaN learning rate or an unknown encoder never starts a run.
"""

from __future__ import annotations

import math
import tomllib
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from greenless.card import stride_for_scale
from greenless.errors import GreenlessError


@dataclass
class ModelSection:
    encoder: str = "efficientnet-lite0"
    hr_channels: int = 32
    in_channels: int = 3
    easpp: bool = False
    norm: str = "ibn"  # "ibn" (paper) | "bn" (foldable: the real-time variant)
    separable: bool = False  # depthwise-separable convolutions in the branches
    semantic_scale: float = 1.0  # encoder + semantic branch on the image scaled by this
    fusion_channels: int = 0  # 0: the paper's fusion branch; N: the real-time one with N channels
    hint: str = ""  # what a 4th input channel carries: "guide" or "prev-alpha" ("": prev-alpha if in_channels = 4)
    pretrained: bool = True  # ImageNet encoder weights where an offline copy exists
    init_weights: str = ""  # start from these weights: all of them (same architecture) or every tensor that fits


@dataclass
class DataSection:
    foregrounds: list[str] = field(default_factory=list)  # folders with fg/ + alpha/
    backgrounds: list[str] = field(default_factory=list)  # folders or list files of backgrounds
    labelled: list[str] = field(default_factory=list)  # folders with image/ + alpha/ (PPM-100 layout)
    labelled_repeats: int = 1
    composites_per_fg: int = 4
    size: int = 256
    lighting_p: float = 0.15
    edge_crop_p: float = 0.0  # share of crops placed around the transition band (greenless.data.augment.random_crop_scale)
    val: str = ""  # PPM-100 style folder scored with MSE/MAD; never trained on (checked: greenless.train.leaks)
    val_ref_size: int = 512


@dataclass
class TrainSection:
    steps: int = 2000
    batch_size: int = 8
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    encoder_lr_scale: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | step | constant
    warmup_steps: int = 50
    step_size: int = 1000  # for schedule = "step"
    gamma: float = 0.1
    loss: str = "greenless"  # the supervised objective: greenless | paper | official (greenless.train.losses)
    semantic_weight: float | None = None  # None: the loss preset's (greenless/paper 1, official 10)
    detail_weight: float | None = None  # None: the preset's (10)
    matte_weight: float | None = None  # None: the preset's (1)
    detail_norm: str | None = None  # "band" | "image": the detail L1 averaged over band pixels or all pixels
    boundary_weight: float | None = None  # extra in-band matte L1 (+ composition); official: 4
    composition: str | None = None  # "fg-bg" | "image": what the matte's composition term composes
    checkpoint_every: int = 100
    val_every: int = 0  # 0: only at the end
    out_dir: str = "runs/train"
    seed: int = 0
    num_workers: int = 0
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    amp: bool = True  # mixed precision, CUDA only
    grad_clip: float = 5.0
    freeze_norm: bool = False  # BatchNorm uses running statistics (small batches, fine-tuning)
    minutes: float = 0.0  # wall-clock budget; > 0: the schedule runs on elapsed time and `steps` is not used
    prefetch_factor: int = 2  # batches each loader worker prepares ahead (num_workers > 0)
    amp_dtype: str = "auto"  # auto (bf16 where the GPU has it, else fp16) | bf16 | fp16
    channels_last: bool = True  # NHWC activations: tensor cores on CUDA; oneDNN's fast path on CPU (3x per step)


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    base_dir: Path = Path(".")  # relative data paths resolve against the config file's folder

    @property
    def hint(self) -> str:
        """What the network's 4th input channel carries in training and at run time (``none`` for 3 channels)."""
        if self.model.in_channels != 4:
            return "none"
        return self.model.hint or "prev-alpha"

    def loss(self) -> Any:
        """The supervised objective (``greenless.train.losses.LossSpec``): the preset with this config's overrides."""
        from greenless.train.losses import LOSS_OVERRIDES, loss_spec

        return loss_spec(self.train.loss, **{key: getattr(self.train, key) for key in LOSS_OVERRIDES})

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def to_dict(self) -> dict[str, Any]:
        return {"model": asdict(self.model), "data": asdict(self.data), "train": asdict(self.train)}


SECTIONS: dict[str, type] = {"model": ModelSection, "data": DataSection, "train": TrainSection}

# ---- ranges and choices: one rule per setting that has one ------------------------------------------------

Rule = Callable[[Any], str | None]  # the value -> what is wrong with it (None: fine)


def at_least(low: float) -> Rule:
    return lambda v: None if v >= low else f"must be at least {low:g}"


def above(low: float) -> Rule:
    return lambda v: None if v > low else f"must be above {low:g}"


def between(low: float, high: float) -> Rule:
    return lambda v: None if low <= v <= high else f"must be between {low:g} and {high:g}"


def one_of(*choices: Any) -> Rule:
    shown = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in choices)
    return lambda v: None if v in choices else f"must be one of {shown}"


def _encoders() -> Rule:
    from greenless.model.encoders import ENCODERS  # torch: loaded only when a config names an encoder

    return one_of(*ENCODERS)


def _loss_choices(key: str) -> Rule:
    from greenless.train import losses

    if key == "loss":
        return one_of(*losses.LOSS_PRESETS)
    return one_of(*(losses.DETAIL_NORMS if key == "detail_norm" else losses.COMPOSITIONS))


#: Largest thread count a config may ask for: more is never faster and, far beyond the cores, crashes OpenMP.
MAX_THREADS = 256
#: Largest crop side: a 4096 px crop needs gigabytes per sample.
MAX_CROP = 4096

RULES: dict[tuple[str, str], Callable[[], Rule]] = {
    ("model", "encoder"): _encoders,
    ("model", "hr_channels"): lambda: at_least(1),
    ("model", "in_channels"): lambda: one_of(3, 4),
    ("model", "norm"): lambda: one_of("ibn", "bn"),
    ("model", "semantic_scale"): lambda: lambda v: None if 0 < v <= 1 else "must be above 0 and at most 1",
    ("model", "fusion_channels"): lambda: at_least(0),
    ("model", "hint"): lambda: one_of("", "guide", "prev-alpha"),
    ("data", "labelled_repeats"): lambda: at_least(1),
    ("data", "composites_per_fg"): lambda: at_least(1),
    ("data", "size"): lambda: lambda v: (None if 32 <= v <= MAX_CROP and v % 32 == 0
                                         else f"must be a multiple of 32 between 32 and {MAX_CROP}"),
    ("data", "lighting_p"): lambda: between(0, 1),
    ("data", "edge_crop_p"): lambda: between(0, 1),
    ("data", "val_ref_size"): lambda: between(32, 2048),
    ("train", "steps"): lambda: at_least(0),
    ("train", "batch_size"): lambda: at_least(1),
    ("train", "optimizer"): lambda: one_of("adamw", "sgd"),
    ("train", "lr"): lambda: above(0),
    ("train", "encoder_lr_scale"): lambda: at_least(0),
    ("train", "momentum"): lambda: between(0, 1),
    ("train", "weight_decay"): lambda: at_least(0),
    ("train", "schedule"): lambda: one_of("cosine", "step", "constant"),
    ("train", "warmup_steps"): lambda: at_least(0),
    ("train", "step_size"): lambda: at_least(1),
    ("train", "gamma"): lambda: above(0),
    ("train", "loss"): lambda: _loss_choices("loss"),
    ("train", "semantic_weight"): lambda: at_least(0),
    ("train", "detail_weight"): lambda: at_least(0),
    ("train", "matte_weight"): lambda: at_least(0),
    ("train", "detail_norm"): lambda: _loss_choices("detail_norm"),
    ("train", "boundary_weight"): lambda: at_least(0),
    ("train", "composition"): lambda: _loss_choices("composition"),
    ("train", "checkpoint_every"): lambda: at_least(1),
    ("train", "val_every"): lambda: at_least(0),
    ("train", "out_dir"): lambda: lambda v: None if v.strip() else "must name a folder",
    ("train", "seed"): lambda: at_least(0),
    ("train", "num_workers"): lambda: between(0, MAX_THREADS),
    ("train", "threads"): lambda: between(0, MAX_THREADS),
    ("train", "grad_clip"): lambda: at_least(0),
    ("train", "minutes"): lambda: at_least(0),
    ("train", "prefetch_factor"): lambda: at_least(1),
    ("train", "amp_dtype"): lambda: one_of("auto", "bf16", "fp16"),
}


def _type_error(value: Any, kind: Any) -> str | None:
    """What is wrong with ``value`` for a setting annotated ``kind`` (None: right type). Booleans are not
    numbers here, and numbers must be finite (TOML has ``nan`` and ``inf``)."""
    args = typing.get_args(kind)
    if type(None) in args:  # "X | None": None is "not set" and TOML cannot write it, so only X is checked
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if kind is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if kind is str:
        return None if isinstance(value, str) else "must be a string"
    if typing.get_origin(kind) is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of strings"
    return None


def _section(cls: type, values: dict[str, Any], name: str) -> Any:
    if not isinstance(values, dict):
        raise GreenlessError(f"[{name}] must be a table of settings")
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise GreenlessError(f"[{name}] unknown setting(s): {', '.join(sorted(unknown))}")
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        problem = _type_error(value, hints[key])
        if problem is None and (name, key) in RULES and value is not None:
            problem = RULES[(name, key)]()(value)
        if problem:
            raise GreenlessError(f"[{name}] {key} {problem} (got {value!r})")
    return cls(**values)


def _check_together(cfg: TrainConfig) -> None:
    """Rules between settings."""
    if cfg.model.hint and cfg.model.in_channels != 4:
        raise GreenlessError(f"[model] hint = {cfg.model.hint!r} needs in_channels = 4 (got {cfg.model.in_channels})")
    stride = stride_for_scale(cfg.model.semantic_scale)
    if cfg.data.size % stride:
        # Off the network's grid its features do not line up with the crop, and inference never runs there.
        raise GreenlessError(f"[data] size must be a multiple of {stride} with semantic_scale = "
                             f"{cfg.model.semantic_scale} (got {cfg.data.size})")


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML config; unknown sections or keys and out-of-range values are errors (one line naming the
    file and the key), so typos never pass silently."""
    path = Path(path)
    if not path.is_file():
        raise GreenlessError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GreenlessError(f"{path}: invalid TOML ({exc})") from None
    try:
        return config_from_dict(raw, base_dir=path.parent, overrides=overrides)
    except GreenlessError as exc:
        raise GreenlessError(f"{path}: {exc}") from None


def config_from_dict(raw: dict[str, Any], base_dir: Path = Path("."), overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Build a config from nested dicts (as TOML gives), then apply ``section.key`` overrides; every value is
    checked (see the module docstring)."""
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise GreenlessError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        raw.setdefault(section, {})[key] = value
    cfg = TrainConfig(**{name: _section(cls, raw.get(name, {}), name) for name, cls in SECTIONS.items()},
                      base_dir=base_dir)
    _check_together(cfg)
    return cfg
