"""Typed training configuration read from TOML: every hyper-parameter in one file next to the run."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

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
    val: str = ""  # PPM-100 style folder scored with MSE/MAD; never trained on
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
    semantic_weight: float = 1.0
    detail_weight: float = 10.0
    matte_weight: float = 1.0
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

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def to_dict(self) -> dict[str, Any]:
        return {"model": asdict(self.model), "data": asdict(self.data), "train": asdict(self.train)}


def _section(cls: type, values: dict[str, Any], name: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise GreenlessError(f"[{name}] unknown setting(s): {', '.join(sorted(unknown))}")
    return cls(**values)


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML config; unknown sections or keys are errors, so typos never pass silently."""
    path = Path(path)
    if not path.is_file():
        raise GreenlessError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise GreenlessError(f"{path}: invalid TOML ({exc})") from None
    return config_from_dict(raw, base_dir=path.parent, overrides=overrides)


def config_from_dict(raw: dict[str, Any], base_dir: Path = Path("."), overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Build a config from nested dicts (as TOML gives), then apply ``section.key`` overrides."""
    unknown = set(raw) - {"model", "data", "train"}
    if unknown:
        raise GreenlessError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    raw = {k: dict(v) for k, v in raw.items()}
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".", 1)
        raw.setdefault(section, {})[key] = value
    return TrainConfig(
        model=_section(ModelSection, raw.get("model", {}), "model"),
        data=_section(DataSection, raw.get("data", {}), "data"),
        train=_section(TrainSection, raw.get("train", {}), "train"),
        base_dir=base_dir,
    )
