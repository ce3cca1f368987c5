"""``greenless eval``: MSE, MAD, SAD, Grad, Conn and the transition band's MAD of the model (or of any tool's alpha PNGs) on a matting dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from greenless.cli import EngineName, app, engine_option, guide_option, model_option, ref_size_option, refine_option

_COLUMNS = (("mse", "MSE", "{:.5f}"), ("mad", "MAD", "{:.5f}"), ("sad", "SAD", "{:.2f}"),
            ("grad", "Grad", "{:.2f}"), ("conn", "Conn", "{:.2f}"), ("band", "Band MAD", "{:.4f}"))


def _cells(metrics: dict[str, float]) -> list[str]:
    return [fmt.format(metrics[key]) for key, _, fmt in _COLUMNS]


def render_table(result: Any, title: str) -> Any:
    """A Rich table: one row per image (two when a reference is compared) and the mean."""
    from rich.table import Table

    compare = result.reference is not None
    table = Table(title=title)
    table.add_column("image")
    if compare:
        table.add_column("model")
    for _, header, _ in _COLUMNS:
        table.add_column(header, justify="right")
    for stem, metrics in result.ours.per_image.items():
        if compare:
            table.add_row(stem, "ours", *_cells(metrics))
            table.add_row("", "reference", *_cells(result.reference.per_image[stem]), end_section=True)
        else:
            table.add_row(stem, *_cells(metrics))
    table.add_section()
    if compare:
        table.add_row("[b]mean[/b]", "ours", *_cells(result.ours.mean))
        table.add_row("[b]mean[/b]", "reference", *_cells(result.reference.mean))
    else:
        table.add_row("[b]mean[/b]", *_cells(result.ours.mean))
    return table


def render_markdown(result: Any) -> str:
    """The same table as GitHub Markdown, for a README."""
    compare = result.reference is not None
    headers = ["image", *(["model"] if compare else []), *(h for _, h, _ in _COLUMNS)]
    rows = []
    for stem, metrics in result.ours.per_image.items():
        rows.append([stem, *(["ours"] if compare else []), *_cells(metrics)])
        if compare:
            rows.append([stem, "reference", *_cells(result.reference.per_image[stem])])
    rows.append(["**mean**", *(["ours"] if compare else []), *_cells(result.ours.mean)])
    if compare:
        rows.append(["**mean**", "reference", *_cells(result.reference.mean)])
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@app.command("eval")
def eval_command(
    data_dir: Path = typer.Argument(..., help="Dataset folder: image/ + alpha/ (PPM-100), blurred_image/ or original_image/ + mask/ (P3M-500), original/ + mask/ (AIM-500)."),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Model weights (default: the packaged model)."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    refine: str | None = refine_option(),
    engine: EngineName = engine_option(),
    ref_size: int | None = ref_size_option(),
    predictions: Path | None = typer.Option(None, "--predictions", "-p", help="Score these alpha PNGs (same stems) instead of running the model."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the table as GitHub Markdown (for a README)."),
    save_dir: Path | None = typer.Option(None, "--save-dir", help="Write the model's alphas here as PNGs."),
    compare_reference: Path | None = typer.Option(None, "--compare-reference", help="Also score this reference segmentation model (selfie_segmentation.onnx) side by side."),
    grid: Path | None = typer.Option(None, "--grid", help="Write a picture grid PNG (image, ground truth, ours, reference, error maps)."),
) -> None:
    """Score alpha mattes against ground truth: MSE, MAD, SAD, Grad, Conn and Band MAD (the error inside the
    transition band) per image and their mean."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from greenless.evaluate.runner import evaluate
    from greenless.registry import resolve_weights

    weights = resolve_weights(weights, model, engine, job=None)

    err_console = Console(stderr=True)
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err_console, transient=True, disable=not err_console.is_terminal)
    state: dict[str, Any] = {}

    def on_start(total: int) -> None:
        state["task"] = progress.add_task("evaluating", total=total)
        progress.start()

    def on_image(stem: str) -> None:
        progress.update(state["task"], advance=1, description=stem)

    try:
        result = evaluate(data_dir, predictions=predictions, weights=weights, engine=engine, ref_size=ref_size,
                          guide=guide, refine=refine, save_dir=save_dir, reference=compare_reference, grid=grid, on_start=on_start, on_image=on_image)
    finally:
        progress.stop()
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    if markdown:
        typer.echo(render_markdown(result))
        return
    source = f"predictions in {predictions}" if predictions else f"{engine} model {weights or '(packaged weights)'}"
    Console().print(render_table(result, f"{data_dir} ({result.layout} layout, {len(result.ours.per_image)} images): {source}"))
    if result.grid is not None:
        err_console.print(f"wrote picture grid {result.grid}")
    if save_dir is not None:
        err_console.print(f"wrote predicted alphas to {save_dir}")
