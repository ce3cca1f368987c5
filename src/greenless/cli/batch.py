"""``greenless batch``: a folder (or object-storage prefix) of photos matted on a Ray cluster."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from greenless.cli import app, guide_option, model_option, ref_size_option, refine_option
from greenless.cli.flags import background_option, out_option, write_option
from greenless.pipeline.compose import OutputKind, parse_background


def ray_failure(exc: BaseException) -> str:
    """The useful line of a Ray error: the GreenlessError message inside it if any, else its last line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        if "GreenlessError: " in line:
            return line.split("GreenlessError: ", 1)[1]
    return lines[-1] if lines else type(exc).__name__


@app.command()
def batch(
    input_uri: str = typer.Argument(..., metavar="INPUT_DIR_OR_URI", help="Folder or URI (s3://bucket/prefix) of photos."),
    out: str = out_option("Output folder or URI; one STEM.png per photo.", required=True),
    use_ray: bool = typer.Option(False, "--ray", help="Run on Ray (required: the only batch backend)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster: auto, ray://HOST:10001; default: a local Ray."),
    kind: OutputKind = write_option(OutputKind.rgba, "What to write, as greenless matte: rgba cut-out, alpha, "
                                    "foreground or composite."),
    background: str = background_option("white", "For --write composite: a colour or a local image file."),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="ONNX weights, present at this path on every node "
                                        "(default: the packaged model)."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    refine: str | None = refine_option(),
    ref_size: int | None = ref_size_option(),
    cpus_per_actor: float = typer.Option(1.0, "--cpus-per-actor", min=0.1, help="CPUs (onnxruntime threads) per actor."),
    gpus_per_actor: float = typer.Option(0.0, "--gpus-per-actor", min=0.0, help="GPUs per actor (pool sized to GPUs)."),
    actors: int | None = typer.Option(None, "--actors", min=1, help="Actor pool size (default: fill the cluster)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Photos per actor call."),
    max_pixels: int = typer.Option(100_000_000, "--max-pixels", min=1, help="Refuse larger images (decompression bombs)."),
) -> None:
    """Matte every photo of a folder on Ray Data: same files as `greenless matte FOLDER -o OUT`, at cluster scale."""
    from greenless.errors import GreenlessError
    from greenless.matter import Matter
    from greenless.registry import resolve_weights

    run_batch = _ray_backend(use_ray)
    # decoded once here, exactly as greenless matte reads --background
    bg = parse_background(background, max_pixels=max_pixels) if kind is OutputKind.composite else background
    weights = resolve_weights(weights, model, "onnx", job=None)
    if weights is not None and not weights.is_file():
        raise GreenlessError(f"{weights}: weights file not found")
    Matter(weights, ref_size=ref_size, threads=1, guide=guide, refine=refine)  # a bad model fails here in one line, not in every actor
    plan = run_batch(input_uri, out, kind=kind.value, background=bg, weights=str(weights) if weights else None,
                     ref_size=ref_size, address=address, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor,
                     actors=actors, batch_size=batch_size, max_pixels=max_pixels, guide=guide,
                     refine=refine)
    failures = _follow(plan)
    print(f"wrote {plan.total - failures} of {plan.total} images to {out} with {plan.actors} Ray actors", file=sys.stderr)
    if failures:
        raise SystemExit(1)


def _ray_backend(use_ray: bool) -> Any:
    """``distributed.ray_batch.run_batch``, or one error line: --ray missing, or Ray not installed."""
    from greenless.errors import GreenlessError, install_hint

    if not use_ray:
        raise GreenlessError("batch runs on Ray: add --ray (without Ray, `greenless matte FOLDER -o OUT` does the same)")
    try:
        import ray  # noqa: F401

        from greenless.distributed.ray_batch import run_batch
    except ImportError:
        raise GreenlessError(f"batch --ray needs Ray: {install_hint('ray')}") from None
    return run_batch


def _follow(plan: Any) -> int:
    """Run ``plan`` with a progress bar and one error line per failed photo; returns the failure count."""
    from rich.console import Console

    from greenless.cli.report import error_line, files_progress
    from greenless.errors import GreenlessError

    console = Console(stderr=True)
    failures = 0
    with files_progress(console, transient=True) as progress:
        task = progress.add_task("matting", total=plan.total)
        try:
            for row in plan.rows():
                if row["error"]:
                    failures += 1
                    error_line(console, row["error"])
                progress.advance(task)
        except Exception as exc:  # an actor that could not start (bad weights on a node) fails the whole job
            raise GreenlessError(f"the Ray job failed: {ray_failure(exc)}") from None
    return failures
