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


@app.command()
def train(
    config: Path = typer.Argument(..., help="TOML file with \\[model], \\[data] and \\[train] sections."),
    steps: int = typer.Option(0, "--steps", help="Override \\[train] steps."),
    out_dir: str = typer.Option("", "--out-dir", help="Override \\[train] out_dir."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from out_dir/last.pt if it exists."),
    minutes: float = typer.Option(0.0, "--minutes", min=0.0,
                                  help="Override \\[train] minutes: train for this wall-clock time (cosine over it, "
                                       "resumes continue the rest), then validate and write final.safetensors."),
    num_workers: int = typer.Option(-1, "--num-workers", help="Override \\[train] num_workers (data loader processes)."),
) -> None:
    """Train MODNet with the supervised losses; run under `torchrun --nproc_per_node N` for DDP."""
    _need_torch("training")
    from greenless.train.config import load_config
    from greenless.train.supervised import train as run_training

    overrides: dict = {}
    if steps:
        overrides["train.steps"] = steps
    if out_dir:
        overrides["train.out_dir"] = str(Path(out_dir).resolve())
    if minutes:
        overrides["train.minutes"] = minutes
    if num_workers >= 0:
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
    lr: float = typer.Option(1e-5, "--lr", help="Adam learning rate (the official SOC step's is 1e-5)."),
    size: int = typer.Option(256, "--size", min=32, help="Square crop size the frames are adapted at."),
    batch_size: int = typer.Option(2, "--batch-size", min=1),
    frame_every: int = typer.Option(5, "--frame-every", min=1, help="Use every n-th frame of videos."),
) -> None:
    """Self-supervised SOC adaptation of trained weights to unlabelled footage (no labels needed)."""
    _need_torch("adaptation")
    from greenless.errors import GreenlessError
    from greenless.train.soc import SOCConfig, adapt as run_adapt

    if output.suffix != ".safetensors":
        raise GreenlessError(f"{output}: output must end in .safetensors")
    result = run_adapt(weights, data, output, SOCConfig(steps=steps, lr=lr, size=size, batch_size=batch_size,
                                                        frame_every=frame_every))
    typer.echo(f"adapted on {result['frames']} frames ({steps} steps, {result['epochs']} epochs); wrote {output}")
