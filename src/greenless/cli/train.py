"""``greenless train`` (supervised, TOML config; torchrun for many processes) and ``greenless adapt`` (SOC)."""

from __future__ import annotations

from pathlib import Path

import typer

from greenless.cli import app


def _need_torch(what: str) -> None:
    from greenless.errors import GreenlessError

    try:
        import torch  # noqa: F401
    except ImportError:
        raise GreenlessError(f"{what} needs PyTorch: pip install 'greenless[train]'") from None


@app.command()
def train(
    config: Path = typer.Argument(..., help="TOML file with \\[model], \\[data] and \\[train] sections."),
    steps: int = typer.Option(0, "--steps", help="Override \\[train] steps."),
    out_dir: str = typer.Option("", "--out-dir", help="Override \\[train] out_dir."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from out_dir/last.pt if it exists."),
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
    cfg = load_config(config, overrides)
    final = run_training(cfg, resume=resume)
    typer.echo(f"wrote {final}")


@app.command()
def adapt(
    weights: Path = typer.Option(..., "--weights", help="Trained weights (.safetensors) to adapt."),
    data: Path = typer.Option(..., "--data", help="Folder of unlabelled images/videos, or one video file."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the adapted .safetensors."),
    steps: int = typer.Option(200, "--steps"),
    lr: float = typer.Option(1e-5, "--lr"),
    size: int = typer.Option(256, "--size", help="Square crop size the frames are adapted at."),
    batch_size: int = typer.Option(2, "--batch-size"),
    frame_every: int = typer.Option(5, "--frame-every", help="Use every n-th frame of videos."),
) -> None:
    """Self-supervised SOC adaptation of trained weights to unlabelled footage (no labels needed)."""
    _need_torch("adaptation")
    from greenless.errors import GreenlessError
    from greenless.train.soc import SOCConfig, adapt as run_adapt

    if not weights.is_file():
        raise GreenlessError(f"{weights}: weights file not found")
    if output.suffix != ".safetensors":
        raise GreenlessError(f"{output}: output must end in .safetensors")
    result = run_adapt(weights, data, output, SOCConfig(steps=steps, lr=lr, size=size, batch_size=batch_size,
                                                        frame_every=frame_every))
    typer.echo(f"adapted on {result['frames']} frames; wrote {output}")
