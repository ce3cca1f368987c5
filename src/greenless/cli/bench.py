"""``greenless bench``: speed and peak memory of the default model per engine, beside the reference and paper models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from greenless.cli import app, threads_option


def _engine(model: dict[str, Any]) -> str:
    kind = "onnx" if model["kind"] == "reference" else model["kind"]
    return f"{kind} {model['precision']}"


def _timing_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for model in report["models"]:
        for i, row in enumerate(model["rows"]):
            ratio = f"{row['speed_vs_paper']:.2f}x" if row.get("speed_vs_paper") else "–"
            rows.append([f"{model['name']} ({_engine(model)})" if i == 0 else "", row["what"],
                         f"{row['input']} → {row['network']}", str(row["batch"]), f"{row['median_ms']:.1f}",
                         f"{row['p10_ms']:.1f}–{row['p90_ms']:.1f}", f"{row['fps']:.1f}" if row['fps'] else "–", ratio])
    return rows


def _memory_rows(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for model in report["models"]:
        rss = f"{model['peak_rss_mb']:.0f}" if model.get("peak_rss_mb") else "–"
        load = f"{model['load_s']:.2f}" if model.get("load_s") is not None else "–"
        name = Path(model["path"]).name if model["path"] and not model["path"].startswith("(") else model["path"] or "–"
        rows.append([f"{model['name']} ({_engine(model)})", name, load, rss, model["note"] or ""])
    return rows


TIMING_HEADERS = ("model", "measure", "input → network (WxH)", "batch", "median ms", "p10–p90 ms", "fps", "speed vs paper")
MEMORY_HEADERS = ("model", "file", "load s", "peak RSS MiB", "note")


def machine_line(report: dict[str, Any]) -> str:
    """One line naming the machine and runtime versions."""
    m = report["machine"]
    return (f"{m['cpu']}, {m['logical_cores']} logical cores, {m['os']}, Python {m['python']}, onnxruntime "
            f"{m['onnxruntime']}" + (f", torch {m['torch']}" if "torch" in m else ""))


def render_tables(report: dict[str, Any]) -> list[Any]:
    """Rich tables: timings (one row per model and measurement) and memory per model."""
    from rich.table import Table

    s = report["settings"]
    timings = Table(title=f"greenless bench: ref size {s['ref_size']}, {s['warmup']} warm-up + {s['repeat']} timed runs")
    for i, header in enumerate(TIMING_HEADERS):
        timings.add_column(header, justify="left" if i < 2 else "right")
    for row in _timing_rows(report):
        if row[0] and timings.row_count:
            timings.add_section()
        timings.add_row(*row)
    memory = Table(title="peak memory (RSS high-water mark of the process that timed the model)")
    for header in MEMORY_HEADERS:
        memory.add_column(header)
    for row in _memory_rows(report):
        memory.add_row(*row)
    return [timings, memory]


def _markdown(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    """Both tables as GitHub Markdown, with the settings and the machine, for a README."""
    s = report["settings"]
    return (f"Reference size {s['ref_size']}, {s['warmup']} warm-up + {s['repeat']} timed runs per measurement; "
            f"machine: {machine_line(report)}.\n\n{_markdown(TIMING_HEADERS, _timing_rows(report))}\n\n"
            f"{_markdown(MEMORY_HEADERS, _memory_rows(report))}\n")


@app.command("bench")
def bench_command(
    reference: Path | None = typer.Option(None, "--reference", help="Reference segmentation model (default: ../shared/models/selfie_segmentation.onnx if it exists)."),
    repeat: int | None = typer.Option(None, "--repeat", "-n", help="Timed runs per measurement after warm-up (default 20; 3 with --quick)."),
    warmup: int | None = typer.Option(None, "--warmup", help="Untimed warm-up runs per measurement (default 3; 1 with --quick)."),
    quick: bool = typer.Option(False, "--quick", help="Short run: 512x288 and 512x512 inputs only, fewer runs."),
    skip: list[str] = typer.Option([], "--skip", help="Leave out: variants, torch, reference, paper (repeatable)."),
    threads: int | None = threads_option("Intra-op threads for every runtime"),
    resolution: list[str] = typer.Option([], "--resolution", "-r", help="Only these inputs (WxH: 512x512, 512x288, 1280x720, 1920x1080; repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the tables as GitHub Markdown (for a README)."),
    device: str | None = typer.Option(None, "--device", help="Time the networks on this torch device instead (cuda, "
                                      "cuda:1, cpu): PyTorch eager/CUDA graphs/torch.compile and onnxruntime's GPU "
                                      "providers, batch 1 and batched, at 512x512, 512x288 and 1920x1080."),
    engine: list[str] = typer.Option([], "--engine", help="With --device: only these engines (repeatable; e.g. "
                                     "torch-eager-fp16, torch-cudagraph-fp16, torch-compile-fp16, onnx-cuda-fp32)."),
    batch: list[int] = typer.Option([], "--batch", help="With --device: batch sizes (repeatable; default 1 and 16 "
                                    "on CUDA, 1 and 2 on CPU)."),
) -> None:
    """Time the default model per engine at 512x512, 512x288, 1280x720 and 1920x1080, beside reference and paper models."""
    from rich.console import Console

    from greenless.evaluate.benchmark import busy_note, default_reference, run_benchmark

    busy = busy_note()  # looked at before and after the run: either way the figures are not the machine's
    if device is not None:
        _device_bench(device, engine, batch, resolution, quick, repeat, warmup, as_json, markdown, busy)
        return
    if engine or batch:
        from greenless.errors import GreenlessError

        raise GreenlessError("--engine and --batch go with --device (the CPU bench times every engine it has)")
    repeat = repeat if repeat is not None else (3 if quick else 20)
    warmup = warmup if warmup is not None else (1 if quick else 3)
    err_console = Console(stderr=True)
    with err_console.status("benchmarking") as status:
        def on_progress(text: str) -> None:
            status.update(text)

        report = run_benchmark(reference=reference or default_reference(), repeat=repeat, warmup=warmup, quick=quick,
                               skip=set(skip), threads=threads, resolutions=resolution or None,
                               on_progress=on_progress)
    warn_if_busy(busy)
    if _printed_as_text(report, as_json, markdown, render_markdown):
        return
    console = Console()
    for table in render_tables(report):
        console.print(table)
    console.print(f"machine: {machine_line(report)}")


def warn_if_busy(before: str | None) -> None:
    """One warning line on stderr when the machine was busy before or after the run (see ``busy_note``)."""
    from greenless.evaluate.benchmark import busy_note

    note = before or busy_note()
    if note:
        typer.echo(f"greenless: warning: {note}", err=True)


def _printed_as_text(report: dict, as_json: bool, markdown: bool, render_markdown: Any) -> bool:
    """Print ``report`` as JSON or Markdown when asked (both bench modes); False when tables are wanted."""
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif markdown:
        typer.echo(render_markdown(report))
    return as_json or markdown


def _device_bench(device: str, engines: list[str], batches: list[int], resolutions: list[str], quick: bool,
                  repeat: int | None, warmup: int | None, as_json: bool, markdown: bool, busy: str | None = None) -> None:
    """``bench --device``: the networks on one torch device (see :mod:`greenless.evaluate.device_bench`)."""
    from rich.console import Console
    from rich.table import Table

    from greenless.evaluate.device_bench import (
        CPU_ENGINES,
        CUDA_ENGINES,
        HEADERS,
        QUICK_SIZES,
        Plan,
        render_markdown,
        run_device_bench,
        table_rows,
    )

    try:
        import torch  # noqa: F401
    except ImportError:
        from greenless.errors import GreenlessError, install_hint

        raise GreenlessError(f"bench --device needs PyTorch: {install_hint('gpu')} (or [torch] for CPU)") from None
    on_cuda = device.startswith("cuda")
    plan = Plan(device=device, engines=tuple(engines) or (CUDA_ENGINES if on_cuda else CPU_ENGINES),
                batches=tuple(batches) or ((1, 16) if on_cuda else (1, 2)),
                warmup=warmup if warmup is not None else (3 if quick else 10),
                repeat=repeat if repeat is not None else (10 if quick else 50))
    if resolutions or quick:
        plan.sizes = tuple(resolutions) or QUICK_SIZES
    err_console = Console(stderr=True)
    with err_console.status("benchmarking") as status:
        report = run_device_bench(plan, on_progress=lambda text: status.update(text))
    warn_if_busy(busy)
    if _printed_as_text(report, as_json, markdown, render_markdown):
        return
    table = Table(title=f"greenless bench --device {device}: {report['machine']['device']}")
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="left" if i < 4 else "right")
    for row in table_rows(report):
        table.add_row(*row)
    console = Console()
    console.print(table)
    for best in report["fastest"]:
        console.print(f"fastest for {best['model']} at {best['input']} batch {best['batch']}: {best['engine']} "
                      f"({best['fps']:.1f} fps)")
