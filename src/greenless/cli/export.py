"""``greenless export``: ONNX, TorchScript, fp16 or int8 files, each checked against the PyTorch model first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from greenless.cli import app, model_option, ref_size_option
from greenless.cli.flags import out_option


def _find_shared(sub: str) -> Path | None:
    """``shared/data/<sub>`` beside the current folder or one level up (the layout of a greenless checkout)."""
    for base in (Path.cwd() / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if (base / sub).exists():
            return base / sub
    return None


@app.command()
def export(
    output: Path = out_option("File to write (.onnx, or .pt with --torchscript).", required=True),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="PyTorch weights (.safetensors or official .ckpt); "
                                        "default: the packaged model."),
    model: str | None = model_option(),
    torchscript: bool = typer.Option(False, "--torchscript", help="Write TorchScript (torch.jit.trace) instead of ONNX."),
    fp16: bool = typer.Option(False, "--fp16", help="fp16 ONNX with float32 input/output (for GPUs)."),
    int8: bool = typer.Option(False, "--int8", help="Static int8 ONNX (QDQ), calibrated on real images (for CPUs)."),
    opset: int = typer.Option(17, "--opset", min=13, help="ONNX opset."),
    check_data: Path | None = typer.Option(None, "--check-data", help="Labelled folder to check the export on, in any layout "
                                           "greenless eval reads (image/ + alpha/, ...); default: shared/data/portraits nearby."),
    check_limit: int | None = typer.Option(None, "--check-limit", min=1, help="Use at most this many check images."),
    calibration: list[Path] | None = typer.Option(None, "--calibration-data", help="Images/videos (files or folders) "
                                                  "for --int8; default: shared/data/photos, backgrounds and videos."),
    calibration_samples: int = typer.Option(24, "--calibration-samples", min=1, help="Calibration images for --int8."),
    ref_size: int | None = ref_size_option("Reference size for the check and calibration (default: the weights' own)."),
    max_degradation: float = typer.Option(5.0, "--max-mad-increase", min=0.0,
                                          help="Refuse the export when MAD gets worse by more than this many percent."),
) -> None:
    """Export the model and check it on real images: matte difference to PyTorch and MSE/MAD before and after."""
    from rich.console import Console

    from greenless.card import in_channels
    from greenless.export import check_opset, export_checked
    from greenless.registry import job_defaults, resolve_weights

    weights = resolve_weights(weights, model, "torch", job="stream")  # the packaged default when neither is given
    variant = _variant(output, torchscript, fp16, int8)
    check_opset(opset)
    _check_weights(weights)
    # Cheap checks of the data first, so a wrong folder fails before PyTorch loads.
    check_data, images, alphas, calib = _check_sets(check_data, check_limit, calibration if int8 else None,
                                                    calibration_samples, int8)
    net, card = _load(weights)
    # the check runs at the weights' stream reference size (the card's ref_size, which the export keeps)
    size = ref_size or job_defaults(card, in_channels(card), "stream").ref_size
    card = {**card, "source_weights": weights.name}
    with Console(stderr=True).status(f"exporting {variant} and checking it on {len(images)} images from {check_data}"):
        check = export_checked(net, output, variant, card, images, alphas, size, calibration=calib, opset=opset,
                               max_degradation=max_degradation / 100.0)
    typer.echo(check.summary())
    typer.echo(f"wrote {output}")


def _variant(output: Path, torchscript: bool, fp16: bool, int8: bool) -> str:
    """onnx, torchscript, fp16 or int8, checked against ``output``'s suffix and the installed extras."""
    from greenless.errors import GreenlessError, install_hint

    if sum((torchscript, fp16, int8)) > 1:
        raise GreenlessError("choose one of --torchscript, --fp16 and --int8 per export")
    variant = "torchscript" if torchscript else "fp16" if fp16 else "int8" if int8 else "onnx"
    if fp16:
        import importlib.util

        if importlib.util.find_spec("onnxconverter_common") is None:  # before any work, not after the export
            raise GreenlessError(f"--fp16 needs onnxconverter-common: {install_hint('export')}")
    want_suffix = ".pt" if torchscript else ".onnx"
    if output.suffix != want_suffix:
        raise GreenlessError(f"{output}: a {variant} export must end in {want_suffix}")
    return variant


def _check_weights(weights: Path | None) -> None:
    from greenless.errors import GreenlessError

    if weights is not None and not weights.is_file():
        raise GreenlessError(f"{weights}: weights file not found")
    if weights is not None and weights.suffix == ".onnx":
        raise GreenlessError(f"{weights}: export starts from PyTorch weights (.safetensors or .ckpt), not ONNX")
    if weights is not None:  # before the check data is looked for: no data makes a TorchScript file exportable
        from greenless.model.checkpoint import refuse_torchscript

        refuse_torchscript(weights)


def _check_sets(check_data: Path | None, check_limit: int | None, calibration: list[Path] | None, samples: int,
                int8: bool) -> tuple[Path, Any, Any, Any]:
    """(check folder, images, alphas, calibration images or None): the data the export is checked and calibrated on."""
    from greenless.errors import GreenlessError
    from greenless.export_check import calibration_images, load_check_set

    check_data = check_data or _find_shared("portraits")
    if check_data is None:
        raise GreenlessError("no check data: pass --check-data DIR (a labelled folder: image/ + alpha/, or any layout greenless eval reads)")
    images, alphas, _ = load_check_set(check_data, check_limit)
    if not int8:
        return check_data, images, alphas, None
    sources = calibration or [p for p in (_find_shared(s) for s in ("photos", "backgrounds", "videos")) if p]
    if not sources:
        raise GreenlessError("no calibration data: pass --calibration-data DIR")
    return check_data, images, alphas, calibration_images(sources, samples)


def _load(weights: Path) -> tuple[Any, dict]:
    """The PyTorch network and card of ``weights``; one error line without PyTorch or for a file that is none."""
    from greenless.errors import GreenlessError, first_line, install_hint

    try:
        import torch  # noqa: F401
    except ImportError:
        raise GreenlessError(f"export needs PyTorch: {install_hint('torch')}") from None
    from greenless.model.checkpoint import load_weights

    try:
        return load_weights(weights)
    except GreenlessError:
        raise
    except Exception as exc:
        raise GreenlessError(f"{weights}: cannot load weights ({first_line(exc)})") from exc
