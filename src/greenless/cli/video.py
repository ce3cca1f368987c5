"""``greenless video``: matte a video file or a folder of frames into a composite, alpha, RGBA or foreground video."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from greenless.cli import (
    EngineName,
    app,
    engine_option,
    guide_option,
    max_pixels_option,
    model_option,
    ref_size_option,
    refuse_overwrite,
)
from greenless.cli.flags import background_option, out_option, write_option
from greenless.pipeline.compose import OutputKind
from greenless.pipeline.video_run import VideoTarget

MIN_FPS, MAX_FPS = 0.001, 1000.0  # what the writers turn into a usable time base (1/1000 s .. 1000 s a frame)


def progress_bar():  # noqa: ANN201 - rich type imported lazily
    """A Rich progress bar on stderr showing frames, fps and ETA."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:>6.1f} fps"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )


@app.command()
def video(
    input: Path = typer.Argument(..., help="Video file (mp4, mkv, mov, webm, gif...) or a folder of frames."),
    output: Path | None = out_option("Output .mp4/.webm/.mov/.mkv, or a name without extension for a PNG sequence."),
    mode: OutputKind = write_option(OutputKind.composite, "What -o gets: composite (default), alpha, rgba or "
                                    "foreground."),
    alpha_out: Path | None = typer.Option(None, "--alpha-out", metavar="PATH", help="Also write the matte here, "
                                          "from the same pass (grey video or PNG frames)."),
    fg_out: Path | None = typer.Option(None, "--fg-out", metavar="PATH", help="Also write the foreground colours here."),
    rgba_out: Path | None = typer.Option(None, "--rgba-out", metavar="PATH", help="Also write the transparent cut-out "
                                         "here (.mov, .webm or PNG frames)."),
    background: str = background_option("green", "Colour (name, #rrggbb, r,g,b), image, video (loops) or blur "
                                        "behind the person."),
    no_ofd: bool = typer.Option(False, "--no-ofd", help="Turn off one-frame-delay flicker removal."),
    temporal: str | None = typer.Option(None, "--temporal",
                                        help="prev-alpha (feed back the previous matte) | ofd | none; OFD runs on "
                                             "top of prev-alpha unless --no-ofd (default: ofd for guided weights such "
                                             "as the default model, which then get the guide on every frame; "
                                             "prev-alpha for other 4-channel weights; else ofd)."),
    ofd_tol: float = typer.Option(0.1, "--ofd-tol", help="OFD tolerance on alpha in [0, 1]."),
    ref_size: int | None = ref_size_option(),
    engine: EngineName = engine_option(),
    weights: Path | None = typer.Option(None, "-w", "--weights", help="Weights file (.onnx, .safetensors); default: packaged."),
    model: str | None = model_option(),
    guide: str | None = guide_option(),
    batch: int | None = typer.Option(None, "--batch", help="Frames per engine call (default 2; 16 on the device path)."),
    device: str | None = typer.Option(None, "--device", help="Run on this torch device (cuda, cuda:1, cpu; implies "
                                      "--engine torch): frames batched, resized and matted on the device, guides in "
                                      "parallel threads. --engine torch on a machine with CUDA does this too."),
    fps: float | None = typer.Option(None, "--fps",
                                     help=f"Frame rate of a folder of frames (default 25; {MIN_FPS:g} to {MAX_FPS:g})."),
    max_frames: int | None = typer.Option(None, "--max-frames", help="Stop after this many frames (at least 1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    max_pixels: int = max_pixels_option(),
) -> None:
    """Matte a video: person composited on a background, the alpha matte, a transparent video, or the foreground
    (several of them from one pass with --alpha-out, --fg-out, --rgba-out)."""
    from greenless.matter import Matter
    from greenless.media.video import open_video
    from greenless.pipeline.streaming import open_stream
    from greenless.registry import resolve_weights

    engine = EngineName.torch if device is not None else engine
    weights = resolve_weights(weights, model, engine, job="stream")  # the registry's stream default
    check_numbers(batch=batch, fps=fps, max_frames=max_frames, ofd_tol=ofd_tol)
    targets = video_targets(input, background, [(mode, output), (OutputKind.alpha, alpha_out),
                                                (OutputKind.foreground, fg_out), (OutputKind.rgba, rgba_out)])
    reader = open_video(input, fps=fps, max_pixels=max_pixels)
    setup = None
    try:
        # The stream job's defaults (model, reference size, guide, temporal policy) come from the registry;
        # the path (per frame or batched on a device), its renderer and batch size from the stream factory.
        matter = Matter(weights, engine=engine, ref_size=ref_size, guide=guide, stream=True, device=device)
        setup = open_stream(matter, batch=batch, temporal=temporal, ofd=not no_ofd, ofd_tol=ofd_tol)
        stats, said = _run(setup, reader, targets, background, input, max_frames, max_pixels, quiet)
    finally:
        reader.close()
        if setup is not None:
            setup.close()
    report(stats, said, targets, setup)


def video_targets(input: Path, background: str, paths: list[tuple[OutputKind, Path | None]]) -> list[VideoTarget]:
    """The run's outputs, -o's first, checked before any work: an input that exists, a background that reads, no
    output that is the input or the background file, each file type able to hold its kind."""
    from greenless.errors import GreenlessError
    from greenless.pipeline.compose import parse_background
    from greenless.pipeline.video_run import check_targets

    if not input.exists():
        from greenless.media.files import missing_reason

        raise GreenlessError(f"{input}: {missing_reason(input)}")
    targets = [VideoTarget(kind, path) for kind, path in paths if path is not None]
    check_targets(targets)
    background_file = None
    if any(t.kind is OutputKind.composite for t in targets):
        parsed = parse_background(background, video=True)  # a bad one is one line now, not after the model loads
        background_file = None if isinstance(parsed, (tuple, str)) else Path(background)
    for target in targets:
        refuse_overwrite(target.path, {"the input": input, "the background": background_file})
    return targets


def _run(setup: Any, reader: Any, targets: list[VideoTarget], background: str, input: Path, max_frames: int | None,
         max_pixels: int, quiet: bool) -> tuple[Any, list[str]]:
    """``pipeline.video_run.run_video`` with a progress bar (frames, fps, time left) unless ``quiet``."""
    import time

    from greenless.pipeline.video_run import frame_total, run_video

    with progress_bar() if not quiet else _NoProgress() as progress:
        task = progress.add_task(input.name, total=frame_total(reader, max_frames), fps=0.0)
        clock = {"start": 0.0, "done": 0}

        def on_frame(n: int) -> None:
            now = time.perf_counter()
            clock["start"] = clock["start"] or now
            clock["done"] += n
            elapsed = now - clock["start"]
            progress.update(task, advance=n, fps=(clock["done"] - 1) / elapsed if elapsed > 0 else 0.0)

        stats, said = run_video(setup, reader, targets, background, audio_source=input, max_frames=max_frames,
                                max_pixels=max_pixels, on_frame=on_frame)
        progress.update(task, total=stats.frames, completed=stats.frames)
    return stats, said


def report(stats: Any, said: list[str], targets: list[VideoTarget], setup: Any) -> None:
    """The run's last lines on stderr: notes and what was written, or, after an interruption, one error line and the
    signal's exit code (130, 143, 129)."""
    from greenless.cli.signals import interruption

    if stats.interrupted:
        name, status = interruption()
        typer.echo(f"greenless: error: interrupted ({name}) after {stats.frames} frames; {'; '.join(said)}", err=True)
        raise SystemExit(status)
    for note in said:
        typer.echo(f"note: {note}", err=True)
    network_fps = setup.network_fps()
    network = f"; network alone {network_fps:.1f} fps" if network_fps is not None else ""
    written = ", ".join(str(t.path) for t in targets)
    typer.echo(f"wrote {written} ({stats.frames} frames, {stats.fps:.1f} fps end to end{network}, temporal: "
               f"{setup.label})", err=True)


def check_numbers(batch: int | None, fps: float | None, max_frames: int | None, ofd_tol: float) -> None:
    """One ``GreenlessError`` for a numeric option out of range, before any file is opened or created.

    Typer's own ranges let ``nan`` through (every comparison with it is false), and these values used to
    surface as tracebacks deep in the reader or writer (``--fps nan``/``inf``, ``--max-frames -1``, which
    also left a 0-byte .part file) or, for ``--ofd-tol 5``, as a silently meaningless setting.
    """
    import math

    from greenless.errors import GreenlessError

    if batch is not None and batch < 1:
        raise GreenlessError(f"--batch must be at least 1, not {batch}")
    if fps is not None and not (math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise GreenlessError(f"--fps must be a number from {MIN_FPS:g} to {MAX_FPS:g}, not {fps:g}")
    if max_frames is not None and max_frames < 1:
        raise GreenlessError(f"--max-frames must be at least 1, not {max_frames}")
    if not (math.isfinite(ofd_tol) and 0.0 <= ofd_tol <= 1.0):
        raise GreenlessError(f"--ofd-tol is a tolerance on alpha and must be between 0 and 1, not {ofd_tol:g}")


class _NoProgress:
    """Stand-in for the Rich progress bar under --quiet."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, *args: object, **kwargs: object) -> None:
        return None
