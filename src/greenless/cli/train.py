"""``greenless train`` (supervised, TOML config; torchrun for many processes) and ``greenless adapt`` (SOC)."""

from __future__ import annotations

from pathlib import Path

import typer

from greenless.cli import app
from greenless.cli.flags import out_option


def _need_torch(what: str) -> None:
    from greenless.errors import GreenlessError, install_hint

    try:
        import torch  # noqa: F401
    except ImportError:
        raise GreenlessError(f"{what} needs PyTorch: {install_hint('train')}") from None


def _finite(value: float | None) -> float | None:
    """Typer callback: a float option must be a finite number (click's ranges let ``inf`` and ``nan`` through)."""
    import math

    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _positive(value: float) -> float:
    """Typer callback: a learning rate is a finite number above 0 (``nan`` trained a network of NaNs)."""
    _finite(value)
    if value <= 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


@app.command()
def train(
    config: Path = typer.Argument(..., help="TOML file with \\[model], \\[data] and \\[train] sections."),
    steps: int = typer.Option(None, "--steps", min=0,
                              help="Train this many steps: overrides \\[train] steps, and a config's \\[train] "
                                   "minutes (the schedule then runs on steps)."),
    out_dir: str = typer.Option("", "--out-dir", help="Override \\[train] out_dir."),
    resume: bool = typer.Option(True, "--resume/--no-resume",
                                help="Continue from out_dir/last.pt if it exists; --no-resume starts over at step 0 "
                                     "with a fresh log."),
    minutes: float = typer.Option(None, "--minutes", min=0.0, callback=_finite,
                                  help="Override \\[train] minutes: train for this wall-clock time (cosine over it, "
                                       "resumes continue the rest), then validate and write final.safetensors."),
    num_workers: int = typer.Option(None, "--num-workers", min=0, max=256,
                                    help="Override \\[train] num_workers (data loader processes)."),
) -> None:
    """Train MODNet with the supervised losses; run under `torchrun --nproc_per_node N` for DDP."""
    from greenless.errors import GreenlessError

    if steps is not None and minutes is not None:
        raise GreenlessError("give --steps or --minutes, not both")
    _need_torch("training")
    from greenless.train.config import load_config
    from greenless.train.supervised import train as run_training

    overrides: dict = {}
    if steps is not None:  # the command line wins over the file, whichever of steps or minutes the file set
        overrides.update({"train.steps": steps, "train.minutes": 0.0})
    if minutes is not None:
        overrides["train.minutes"] = minutes
    if out_dir:
        overrides["train.out_dir"] = str(Path(out_dir).resolve())
    if num_workers is not None:
        overrides["train.num_workers"] = num_workers
    cfg = load_config(config, overrides)
    final = run_training(cfg, resume=resume)
    typer.echo(f"wrote {final}")


@app.command()
def adapt(
    weights: Path = typer.Option(..., "-w", "--weights", help="Trained PyTorch weights to adapt (.safetensors or an "
                                 "official .ckpt; not ONNX)."),
    data: Path = typer.Option(..., "--data", help="Folder of unlabelled images/videos, or one video file."),
    output: Path = out_option("Where to write the adapted .safetensors.", required=True),
    steps: int = typer.Option(200, "--steps", min=1),
    lr: float = typer.Option(1e-5, "--lr", callback=_positive,
                             help="Adam learning rate (the official SOC step's is 1e-5)."),
    size: int = typer.Option(256, "--size", min=32, help="Square crop size the frames are adapted at."),
    batch_size: int = typer.Option(2, "--batch-size", min=1),
    frame_every: int = typer.Option(5, "--frame-every", min=1, help="Use every n-th frame of videos."),
) -> None:
    """Self-supervised SOC adaptation of trained weights to unlabelled footage (no labels needed)."""
    _need_torch("adaptation")
    from greenless.errors import GreenlessError
    from greenless.train.soc import SOCConfig
    from greenless.train.soc import adapt as run_adapt

    if output.suffix != ".safetensors":
        raise GreenlessError(f"{output}: output must end in .safetensors")
    result = run_adapt(weights, data, output, SOCConfig(steps=steps, lr=lr, size=size, batch_size=batch_size,
                                                        frame_every=frame_every))
    typer.echo(f"adapted on {result['frames']} frames ({steps} steps, {result['epochs']} epochs); wrote {output}")
