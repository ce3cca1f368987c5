"""``greenless convert``: official MODNet checkpoint -> our safetensors + card."""

from __future__ import annotations

from pathlib import Path

import typer

from greenless.card import MAX_REF_SIZE
from greenless.cli import app
from greenless.cli.flags import out_option


@app.command()
def convert(
    checkpoint: Path = typer.Argument(..., help="Official MODNet .ckpt (module.-prefixed state dict)."),
    output: Path = out_option("Where to write the .safetensors file.", required=True),
    ref_size: int = typer.Option(512, "--ref-size", min=32, max=MAX_REF_SIZE,
                                 help=f"Reference size stored in the card (32 to {MAX_REF_SIZE})."),
) -> None:
    """Convert an official MODNet checkpoint into greenless weights (safetensors + JSON card)."""
    from greenless.errors import GreenlessError, first_line, install_hint

    try:
        import torch  # noqa: F401
    except ImportError:
        raise GreenlessError(f"convert needs PyTorch: {install_hint('torch')}") from None
    from greenless.model.checkpoint import load_weights, save_weights

    if not checkpoint.is_file():
        raise GreenlessError(f"{checkpoint}: file not found")
    if output.suffix != ".safetensors":
        raise GreenlessError(f"{output}: output must end in .safetensors")
    try:
        model, card = load_weights(checkpoint)
    except Exception as exc:
        raise GreenlessError(f"{checkpoint}: not a MODNet checkpoint ({first_line(exc)})") from exc
    card["ref_size"] = ref_size
    card["preprocess"] = "modnet-demo"  # the registry runs official weights as the official demo does
    save_weights(model, output, card, half=False)
    typer.echo(f"wrote {output}")
